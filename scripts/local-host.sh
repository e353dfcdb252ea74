#!/usr/bin/env bash
# The local stack `func start` needs, on the ports local.settings.sample.json names:
#   Azurite (blob 10000, queue 10001, table 10002: what UseDevelopmentStorage=true means, for the host's timer
#   locks and the connector's state), the Dataverse sandbox (https 8443, its CA written where
#   DATAVERSE_CA_BUNDLE points) and the Campaign sandbox (8081); then local.settings.json for the host.
#
#   scripts/local-host.sh start [--contacts N]   start what is not running, write local.settings.json
#   scripts/local-host.sh status                  what runs, on which port
#   scripts/local-host.sh stop                    stop what this script started
#
# Then, in another shell: func start (Azure Functions Core Tools 4). Ports can be moved with AZURITE_BLOB_PORT,
# AZURITE_QUEUE_PORT, AZURITE_TABLE_PORT, DATAVERSE_PORT and CAMPAIGN_PORT; local.settings.json follows them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${LOCAL_HOST_DIR:-$repo/.local/host}"
settings_file="${LOCAL_SETTINGS_FILE:-$repo/local.settings.json}"
blob_port="${AZURITE_BLOB_PORT:-10000}" queue_port="${AZURITE_QUEUE_PORT:-10001}" table_port="${AZURITE_TABLE_PORT:-10002}"
dataverse_port="${DATAVERSE_PORT:-8443}" campaign_port="${CAMPAIGN_PORT:-8081}"
python="${PYTHON:-$repo/.venv/bin/python}"
services=(azurite dataverse campaign)

die() {
  echo "local-host.sh: $*" >&2
  exit 2
}

pid_of() {  # the pid of a service this script started and that still runs, or nothing
  local file="$state/$1.pid" pid
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then echo "$pid"; else rm -f "$file"; fi
}

port_of() {
  case "$1" in
    azurite) echo "$blob_port" ;;
    dataverse) echo "$dataverse_port" ;;
    campaign) echo "$campaign_port" ;;
  esac
}

listening() {  # true when something accepts connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() {  # service port...: wait until every port listens, or fail with the service's log
  local service="$1" port deadline=$((SECONDS + 30))
  shift
  for port in "$@"; do
    until listening "$port"; do
      if [[ -z "$(pid_of "$service")" ]]; then
        tail -n 20 "$state/$service.log" >&2 || true
        die "$service exited before listening on port $port (log: $state/$service.log)"
      fi
      ((SECONDS < deadline)) || die "$service did not listen on port $port within 30 s (log: $state/$service.log)"
      sleep 0.1
    done
  done
}

launch() {  # service command...: start it in the background, its own process group, log and pid in $state
  local service="$1"
  shift
  if [[ -n "$(pid_of "$service")" ]]; then
    echo "   $service already running (pid $(pid_of "$service"))"
    return 0
  fi
  setsid "$@" >"$state/$service.log" 2>&1 </dev/null &
  echo $! >"$state/$service.pid"
  echo "   $service started (pid $!)"
}

ports_of() {
  case "$1" in
    azurite) echo "$blob_port $queue_port $table_port" ;;
    *) port_of "$1" ;;
  esac
}

port_variable() {  # service port: the variable that moves it
  case "$1:$2" in
    azurite:"$queue_port") echo AZURITE_QUEUE_PORT ;;
    azurite:"$table_port") echo AZURITE_TABLE_PORT ;;
    azurite:*) echo AZURITE_BLOB_PORT ;;
    dataverse:*) echo DATAVERSE_PORT ;;
    campaign:*) echo CAMPAIGN_PORT ;;
  esac
}

write_settings() {
  # The sample holds the values for the default ports; rewrite the addresses when ports moved. Secrets here are
  # the sandboxes' own fixed test credentials, not real ones.
  "$python" - "$repo/local.settings.sample.json" "$settings_file" "$state/dataverse/sandbox-ca.pem" <<EOF
import json, pathlib, sys
sample, target, ca = (pathlib.Path(a) for a in sys.argv[1:4])
data = json.loads(sample.read_text())
values = data["Values"]
values["DATAVERSE_URL"] = values["DATAVERSE_AUTHORITY_HOST"] = "https://127.0.0.1:$dataverse_port"
values["DATAVERSE_CA_BUNDLE"] = str(ca)
values["CAMPAIGN_BASE_URL"] = values["CAMPAIGN_IMS_URL"] = "http://127.0.0.1:$campaign_port"
if ("$blob_port", "$queue_port", "$table_port") != ("10000", "10001", "10002"):
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    storage = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + key + ";"
               "BlobEndpoint=http://127.0.0.1:$blob_port/devstoreaccount1;"
               "QueueEndpoint=http://127.0.0.1:$queue_port/devstoreaccount1;"
               "TableEndpoint=http://127.0.0.1:$table_port/devstoreaccount1;")
    values["AzureWebJobsStorage"] = values["STATE_STORAGE_CONNECTION_STRING"] = storage
text = json.dumps(data, indent=2) + "\n"
if target.exists() and target.read_text() != text:
    target.with_name(target.name + ".bak").write_text(target.read_text())
    print(f"   kept the previous {target.name} as {target.name}.bak")
target.write_text(text)
EOF
}

start() {
  local contacts=1000
  while (($# > 0)); do
    case "$1" in
      --contacts) (($# >= 2)) || die "--contacts needs a value"; contacts="$2"; shift 2 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  [[ -x "$python" ]] || "$repo/scripts/bootstrap.sh"
  [[ -x "$repo/node_modules/.bin/azurite" ]] || "$repo/scripts/bootstrap.sh"
  mkdir -p "$state/azurite" "$state/dataverse"
  # Every port is checked before anything starts, so a conflict leaves nothing half started.
  local service port
  for service in "${services[@]}"; do
    [[ -z "$(pid_of "$service")" ]] || continue
    for port in $(ports_of "$service"); do
      listening "$port" && die "port $port is taken by another process; set $(port_variable "$service" "$port") to move $service"
    done
  done
  echo "== local stack in $state"
  # --location keeps the host's timer locks and the connector's state across restarts of the stack.
  launch azurite "$repo/node_modules/.bin/azurite" --blobHost 127.0.0.1 --blobPort "$blob_port" \
    --queueHost 127.0.0.1 --queuePort "$queue_port" --tableHost 127.0.0.1 --tablePort "$table_port" \
    --location "$state/azurite" --loose --skipApiVersionCheck --disableTelemetry --silent \
    --blobKeepAliveTimeout 120 --queueKeepAliveTimeout 120 --tableKeepAliveTimeout 120  # see sandbox/azurite.py
  launch dataverse env PYTHONPATH="$repo" "$python" -m sandbox.dataverse --port "$dataverse_port" \
    --workdir "$state/dataverse" --contacts "$contacts"
  launch campaign env PYTHONPATH="$repo" "$python" -m sandbox.campaign --port "$campaign_port"
  wait_for azurite "$blob_port" "$queue_port" "$table_port"
  wait_for dataverse "$dataverse_port"
  wait_for campaign "$campaign_port"
  write_settings
  echo "== ready: $settings_file points at Azurite :$blob_port-$table_port, Dataverse https://127.0.0.1:$dataverse_port,"
  echo "   Campaign http://127.0.0.1:$campaign_port. Next: func start   (stop with: scripts/local-host.sh stop)"
}

status() {
  local service pid
  for service in "${services[@]}"; do
    pid="$(pid_of "$service")"
    if [[ -n "$pid" ]]; then echo "$service: running (pid $pid, port $(port_of "$service"))"; else echo "$service: stopped"; fi
  done
}

stop() {
  # TERM every service first, then wait for all: each takes a second or two to close its server.
  local service pid stopping=()
  for service in "${services[@]}"; do
    pid="$(pid_of "$service")"
    [[ -n "$pid" ]] || continue
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    stopping+=("$service:$pid")
  done
  local entry deadline=$((SECONDS + 10))
  for entry in "${stopping[@]}"; do
    service="${entry%%:*}" pid="${entry#*:}"
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$state/$service.pid"
    echo "   $service stopped"
  done
}

command="${1:-}"
[[ $# -gt 0 ]] && shift
case "$command" in
  start) start "$@" ;;
  status) status ;;
  stop) stop ;;
  *) die "usage: scripts/local-host.sh start [--contacts N] | status | stop" ;;
esac

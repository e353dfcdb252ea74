#!/usr/bin/env bash
# Deploys the connector to Azure in two steps (details: infra/README.md):
#   0. pre-flight:     the mapping document (config/sync.json) and the settings the deployment would write are
#                      validated offline; nothing is deployed unless both pass;
#   1. infrastructure: az deployment sub create with infra/main.bicepparam (which uses infra/main.bicep);
#   2. code:           func azure functionapp publish <app> --python, with the mapping as config/sync.json.
# With --set-secrets it loads the secrets into Key Vault between the two steps.
# Needs: Azure CLI (logged in, Bicep available to it), Azure Functions Core Tools 4 (`func`), and a Python that can
# import the connector (the repo's .venv from scripts/bootstrap.sh, or PYTHON=...) for the pre-flight.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Read by infra/main.bicepparam without a default.
required_settings=(DATAVERSE_URL DATAVERSE_CLIENT_ID CAMPAIGN_ORGANIZATION CAMPAIGN_CLIENT_ID)
# Key Vault secret names: the same as in infra/main.bicep (var secretNames).
secret_dataverse='dataverse-client-secret'
secret_dataverse_certificate='dataverse-certificate'
secret_campaign='campaign-client-secret'
secret_sftp_key='sftp-private-key'
# Where the app reads the mapping document (SYNC_CONFIG's default, main.bicep's syncConfig).
package_config='config/sync.json'

usage() {
  cat <<EOF
Usage: scripts/deploy.sh --env NAME --location REGION [options]
       scripts/deploy.sh --check-only [--config FILE]

Deploys the D365 <-> Adobe Campaign connector: pre-flight, infrastructure (Bicep), then the code (func publish).

Required:
  --env NAME           environment name (dev, prod, ...): resource group rg-NAME, unique resource names
  --location REGION    Azure region that offers Flex Consumption, e.g. westeurope

Options:
  --config FILE        the sync mapping document to deploy; it is validated and published as ${package_config}
                       (default: ${package_config} of the project, which must exist)
  --subscription ID    subscription to deploy to (default: the Azure CLI's current one)
  --project-dir DIR    function project to publish (default: the repository root)
  --what-if            preview the infrastructure changes, change nothing, and stop
  --set-secrets        write the secrets into Key Vault after step 1 (see below)
  --skip-infra         skip step 1 (the infrastructure of this environment exists)
  --skip-code          skip step 2
  --enable-functions   let step 1 enable functions that are disabled in Azure but not in DISABLED_FUNCTIONS
  --check-only         run the pre-flight only (no Azure access; used by the azd prepackage hook)
  -h, --help           show this help

Environment read by step 1 (infra/main.bicepparam; other settings keep the template's defaults):
  required: ${required_settings[*]}
  optional: SFTP_HOST SFTP_USERNAME SFTP_HOST_KEY (all three, or none: no SFTP)
            DATAVERSE_AUTH=secret|certificate, DATAVERSE_CERTIFICATE_THUMBPRINT (with certificate)
            DISABLED_FUNCTIONS (comma-separated function names kept disabled), ALERT_EMAIL
  PYTHON: the interpreter of the pre-flight (default: .venv/bin/python, else python3)

Environment read by --set-secrets (each one that is set is written; values never appear on a command line):
  DATAVERSE_CLIENT_SECRET      -> secret ${secret_dataverse}
  DATAVERSE_CERTIFICATE_FILE   -> secret ${secret_dataverse_certificate} (PEM file: private key and certificate)
  CAMPAIGN_CLIENT_SECRET       -> secret ${secret_campaign}
  SFTP_PRIVATE_KEY_FILE        -> secret ${secret_sftp_key} (path of the private key file)
EOF
}

die() {
  echo "deploy.sh: $*" >&2
  exit 2
}

env_name='' location='' subscription='' project_dir="$repo_root" config_file=''
what_if=false set_secrets=false skip_infra=false skip_code=false check_only=false enable_functions=false
while (($# > 0)); do
  case "$1" in
    --env | --location | --subscription | --project-dir | --config)
      (($# >= 2)) && [[ -n "$2" ]] || die "$1 needs a value"
      case "$1" in
        --env) env_name="$2" ;;
        --location) location="$2" ;;
        --subscription) subscription="$2" ;;
        --project-dir) project_dir="$2" ;;
        --config) config_file="$2" ;;
      esac
      shift 2
      ;;
    --what-if) what_if=true; shift ;;
    --set-secrets) set_secrets=true; shift ;;
    --skip-infra) skip_infra=true; shift ;;
    --skip-code) skip_code=true; shift ;;
    --check-only) check_only=true; shift ;;
    --enable-functions) enable_functions=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if ! $check_only; then
  [[ -n "$env_name" ]] || die "--env is required (see --help)"
  [[ -n "$location" ]] || die "--location is required (see --help)"
  [[ "$env_name" =~ ^[A-Za-z0-9-]{1,40}$ ]] || die "--env: 1-40 letters, digits or hyphens"
  if $what_if && $skip_infra; then die "--what-if previews step 1; it cannot be combined with --skip-infra"; fi
fi
publishing=true
if $check_only || $skip_code || $what_if; then publishing=false; fi
deploying_infra=true
if $check_only || $skip_infra; then deploying_infra=false; fi

if ! $check_only; then
  command -v az >/dev/null || die "Azure CLI (az) not found"
fi
if $publishing; then
  command -v func >/dev/null || die "Azure Functions Core Tools (func) not found"
  [[ -f "$project_dir/host.json" ]] || die "$project_dir is not a function project (no host.json)"
fi
if $deploying_infra; then
  missing=()
  for name in "${required_settings[@]}"; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "set these environment variables first: ${missing[*]}"
fi

# ---------------------------------------------------------------- 0. pre-flight (offline)

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$repo_root/.venv/bin/python" ]]; then python="$repo_root/.venv/bin/python"; else python=python3; fi
fi
preflight() {  # runs a Python module of the connector from the repository root
  (cd "$repo_root" && PYTHONPATH="$repo_root" "$python" "$@")
}

preflight -c 'import shared.config' 2>/dev/null \
  || die "cannot run the pre-flight with $python (run scripts/bootstrap.sh, or set PYTHON to one that has requirements.txt)"
if $publishing || $check_only; then
  if [[ -z "$config_file" ]]; then
    config_file="$project_dir/$package_config"
    [[ -f "$config_file" ]] || die "no mapping document: $config_file does not exist. Write one (docs/mapping.md,
  config/sync.example.json) and pass it with --config FILE; the app reads it as $package_config"
  fi
  [[ -f "$config_file" ]] || die "--config: $config_file is not a file"
  config_file="$(cd "$(dirname "$config_file")" && pwd)/$(basename "$config_file")"
  echo "== 0. pre-flight: mapping $config_file"
  preflight -m shared.config validate "$config_file" || die "the mapping document has problems (above); nothing deployed"
fi
if $deploying_infra || $check_only; then
  echo "== 0. pre-flight: settings"
  preflight scripts/check_deploy_settings.py || die "the settings have problems (above); nothing deployed"
fi
if $check_only; then
  echo "== pre-flight passed"
  exit 0
fi

# ---------------------------------------------------------------- Azure

if [[ -n "$subscription" ]]; then
  az account set --subscription "$subscription"
fi
az account show --output none || die "not logged in: run az login"

deployment="d365-campaign-connector-${env_name}"
export AZURE_ENV_NAME="$env_name" AZURE_LOCATION="$location"

deployment_outputs() {
  local query="join(' ', [properties.outputs.functionAppName.value, properties.outputs.keyVaultName.value,"
  query+=" properties.outputs.resourceGroupName.value])"
  az deployment sub show --name "$deployment" --query "$query" --output tsv
}

# The deployment writes the app settings as a whole: a function disabled in Azure (AzureWebJobs.<name>.Disabled)
# would be enabled again unless DISABLED_FUNCTIONS names it.
check_disabled_functions() {
  local outputs app group disabled name kept=()
  outputs="$(deployment_outputs 2>/dev/null)" || return 0  # a first deployment: nothing to keep
  read -r app _ group <<<"$outputs"
  [[ -n "${group:-}" ]] || return 0
  disabled="$(az functionapp config appsettings list --name "$app" --resource-group "$group" \
    --query "[?ends_with(name, '.Disabled') && (value == 'true' || value == '1')].name" --output tsv)" || return 0
  IFS=',' read -r -a kept <<<"${DISABLED_FUNCTIONS:-}"
  local lost=()
  for name in $disabled; do
    name="${name#AzureWebJobs.}"
    name="${name%.Disabled}"
    local listed=false item
    for item in "${kept[@]}"; do [[ "$(echo "$item" | xargs)" == "$name" ]] && listed=true; done
    $listed || lost+=("$name")
  done
  if ((${#lost[@]} > 0)) && ! $enable_functions; then
    die "$app has these functions disabled: ${lost[*]}. This deployment would enable them again. Keep them
  disabled with DISABLED_FUNCTIONS=$(IFS=,; echo "${lost[*]}")${DISABLED_FUNCTIONS:+,$DISABLED_FUNCTIONS}, or pass --enable-functions"
  fi
}

if $what_if; then
  az deployment sub what-if --name "$deployment" --location "$location" \
    --parameters "$repo_root/infra/main.bicepparam"
  exit 0
fi

if ! $skip_infra; then
  check_disabled_functions
  echo "== 1. infrastructure: deployment $deployment in $location"
  az deployment sub create --name "$deployment" --location "$location" \
    --parameters "$repo_root/infra/main.bicepparam" --output none
fi

outputs="$(deployment_outputs)"
read -r app_name vault_name resource_group <<<"$outputs"
[[ -n "${resource_group:-}" ]] || die "deployment $deployment lacks functionAppName/keyVaultName/resourceGroupName"
echo "   function app: $app_name, key vault: $vault_name"

# Writes one secret from a file, retrying while the deployer's Key Vault role propagates (can take minutes).
put_secret() {
  local name="$1" file="$2" attempt
  for attempt in 1 2 3 4 5 6; do
    if az keyvault secret set --vault-name "$vault_name" --name "$name" --file "$file" --encoding utf-8 \
      --output none; then
      echo "   secret $name set"
      return 0
    fi
    echo "   secret $name not set (attempt $attempt); retrying in ${KEYVAULT_RETRY_SECONDS:-15}s" >&2
    sleep "${KEYVAULT_RETRY_SECONDS:-15}"
  done
  die "could not set secret $name: does the deployer have Key Vault Secrets Officer on $vault_name?"
}

cleanup_dirs=()
cleanup() { ((${#cleanup_dirs[@]} == 0)) || rm -rf "${cleanup_dirs[@]}"; }
trap cleanup EXIT

if $set_secrets; then
  echo "== secrets into Key Vault $vault_name"
  secret_dir="$(mktemp -d)"
  cleanup_dirs+=("$secret_dir")
  written=0
  for pair in "DATAVERSE_CLIENT_SECRET:$secret_dataverse" "CAMPAIGN_CLIENT_SECRET:$secret_campaign"; do
    variable="${pair%%:*}"
    if [[ -n "${!variable:-}" ]]; then
      (umask 077 && printf '%s' "${!variable}" >"$secret_dir/value")
      put_secret "${pair#*:}" "$secret_dir/value"
      written=$((written + 1))
    else
      echo "   $variable not set: secret ${pair#*:} left as it is"
    fi
  done
  for pair in "DATAVERSE_CERTIFICATE_FILE:$secret_dataverse_certificate" "SFTP_PRIVATE_KEY_FILE:$secret_sftp_key"; do
    variable="${pair%%:*}"
    if [[ -n "${!variable:-}" ]]; then
      [[ -r "${!variable}" ]] || die "$variable is not a readable file"
      put_secret "${pair#*:}" "${!variable}"
      written=$((written + 1))
    else
      echo "   $variable not set: secret ${pair#*:} left as it is"
    fi
  done
  ((written > 0)) || die "--set-secrets: none of the secret variables is set"
fi

if ! $skip_code; then
  # Publish from a copy of the project that carries the validated mapping as config/sync.json, so the checkout
  # is not modified and what is published is what was checked.
  stage="$(mktemp -d)"
  cleanup_dirs+=("$stage")
  tar -C "$project_dir" --exclude=./.git --exclude=./.venv --exclude=./.venv-worker --exclude=./node_modules \
    --exclude=./.local --exclude='*/__pycache__' -cf - . | tar -C "$stage" -xf -
  mkdir -p "$stage/$(dirname "$package_config")"
  cp "$config_file" "$stage/$package_config"
  echo "== 2. code: func azure functionapp publish $app_name (mapping: $config_file)"
  [[ -f "$stage/.funcignore" ]] || echo "   warning: no .funcignore, so tests, sandbox etc. get uploaded too" >&2
  (cd "$stage" && func azure functionapp publish "$app_name" --python)
elif $set_secrets; then
  # Key Vault references resolve when the app starts; publishing restarts it, so restart here instead.
  echo "   restarting $app_name so it reads the new secrets"
  az functionapp restart --name "$app_name" --resource-group "$resource_group" --output none
fi
echo "== done"

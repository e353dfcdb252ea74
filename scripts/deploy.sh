#!/usr/bin/env bash
# Deploys the connector to Azure in two steps (details: infra/README.md):
#   1. infrastructure: az deployment sub create with infra/main.bicepparam (which uses infra/main.bicep);
#   2. code:           func azure functionapp publish <app> --python, from the function project.
# With --set-secrets it loads the secrets into Key Vault between the two steps.
# Needs: Azure CLI (logged in, Bicep available to it) and Azure Functions Core Tools 4 (`func`).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Read by infra/main.bicepparam; they have no default in the template.
required_settings=(DATAVERSE_URL DATAVERSE_CLIENT_ID CAMPAIGN_ORGANIZATION CAMPAIGN_CLIENT_ID SFTP_HOST SFTP_USERNAME
  SFTP_HOST_KEY)
# Key Vault secret names: the same as in infra/main.bicep (var secretNames).
secret_dataverse='dataverse-client-secret'
secret_campaign='campaign-client-secret'
secret_sftp_key='sftp-private-key'

usage() {
  cat <<EOF
Usage: scripts/deploy.sh --env NAME --location REGION [options]

Deploys the D365 <-> Adobe Campaign connector: infrastructure (Bicep), then the code (func publish).

Required:
  --env NAME           environment name (dev, prod, ...): resource group rg-NAME, unique resource names
  --location REGION    Azure region that offers Flex Consumption, e.g. westeurope

Options:
  --subscription ID    subscription to deploy to (default: the Azure CLI's current one)
  --project-dir DIR    function project to publish (default: the repository root)
  --what-if            preview the infrastructure changes, change nothing, and stop
  --set-secrets        write the secrets into Key Vault after step 1 (see below)
  --skip-infra         skip step 1 (the infrastructure of this environment exists)
  --skip-code          skip step 2
  -h, --help           show this help

Environment read by step 1 (infra/main.bicepparam; other settings keep the template's defaults):
  ${required_settings[*]}

Environment read by --set-secrets (each one that is set is written; values never appear on a command line):
  DATAVERSE_CLIENT_SECRET   -> secret ${secret_dataverse}
  CAMPAIGN_CLIENT_SECRET    -> secret ${secret_campaign}
  SFTP_PRIVATE_KEY_FILE     -> secret ${secret_sftp_key} (path of the private key file)
EOF
}

die() {
  echo "deploy.sh: $*" >&2
  exit 2
}

env_name='' location='' subscription='' project_dir="$repo_root"
what_if=false set_secrets=false skip_infra=false skip_code=false
while (($# > 0)); do
  case "$1" in
    --env | --location | --subscription | --project-dir)
      (($# >= 2)) && [[ -n "$2" ]] || die "$1 needs a value"
      case "$1" in
        --env) env_name="$2" ;;
        --location) location="$2" ;;
        --subscription) subscription="$2" ;;
        --project-dir) project_dir="$2" ;;
      esac
      shift 2
      ;;
    --what-if) what_if=true; shift ;;
    --set-secrets) set_secrets=true; shift ;;
    --skip-infra) skip_infra=true; shift ;;
    --skip-code) skip_code=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ -n "$env_name" ]] || die "--env is required (see --help)"
[[ -n "$location" ]] || die "--location is required (see --help)"
[[ "$env_name" =~ ^[A-Za-z0-9-]{1,40}$ ]] || die "--env: 1-40 letters, digits or hyphens"
if $what_if && $skip_infra; then die "--what-if previews step 1; it cannot be combined with --skip-infra"; fi

command -v az >/dev/null || die "Azure CLI (az) not found"
if ! $skip_code && ! $what_if; then
  command -v func >/dev/null || die "Azure Functions Core Tools (func) not found"
  [[ -f "$project_dir/host.json" ]] || die "$project_dir is not a function project (no host.json)"
fi
if ! $skip_infra; then
  missing=()
  for name in "${required_settings[@]}"; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
  done
  ((${#missing[@]} == 0)) || die "set these environment variables first: ${missing[*]}"
fi

if [[ -n "$subscription" ]]; then
  az account set --subscription "$subscription"
fi
az account show --output none || die "not logged in: run az login"

deployment="d365-campaign-connector-${env_name}"
export AZURE_ENV_NAME="$env_name" AZURE_LOCATION="$location"

if $what_if; then
  az deployment sub what-if --name "$deployment" --location "$location" \
    --parameters "$repo_root/infra/main.bicepparam"
  exit 0
fi

if ! $skip_infra; then
  echo "== 1. infrastructure: deployment $deployment in $location"
  az deployment sub create --name "$deployment" --location "$location" \
    --parameters "$repo_root/infra/main.bicepparam" --output none
fi

query="join(' ', [properties.outputs.functionAppName.value, properties.outputs.keyVaultName.value,"
query+=" properties.outputs.resourceGroupName.value])"
outputs="$(az deployment sub show --name "$deployment" --query "$query" --output tsv)"
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

if $set_secrets; then
  echo "== secrets into Key Vault $vault_name"
  secret_dir="$(mktemp -d)"
  trap 'rm -rf "$secret_dir"' EXIT
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
  if [[ -n "${SFTP_PRIVATE_KEY_FILE:-}" ]]; then
    [[ -r "$SFTP_PRIVATE_KEY_FILE" ]] || die "SFTP_PRIVATE_KEY_FILE is not a readable file"
    put_secret "$secret_sftp_key" "$SFTP_PRIVATE_KEY_FILE"
    written=$((written + 1))
  else
    echo "   SFTP_PRIVATE_KEY_FILE not set: secret $secret_sftp_key left as it is"
  fi
  ((written > 0)) || die "--set-secrets: none of the secret variables is set"
  rm -rf "$secret_dir"
fi

if ! $skip_code; then
  echo "== 2. code: func azure functionapp publish $app_name"
  [[ -f "$project_dir/.funcignore" ]] || echo "   warning: no .funcignore, so .venv, tests etc. get uploaded too" >&2
  (cd "$project_dir" && func azure functionapp publish "$app_name" --python)
elif $set_secrets; then
  # Key Vault references resolve when the app starts; publishing restarts it, so restart here instead.
  echo "   restarting $app_name so it reads the new secrets"
  az functionapp restart --name "$app_name" --resource-group "$resource_group" --output none
fi
echo "== done"

"""Pre-flight of scripts/deploy.sh: the app settings a deployment would write, checked by shared/settings.py.

    python scripts/check_deploy_settings.py

Reads the same environment variables infra/main.bicepparam reads. A setting the environment does not give keeps
the template's default, which is the default of shared/settings.py (tests/infra checks that they agree). What
only Azure supplies stands in as a placeholder: the Key Vault secrets and the state storage account. Prints every
problem and exits 2, or prints "OK: ..." and exits 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from shared.config.errors import ConfigError
from shared.settings import load_settings

# Environment variables of main.bicepparam that are app settings of the same name.
PASSED_THROUGH = (
    "DATAVERSE_URL",
    "DATAVERSE_TENANT_ID",
    "DATAVERSE_CLIENT_ID",
    "DATAVERSE_CERTIFICATE_THUMBPRINT",
    "CAMPAIGN_ORGANIZATION",
    "CAMPAIGN_CLIENT_ID",
    "SFTP_HOST",
    "SFTP_USERNAME",
    "SFTP_HOST_KEY",
)
PLACEHOLDER = "set-in-key-vault"  # stands in for a secret's value; never a real one
EXIT_OK, EXIT_INVALID = 0, 2


def deployed_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The app settings the template would write for this environment (secrets as placeholders)."""
    values = {name: env[name] for name in PASSED_THROUGH if env.get(name, "").strip()}
    # Defaulted by the template when absent: the tenant of the subscription, which exists by construction.
    values.setdefault("DATAVERSE_TENANT_ID", "00000000-0000-0000-0000-000000000000")
    values["STATE_STORAGE_ACCOUNT"] = "stateaccount"  # the template's own storage account
    values["CAMPAIGN_CLIENT_SECRET"] = PLACEHOLDER
    if env.get("DATAVERSE_AUTH", "secret") == "certificate":
        values["DATAVERSE_CERTIFICATE"] = PLACEHOLDER
    else:
        values["DATAVERSE_CLIENT_SECRET"] = PLACEHOLDER
    if values.get("SFTP_HOST"):
        values["SFTP_PRIVATE_KEY"] = PLACEHOLDER
    return values


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    auth = env.get("DATAVERSE_AUTH", "secret")
    if auth not in ("secret", "certificate"):
        print(f"settings: DATAVERSE_AUTH is {auth!r}; expected secret or certificate", file=sys.stderr)
        return EXIT_INVALID
    try:
        settings = load_settings(deployed_settings(env))
    except ConfigError as err:
        print(f"settings: {err}", file=sys.stderr)
        return EXIT_INVALID
    sftp = f"SFTP {settings.sftp.host}" if settings.sftp else "no SFTP"
    print(f"OK: settings for {settings.dataverse.url} -> Campaign {settings.campaign.organization}; "
          f"Dataverse auth by {auth}; {sftp}")  # fmt: skip
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

"""scripts/deploy.sh run against stand-in `az` and `func` commands that record their calls (no Azure here).
The pre-flight is the real one: the connector's own mapping and settings checks, run by this interpreter."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.bicep_text import declarations, top_level_entries

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy.sh"
EXAMPLE_CONFIG = ROOT / "config" / "sync.example.json"
SETTINGS = {  # the required ones
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
    "DATAVERSE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "CAMPAIGN_ORGANIZATION": "contoso",
    "CAMPAIGN_CLIENT_ID": "abc",
}
SFTP = {
    "SFTP_HOST": "contoso.campaign.adobe.com",
    "SFTP_USERNAME": "contoso",
    "SFTP_HOST_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH",
}
OPTIONAL = ("SFTP_HOST", "SFTP_USERNAME", "SFTP_HOST_KEY", "DATAVERSE_AUTH", "DATAVERSE_CERTIFICATE_THUMBPRINT",
            "DISABLED_FUNCTIONS", "ALERT_EMAIL", "DATAVERSE_TENANT_ID")  # fmt: skip

AZ_STUB = r"""#!/usr/bin/env bash
echo "az $* | env=${AZURE_ENV_NAME:-} location=${AZURE_LOCATION:-}" >>"$STUB_LOG"
case "$*" in
  "account show"*) [[ -z "${STUB_LOGGED_OUT:-}" ]] ;;
  "deployment sub create"*) touch "$STUB_DIR/created" ;;
  "deployment sub show"*)
    if [[ -n "${STUB_FIRST_DEPLOYMENT:-}" && ! -f "$STUB_DIR/created" ]]; then echo "DeploymentNotFound" >&2; exit 3; fi
    echo "func-abc kv-abc rg-custom" ;;
  "functionapp config appsettings list"*) printf '%s\n' ${STUB_DISABLED:-} ;;
  "keyvault secret set"*)
    while (($#)); do [[ "$1" == --file ]] && echo "content of $2: $(cat "$2")" >>"$STUB_LOG"; shift; done
    if [[ -f "$STUB_DIR/kv-fails" ]]; then rm "$STUB_DIR/kv-fails"; exit 1; fi ;;
esac
"""
FUNC_STUB = r"""#!/usr/bin/env bash
echo "func $* | cwd=$PWD" >>"$STUB_LOG"
echo "published config/sync.json: $(sha256sum config/sync.json 2>/dev/null | cut -c1-64)" >>"$STUB_LOG"
"""


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("az", AZ_STUB), ("func", FUNC_STUB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "host.json").write_text("{}")
    (project / ".funcignore").write_text(".venv\n")
    shutil.copy(EXAMPLE_CONFIG, project / "config" / "sync.json")
    env = {k: v for k, v in os.environ.items()
           if k not in SETTINGS and k not in OPTIONAL and not k.startswith(("AZURE_", "STUB_"))}  # fmt: skip
    env.update(PATH=f"{bin_dir}:{env['PATH']}", STUB_LOG=str(tmp_path / "calls.log"), STUB_DIR=str(tmp_path))
    env.update(KEYVAULT_RETRY_SECONDS="0", PROJECT=str(project), PYTHON=sys.executable)
    return env


def deploy(env: dict[str, str], *args: str, **extra_env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], env={**env, **extra_env}, capture_output=True, text=True, timeout=30
    )
    log = Path(env["STUB_LOG"])
    return result, log.read_text().splitlines() if log.exists() else []


def test_help() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "Usage: scripts/deploy.sh --env NAME --location REGION" in result.stdout
    assert all(name in result.stdout for name in (*SETTINGS, *SFTP, "DISABLED_FUNCTIONS", "--config"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--env is required"),
        (("--env", "dev"), "--location is required"),
        (("--env", "dev", "--location"), "--location needs a value"),
        (("--env", "dev prod", "--location", "westeurope"), "--env: 1-40 letters"),
        (("--env", "dev", "--location", "westeurope", "--bogus"), "unknown argument: --bogus"),
        (("--env", "dev", "--location", "westeurope", "--what-if", "--skip-infra"), "cannot be combined"),
    ],
)
def test_bad_arguments_stop_before_azure(stubs: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result, calls = deploy(stubs, *args, **SETTINGS)
    assert result.returncode == 2
    assert message in result.stderr
    assert calls == []


def test_missing_settings_are_named(stubs: dict[str, str]) -> None:
    settings = {k: v for k, v in SETTINGS.items() if k not in ("DATAVERSE_URL", "CAMPAIGN_CLIENT_ID")}
    result, calls = deploy(
        stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"], **settings
    )
    assert result.returncode == 2
    assert "DATAVERSE_URL CAMPAIGN_CLIENT_ID" in result.stderr
    assert calls == []


def test_not_logged_in(stubs: dict[str, str]) -> None:
    result, calls = deploy(
        stubs,
        "--env",
        "dev",
        "--location",
        "westeurope",
        "--project-dir",
        stubs["PROJECT"],
        STUB_LOGGED_OUT="1",
        **SETTINGS,
    )
    assert result.returncode == 2
    assert "az login" in result.stderr
    assert not any("deployment" in call for call in calls)


def test_two_steps_in_order(stubs: dict[str, str]) -> None:
    result, calls = deploy(
        stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"], **SETTINGS
    )
    assert result.returncode == 0, result.stderr
    assert "== 0. pre-flight: mapping" in result.stdout and "OK: " in result.stdout
    params = ROOT / "infra" / "main.bicepparam"
    commands = [c.split(" | ")[0] for c in calls]
    assert commands[0].startswith("az account show")
    assert commands[1].startswith("az deployment sub show --name d365-campaign-connector-dev --query")
    assert commands[2].startswith("az functionapp config appsettings list --name func-abc --resource-group rg-custom")
    assert calls[3] == (
        f"az deployment sub create --name d365-campaign-connector-dev --location westeurope --parameters {params}"
        " --output none | env=dev location=westeurope"
    )
    assert commands[4].startswith("az deployment sub show --name d365-campaign-connector-dev --query")
    assert commands[5] == "func azure functionapp publish func-abc --python"
    assert not calls[5].endswith(f"cwd={stubs['PROJECT']}"), "published from a staged copy, not the checkout"
    assert calls[6] == f"published config/sync.json: {sha256(EXAMPLE_CONFIG)}"
    assert len(calls) == 7


def test_what_if_changes_nothing(stubs: dict[str, str]) -> None:
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--what-if", **SETTINGS)
    assert result.returncode == 0, result.stderr
    assert [c.split(" | ")[0] for c in calls[1:]] == [
        f"az deployment sub what-if --name d365-campaign-connector-dev --location westeurope "
        f"--parameters {ROOT / 'infra' / 'main.bicepparam'}"
    ]


def test_first_deployment_has_no_disabled_functions_to_check(stubs: dict[str, str]) -> None:
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--skip-code",
                           STUB_FIRST_DEPLOYMENT="1", **SETTINGS)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "deployment sub create" in " ".join(calls)
    assert not any("appsettings list" in c for c in calls)


def test_skip_infra_publishes_existing_app_without_settings(stubs: dict[str, str]) -> None:
    result, calls = deploy(
        stubs, "--env", "dev", "--location", "westeurope", "--skip-infra", "--project-dir", stubs["PROJECT"]
    )
    assert result.returncode == 0, result.stderr
    assert not any("deployment sub create" in call for call in calls)
    assert calls[-2].startswith("func azure functionapp publish func-abc --python")


def test_secrets_go_through_files_never_argv(stubs: dict[str, str], tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n")
    certificate = tmp_path / "dataverse.pem"
    certificate.write_text("-----BEGIN PRIVATE KEY-----\nxyz\n-----END PRIVATE KEY-----\n")
    secrets = {"DATAVERSE_CLIENT_SECRET": "dv-s3cret", "CAMPAIGN_CLIENT_SECRET": "cmp-s3cret"}
    (tmp_path / "kv-fails").touch()  # the first write fails, as while the Key Vault role propagates
    result, calls = deploy(
        stubs,
        *("--env", "dev", "--location", "westeurope", "--set-secrets", "--skip-code"),
        SFTP_PRIVATE_KEY_FILE=str(key),
        DATAVERSE_CERTIFICATE_FILE=str(certificate),
        **SETTINGS,
        **SFTP,
        **secrets,
    )
    assert result.returncode == 0, result.stderr
    sets = [c.split(" | ")[0] for c in calls if c.startswith("az keyvault secret set")]
    assert [re.search(r"--name (\S+)", c).group(1) for c in sets] == [  # type: ignore[union-attr]
        "dataverse-client-secret",
        "dataverse-client-secret",
        "campaign-client-secret",
        "dataverse-certificate",
        "sftp-private-key",
    ]
    assert all("--vault-name kv-abc" in c for c in sets)
    assert not any(value in " ".join(sets) + result.stdout + result.stderr for value in secrets.values())
    contents = [c for c in calls if c.startswith("content of")]
    assert contents[1].endswith(": dv-s3cret") and contents[2].endswith(": cmp-s3cret")
    assert contents[3].endswith("-----BEGIN PRIVATE KEY-----")  # the certificate file itself
    assert contents[4].endswith("-----BEGIN OPENSSH PRIVATE KEY-----")  # first line of the key file itself
    assert calls[-1].startswith("az functionapp restart --name func-abc --resource-group rg-custom")


def test_set_secrets_without_any_secret_fails(stubs: dict[str, str]) -> None:
    result, _ = deploy(stubs, "--env", "dev", "--location", "westeurope", "--set-secrets", "--skip-code", **SETTINGS)
    assert result.returncode == 2
    assert "none of the secret variables is set" in result.stderr


def test_script_matches_the_template() -> None:
    """Secret names, required settings and outputs used by the script are the ones the template defines."""
    script = SCRIPT.read_text()
    main = (ROOT / "infra" / "main.bicep").read_text()
    names = top_level_entries(declarations(main, "var")["secretNames"].split("=", 1)[1])
    assert sorted(re.findall(r"^secret_\w+='([\w-]+)'", script, re.MULTILINE)) == sorted(
        v.strip("'") for v in names.values()
    )
    bicepparam = (ROOT / "infra" / "main.bicepparam").read_text()
    required = set(re.findall(r"readEnvironmentVariable\('(\w+)'\)", bicepparam)) - {"AZURE_ENV_NAME", "AZURE_LOCATION"}
    optional = set(re.findall(r"readEnvironmentVariable\('(\w+)', '[^']*'\)", bicepparam))
    assert required == set(SETTINGS)
    assert re.search(r"^required_settings=\(([^)]*)\)", script, re.MULTILINE).group(1).split() == list(SETTINGS)  # type: ignore[union-attr]
    assert all(name in script for name in optional), "--help lists every variable main.bicepparam reads"
    assert set(re.findall(r"properties\.outputs\.(\w+)\.value", script)) <= set(declarations(main, "output"))
    assert f"package_config='{main_default('syncConfig')}'" in script


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main_default(param: str) -> str:
    text = declarations((ROOT / "infra" / "main.bicep").read_text(), "param")[param]
    return text.split("=", 1)[1].strip().strip("'")


# ---------------------------------------------------------------- pre-flight: nothing deployed unless it passes


def test_no_mapping_document_refuses_before_azure(stubs: dict[str, str]) -> None:
    (Path(stubs["PROJECT"]) / "config" / "sync.json").unlink()
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"],
                           **SETTINGS)  # fmt: skip
    assert result.returncode == 2
    assert "no mapping document" in result.stderr and "--config FILE" in result.stderr
    assert calls == []


def test_invalid_mapping_is_listed_and_refused(stubs: dict[str, str], tmp_path: Path) -> None:
    bad = json.loads(EXAMPLE_CONFIG.read_text())
    bad["ingress"]["tables"][0]["target"].pop("keyAttribute")
    bad["version"] = 7
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"],
                           "--config", str(tmp_path / "bad.json"), **SETTINGS)  # fmt: skip
    assert result.returncode == 2
    assert "keyAttribute" in result.stderr and "version" in result.stderr
    assert "nothing deployed" in result.stderr
    assert calls == []


def test_config_option_is_published_as_config_sync_json(stubs: dict[str, str], tmp_path: Path) -> None:
    (Path(stubs["PROJECT"]) / "config" / "sync.json").unlink()
    mine = tmp_path / "prod-mapping.json"
    mine.write_text(json.dumps({**json.loads(EXAMPLE_CONFIG.read_text()), "$comment": "production"}))
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"],
                           "--skip-infra", "--config", str(mine))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert calls[-1] == f"published config/sync.json: {sha256(mine)}"
    assert not (Path(stubs["PROJECT"]) / "config" / "sync.json").exists(), "the checkout is left as it was"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({**SETTINGS, "DATAVERSE_URL": "contoso.crm4.dynamics.com"}, ["DATAVERSE_URL"]),
        ({**SETTINGS, "CAMPAIGN_ORGANIZATION": "contoso/campaign"}, ["CAMPAIGN_ORGANIZATION"]),
        ({**SETTINGS, "SFTP_HOST": "sftp.example.com"}, ["SFTP_USERNAME", "SFTP_HOST_KEY"]),
        ({**SETTINGS, **SFTP, "SFTP_HOST_KEY": "not a key"}, ["SFTP_HOST_KEY"]),
        ({**SETTINGS, "DATAVERSE_AUTH": "certificate"}, ["DATAVERSE_CERTIFICATE_THUMBPRINT"]),
        ({**SETTINGS, "DATAVERSE_AUTH": "password"}, ["DATAVERSE_AUTH"]),
    ],
)
def test_settings_problems_refuse_before_azure(stubs: dict[str, str], settings: dict[str, str],
                                               named: list[str]) -> None:  # fmt: skip
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"],
                           **settings)  # fmt: skip
    assert result.returncode == 2
    assert all(name in result.stderr for name in named), result.stderr
    assert calls == []


def test_check_only_needs_no_azure(stubs: dict[str, str]) -> None:
    result, calls = deploy(stubs, "--check-only", "--project-dir", stubs["PROJECT"], **SETTINGS, **SFTP,
                           DATAVERSE_AUTH="certificate", DATAVERSE_CERTIFICATE_THUMBPRINT="ab" * 20)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pre-flight passed" in result.stdout and "Dataverse auth by certificate; SFTP contoso" in result.stdout
    assert calls == []


# ---------------------------------------------------------------- functions disabled in Azure stay disabled


def test_a_function_disabled_in_azure_is_not_enabled_silently(stubs: dict[str, str]) -> None:
    disabled = "AzureWebJobs.ingress_custom_tables.Disabled"
    args = ("--env", "dev", "--location", "westeurope", "--skip-code")
    result, calls = deploy(stubs, *args, STUB_DISABLED=disabled, **SETTINGS)
    assert result.returncode == 2
    assert "ingress_custom_tables" in result.stderr and "DISABLED_FUNCTIONS=ingress_custom_tables" in result.stderr
    assert not any("deployment sub create" in c for c in calls)

    kept, calls = deploy(stubs, *args, STUB_DISABLED=disabled, DISABLED_FUNCTIONS="x, ingress_custom_tables",
                         **SETTINGS)  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert any("deployment sub create" in c for c in calls)

    enabled, _ = deploy(stubs, *args, "--enable-functions", STUB_DISABLED=disabled, **SETTINGS)
    assert enabled.returncode == 0, enabled.stderr

"""scripts/deploy.sh run against stand-in `az` and `func` commands that record their calls (no Azure here)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.infra.bicep_text import declarations, top_level_entries

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy.sh"
SETTINGS = {
    "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
    "DATAVERSE_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
    "CAMPAIGN_ORGANIZATION": "contoso",
    "CAMPAIGN_CLIENT_ID": "abc",
    "SFTP_HOST": "contoso.campaign.adobe.com",
    "SFTP_USERNAME": "contoso",
    "SFTP_HOST_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH",
}

AZ_STUB = r"""#!/usr/bin/env bash
echo "az $* | env=${AZURE_ENV_NAME:-} location=${AZURE_LOCATION:-}" >>"$STUB_LOG"
case "$*" in
  "account show"*) [[ -z "${STUB_LOGGED_OUT:-}" ]] ;;
  "deployment sub show"*) echo "func-abc kv-abc rg-custom" ;;
  "keyvault secret set"*)
    while (($#)); do [[ "$1" == --file ]] && echo "content of $2: $(cat "$2")" >>"$STUB_LOG"; shift; done
    if [[ -f "$STUB_DIR/kv-fails" ]]; then rm "$STUB_DIR/kv-fails"; exit 1; fi ;;
esac
"""
FUNC_STUB = r"""#!/usr/bin/env bash
echo "func $* | cwd=$PWD" >>"$STUB_LOG"
"""


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("az", AZ_STUB), ("func", FUNC_STUB)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    project = tmp_path / "project"
    project.mkdir()
    (project / "host.json").write_text("{}")
    (project / ".funcignore").write_text(".venv\n")
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS and not k.startswith(("AZURE_", "STUB_"))}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", STUB_LOG=str(tmp_path / "calls.log"), STUB_DIR=str(tmp_path))
    env.update(KEYVAULT_RETRY_SECONDS="0", PROJECT=str(project))
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
    assert all(name in result.stdout for name in SETTINGS)


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
    settings = {k: v for k, v in SETTINGS.items() if k not in ("SFTP_HOST", "CAMPAIGN_CLIENT_ID")}
    result, calls = deploy(
        stubs, "--env", "dev", "--location", "westeurope", "--project-dir", stubs["PROJECT"], **settings
    )
    assert result.returncode == 2
    assert "CAMPAIGN_CLIENT_ID SFTP_HOST" in result.stderr
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
    params = ROOT / "infra" / "main.bicepparam"
    assert calls[0].startswith("az account show")
    assert calls[1] == (
        f"az deployment sub create --name d365-campaign-connector-dev --location westeurope --parameters {params}"
        " --output none | env=dev location=westeurope"
    )
    assert calls[2].startswith("az deployment sub show --name d365-campaign-connector-dev --query")
    assert calls[3] == f"func azure functionapp publish func-abc --python | cwd={stubs['PROJECT']}"
    assert len(calls) == 4


def test_what_if_changes_nothing(stubs: dict[str, str]) -> None:
    result, calls = deploy(stubs, "--env", "dev", "--location", "westeurope", "--what-if", **SETTINGS)
    assert result.returncode == 0, result.stderr
    assert [c.split(" | ")[0] for c in calls[1:]] == [
        f"az deployment sub what-if --name d365-campaign-connector-dev --location westeurope "
        f"--parameters {ROOT / 'infra' / 'main.bicepparam'}"
    ]


def test_skip_infra_publishes_existing_app_without_settings(stubs: dict[str, str]) -> None:
    result, calls = deploy(
        stubs, "--env", "dev", "--location", "westeurope", "--skip-infra", "--project-dir", stubs["PROJECT"]
    )
    assert result.returncode == 0, result.stderr
    assert not any("deployment sub create" in call for call in calls)
    assert calls[-1].startswith("func azure functionapp publish func-abc --python")


def test_secrets_go_through_files_never_argv(stubs: dict[str, str], tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n")
    secrets = {"DATAVERSE_CLIENT_SECRET": "dv-s3cret", "CAMPAIGN_CLIENT_SECRET": "cmp-s3cret"}
    (tmp_path / "kv-fails").touch()  # the first write fails, as while the Key Vault role propagates
    result, calls = deploy(
        stubs,
        *("--env", "dev", "--location", "westeurope", "--set-secrets", "--skip-code"),
        SFTP_PRIVATE_KEY_FILE=str(key),
        **SETTINGS,
        **secrets,
    )
    assert result.returncode == 0, result.stderr
    sets = [c.split(" | ")[0] for c in calls if c.startswith("az keyvault secret set")]
    assert [re.search(r"--name (\S+)", c).group(1) for c in sets] == [  # type: ignore[union-attr]
        "dataverse-client-secret",
        "dataverse-client-secret",
        "campaign-client-secret",
        "sftp-private-key",
    ]
    assert all("--vault-name kv-abc" in c for c in sets)
    assert not any(value in " ".join(sets) + result.stdout + result.stderr for value in secrets.values())
    contents = [c for c in calls if c.startswith("content of")]
    assert contents[1].endswith(": dv-s3cret") and contents[2].endswith(": cmp-s3cret")
    assert contents[3].endswith("-----BEGIN OPENSSH PRIVATE KEY-----")  # first line of the key file itself
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
    env_read = set(re.findall(r"readEnvironmentVariable\('(\w+)'\)", bicepparam)) - {"AZURE_ENV_NAME", "AZURE_LOCATION"}
    assert env_read == set(SETTINGS)
    assert set(re.findall(r"properties\.outputs\.(\w+)\.value", script)) <= set(declarations(main, "output"))

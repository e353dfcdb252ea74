"""Operator CLI: bad configuration exits 2 with every problem and writes nothing to state."""

from __future__ import annotations

import json
import pathlib

import pytest
from azure.data.tables import TableServiceClient

from shared import cli

REPO = pathlib.Path(__file__).resolve().parents[2]


def write_settings(tmp_path: pathlib.Path, **values: str) -> pathlib.Path:
    sample = json.loads((REPO / "local.settings.sample.json").read_text())["Values"]
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {**sample, **values}}))
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.settings

    for spec in shared.settings.SPECS:
        monkeypatch.delenv(spec.name, raising=False)


def test_bad_settings_and_config_exit_2_listing_every_problem(
    tmp_path: pathlib.Path, clean_env: None, storage_connection_string: str, table_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings = write_settings(
        tmp_path, DATAVERSE_PAGE_SIZE="9000", CAMPAIGN_ORGANIZATION="", STATE_TABLE_PREFIX=table_prefix,
        STATE_STORAGE_CONNECTION_STRING=storage_connection_string,
    )  # fmt: skip
    assert cli.main(["--settings", str(settings), "validate"]) == 2
    err = capsys.readouterr().err
    assert "DATAVERSE_PAGE_SIZE" in err and "CAMPAIGN_ORGANIZATION" in err

    # Settings and mapping problems come in one list.
    settings = write_settings(tmp_path, DATAVERSE_PAGE_SIZE="0", SYNC_CONFIG='{"version": 2}')
    assert cli.main(["--settings", str(settings), "validate"]) == 2
    err = capsys.readouterr().err
    assert "DATAVERSE_PAGE_SIZE" in err and "SYNC_CONFIG $.version" in err

    bad_config = json.dumps({"version": 1, "ingress": {"tables": [{"source": {}, "target": {}, "fields": []}]}})
    settings = write_settings(
        tmp_path, SYNC_CONFIG=bad_config, STATE_TABLE_PREFIX=table_prefix,
        STATE_STORAGE_CONNECTION_STRING=storage_connection_string,
    )  # fmt: skip
    assert cli.main(["--settings", str(settings), "run", "ingress"]) == 2
    err = capsys.readouterr().err
    assert "$.ingress.tables[0]" in err and err.count("  - ") >= 3
    tables = [t.name for t in TableServiceClient.from_connection_string(storage_connection_string).list_tables()]
    assert not [name for name in tables if name.startswith(table_prefix)]  # nothing written to state


def test_validate_accepts_the_sample_settings(tmp_path: pathlib.Path, clean_env: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    ca = tmp_path / "sandbox-ca.pem"  # the sample names the CA file scripts/local-host.sh writes when it starts
    ca.write_text("")
    settings = write_settings(tmp_path, DATAVERSE_CA_BUNDLE=str(ca))
    assert cli.main(["--settings", str(settings), "validate", "--offline"]) == 0
    assert "contacts, loyaltycards" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["disabled", "toCampaign"])
def test_opt_out_modes_without_the_campaign_file_are_accepted(
    tmp_path: pathlib.Path, clean_env: None, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    document = json.loads((REPO / "config" / "sync.example.json").read_text())
    document["optOut"]["mode"] = mode
    ca = tmp_path / "sandbox-ca.pem"
    ca.write_text("")
    settings = write_settings(tmp_path, SYNC_CONFIG=json.dumps(document), DATAVERSE_CA_BUNDLE=str(ca))
    assert cli.main(["--settings", str(settings), "validate", "--offline"]) == 0, capsys.readouterr().err


def test_bidirectional_opt_outs_need_the_sftp_settings(
    tmp_path: pathlib.Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((REPO / "config" / "sync.example.json").read_text())
    document["optOut"]["mode"] = "bidirectional"
    ca = tmp_path / "sandbox-ca.pem"
    ca.write_text("")
    settings = write_settings(tmp_path, SYNC_CONFIG=json.dumps(document), DATAVERSE_CA_BUNDLE=str(ca))
    assert cli.main(["--settings", str(settings), "validate", "--offline"]) == 2
    err = capsys.readouterr().err
    for name in ("SFTP_HOST", "SFTP_USERNAME", "SFTP_PRIVATE_KEY", "SFTP_HOST_KEY"):
        assert f"{name}: missing: optOut.mode bidirectional reads Campaign's opt-out export" in err
    sftp = {"SFTP_HOST": "sftp.example.com", "SFTP_USERNAME": "acme", "SFTP_PRIVATE_KEY": "key",
            "SFTP_HOST_KEY": "SHA256:" + "A" * 43}  # fmt: skip
    settings = write_settings(tmp_path, SYNC_CONFIG=json.dumps(document), DATAVERSE_CA_BUNDLE=str(ca), **sftp)
    assert cli.main(["--settings", str(settings), "validate", "--offline"]) == 0


def test_egress_turned_on_needs_the_sftp_settings(
    tmp_path: pathlib.Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads((REPO / "config" / "sync.example.json").read_text())
    document["egress"]["enabled"] = True
    ca = tmp_path / "sandbox-ca.pem"
    ca.write_text("")
    settings = write_settings(tmp_path, SYNC_CONFIG=json.dumps(document), DATAVERSE_CA_BUNDLE=str(ca))
    assert cli.main(["--settings", str(settings), "validate", "--offline"]) == 2
    err = capsys.readouterr().err
    for name in ("SFTP_HOST", "SFTP_USERNAME", "SFTP_PRIVATE_KEY", "SFTP_HOST_KEY"):
        assert f"{name}: missing: egress is enabled" in err
    sftp = {"SFTP_HOST": "sftp.example.com", "SFTP_USERNAME": "acme", "SFTP_PRIVATE_KEY": "key",
            "SFTP_HOST_KEY": "SHA256:" + "A" * 43}  # fmt: skip
    settings = write_settings(tmp_path, SYNC_CONFIG=json.dumps(document), DATAVERSE_CA_BUNDLE=str(ca), **sftp)
    assert cli.main(["--settings", str(settings), "validate", "--offline"]) == 0

"""Settings: typed, validated once, every problem reported together by name, secrets never shown."""

from __future__ import annotations

import json
import pathlib

import pytest

from shared.config.errors import ConfigError
from shared.settings import SPECS, Secret, load_settings, read_local_settings

REPO = pathlib.Path(__file__).resolve().parents[2]

GOOD = {
    "DATAVERSE_URL": "https://contoso.crm.dynamics.com/",
    "DATAVERSE_TENANT_ID": "tenant",
    "DATAVERSE_CLIENT_ID": "client",
    "DATAVERSE_CLIENT_SECRET": "dv-s3cret-value",
    "CAMPAIGN_ORGANIZATION": "contoso-mkt-stage",
    "CAMPAIGN_CLIENT_ID": "apikey",
    "CAMPAIGN_CLIENT_SECRET": "acs-s3cret-value",
    "STATE_STORAGE_ACCOUNT": "contosostate",
}


def problems(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    return {p.path: p.message for p in err.value.problems}


def test_good_settings_with_defaults() -> None:
    settings = load_settings(GOOD)
    assert settings.dataverse.url == "https://contoso.crm.dynamics.com"
    assert settings.dataverse.page_size == 5000 and settings.campaign.max_parallel == 8
    assert settings.campaign.api_root == "https://mc.adobe.io/contoso-mkt-stage/campaign/"
    assert settings.sftp is None and settings.ingress_schedule == "0 */5 * * * *"
    assert settings.run.time_budget_seconds == 1500.0


def test_every_missing_setting_is_reported_at_once() -> None:
    found = problems({})
    assert set(found) == {
        "DATAVERSE_URL", "DATAVERSE_TENANT_ID", "DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET",
        "CAMPAIGN_ORGANIZATION", "CAMPAIGN_CLIENT_ID", "CAMPAIGN_CLIENT_SECRET", "STATE_STORAGE_ACCOUNT",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("DATAVERSE_URL", "contoso.crm.dynamics.com", "URL"),
        ("DATAVERSE_PAGE_SIZE", "6000", "1 to 5000"),
        ("DATAVERSE_PAGE_SIZE", "many", "1 to 5000"),
        ("DATAVERSE_MAX_PARALLEL", "0", "1 to 52"),
        ("CAMPAIGN_MAX_PARALLEL", "1000", "1 to 64"),
        ("CAMPAIGN_ORGANIZATION", "con/toso", "tenant id"),
        ("CAMPAIGN_BASE_URL", "mc.adobe.io", "URL"),
        ("INGRESS_SCHEDULE", "every five minutes", "NCRONTAB"),
        ("RUN_TIME_BUDGET_SECONDS", "1", "10 to"),
        ("STATE_TABLE_PREFIX", "sync-state", "letters and digits"),
        ("STATE_CONTAINER", "Sync_Staging", "container"),
        ("DATAVERSE_CA_BUNDLE", "/nonexistent/ca.pem", "no such file"),
        ("DATAVERSE_CERTIFICATE", "-----BEGIN PRIVATE KEY-----", "DATAVERSE_CERTIFICATE"),
        ("CAMPAIGN_CLIENT_SECRET", "@Microsoft.KeyVault(SecretUri=https://kv/secrets/acs)", "not resolved"),
    ],
)
def test_malformed_setting_names_itself(name: str, value: str, fragment: str) -> None:
    found = problems({**GOOD, name: value})
    assert any(fragment in message for message in found.values()), found
    assert name in found or name == "DATAVERSE_CERTIFICATE"


def test_sftp_group_is_all_or_nothing() -> None:
    found = problems({**GOOD, "SFTP_HOST": "sftp.example.com", "SFTP_HOST_KEY": "not-a-key"})
    assert {"SFTP_USERNAME", "SFTP_PRIVATE_KEY", "SFTP_HOST_KEY"} <= set(found)


def test_several_problems_together() -> None:
    env = {**GOOD, "DATAVERSE_PAGE_SIZE": "0", "INGRESS_SCHEDULE": "x", "CAMPAIGN_CLIENT_SECRET": ""}
    assert set(problems(env)) == {"DATAVERSE_PAGE_SIZE", "INGRESS_SCHEDULE", "CAMPAIGN_CLIENT_SECRET"}


def test_secrets_never_show() -> None:
    settings = load_settings(GOOD)
    text = repr(settings) + str(settings.campaign.client_secret)
    assert "dv-s3cret-value" not in text and "acs-s3cret-value" not in text
    assert settings.campaign.client_secret.reveal() == "acs-s3cret-value"
    assert repr(Secret("x")) == "Secret('***')"
    # Errors name settings, never echo a secret's value.
    with pytest.raises(ConfigError) as err:
        load_settings({**GOOD, "DATAVERSE_URL": "bad", "SFTP_PRIVATE_KEY": "PRIVATE-KEY-MATERIAL"})
    assert "PRIVATE-KEY-MATERIAL" not in str(err.value)


def test_sample_local_settings_lists_every_setting() -> None:
    values = read_local_settings(REPO / "local.settings.sample.json")
    assert {spec.name for spec in SPECS} <= set(values)


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [spec.name for spec in SPECS if f"`{spec.name}`" not in readme]
    assert missing == []


def test_read_local_settings_stringifies(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"DATAVERSE_PAGE_SIZE": 100}}))
    assert read_local_settings(path) == {"DATAVERSE_PAGE_SIZE": "100"}


# ---------------------------------------------------------------- base URLs are bare hosts


@pytest.mark.parametrize(
    "value",
    [
        "https://mc.adobe.io/contoso-mkt-stage/campaign",  # how Adobe writes the API root
        "https://mc.adobe.io/contoso-mkt-stage/campaign/",
        "https://mc.adobe.io/",
        "https://mc.adobe.io",
    ],
)
def test_campaign_base_url_with_its_own_org_path_is_normalised(value: str) -> None:
    campaign = load_settings({**GOOD, "CAMPAIGN_BASE_URL": value}).campaign
    assert campaign.base_url == "https://mc.adobe.io"
    assert campaign.api_root == "https://mc.adobe.io/contoso-mkt-stage/campaign/"


def test_campaign_base_url_naming_another_org_is_refused() -> None:
    found = problems({**GOOD, "CAMPAIGN_BASE_URL": "https://mc.adobe.io/fabrikam/campaign"})
    assert set(found) == {"CAMPAIGN_BASE_URL"}
    assert "'fabrikam'" in found["CAMPAIGN_BASE_URL"] and "CAMPAIGN_ORGANIZATION" in found["CAMPAIGN_BASE_URL"]


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("CAMPAIGN_BASE_URL", "https://mc.adobe.io/campaign", "'/campaign'"),
        ("CAMPAIGN_IMS_URL", "https://ims-na1.adobelogin.com/ims/token/v3", "'/ims/token/v3'"),
        ("DATAVERSE_AUTHORITY_HOST", "https://login.microsoftonline.com/tenant", "'/tenant'"),
        ("DATAVERSE_AUTHORITY_HOST", "https://login.microsoftonline.com?x=1", "'?x=1'"),
    ],
)
def test_base_url_with_a_path_names_the_setting(name: str, value: str, shown: str) -> None:
    found = problems({**GOOD, name: value})
    assert set(found) == {name}
    assert "host only" in found[name] and shown in found[name]


def test_bare_hosts_keep_their_port() -> None:
    settings = load_settings({**GOOD, "CAMPAIGN_IMS_URL": "http://127.0.0.1:8081/",
                              "DATAVERSE_AUTHORITY_HOST": "https://127.0.0.1:8443"})  # fmt: skip
    assert settings.campaign.ims_token_url == "http://127.0.0.1:8081/ims/token/v3"
    assert settings.dataverse.authority_host == "https://127.0.0.1:8443"


# ---------------------------------------------------------------- telemetry


def test_telemetry_export_defaults_off_and_is_checked() -> None:
    assert load_settings(GOOD).telemetry_export == "off"
    assert load_settings({**GOOD, "TELEMETRY_EXPORT": "Azure-Monitor"}).telemetry_export == "azure-monitor"
    assert "off, azure-monitor" in problems({**GOOD, "TELEMETRY_EXPORT": "stdout"})["TELEMETRY_EXPORT"]

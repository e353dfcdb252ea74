"""The opt-out export workflow (docs/campaign-optout-export.md): every profile modified since the last run, its
opt-outs as 1/0 in the instance's spelling, read back with Python's csv module."""

from __future__ import annotations

import csv
import pathlib
import urllib.parse

import pytest

from sandbox.campaign import CampaignSandbox
from tests.fixtures.campaign import RawCampaign

COLUMNS = [
    "externalId",
    "lastModified",
    "denyList",
    "denyListEmail",
    "denyListFax",
    "denyListMobile",
    "denyListPhone",
    "denyListPostalMail",
    "denyListPushnotification",
    "ccpaOptOut",
]


def export(sandbox: CampaignSandbox) -> tuple[list[str], list[list[str]]]:
    result = sandbox.export_optouts()
    assert result["file"].startswith("campaign_optouts_") and result["file"].endswith(".csv")
    path: pathlib.Path = sandbox.export_folder / result["file"]
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert result["rows"] == len(rows) - 1
    return rows[0], rows[1:]


def test_first_run_exports_every_profile_then_only_changes(
    campaign_sftp_sandbox: CampaignSandbox, campaign_raw: RawCampaign
) -> None:
    campaign_sftp_sandbox.seed(
        "profile",
        [
            {"externalId": "c-1", "denyListEmail": True, "lastModified": "2025-03-01 08:00:00.000Z"},
            {"externalId": "c-2", "ccpaOptOut": True, "denyList": True, "lastModified": "2025-03-02 09:30:15.250Z"},
            {"email": "native@example.com", "lastModified": "2025-03-03 10:00:00.000Z"},
        ],
    )
    header, rows = export(campaign_sftp_sandbox)
    assert header == COLUMNS
    assert rows == [
        ["c-1", "2025/03/01 08:00:00", "0", "1", "0", "0", "0", "0", "0", "0"],
        ["c-2", "2025/03/02 09:30:15", "1", "0", "0", "0", "0", "0", "0", "1"],
        ["", "2025/03/03 10:00:00", "0", "0", "0", "0", "0", "0", "0", "0"],
    ]

    campaign_sftp_sandbox.advance_clock(1)
    assert export(campaign_sftp_sandbox)[1] == []  # nothing changed: a header-only file

    # The connector (or any API client) changes c-2 through the REST API.
    pkey = campaign_sftp_sandbox.find_rows("profile", externalId="c-2")[0]["PKey"]
    patched = campaign_raw.call(
        "PATCH", f"profileAndServicesExt/profile/{urllib.parse.quote(pkey)}", {"ccpaOptOut": False}
    )
    assert patched.status_code == 200
    campaign_sftp_sandbox.advance_clock(1)
    _, rows = export(campaign_sftp_sandbox)
    modified = campaign_sftp_sandbox.find_rows("profile", externalId="c-2")[0]["lastModified"]
    assert rows == [["c-2", modified[:19].replace("-", "/"), "1", "0", "0", "0", "0", "0", "0", "0"]]


def test_a_campaign_user_unsubscribes(campaign_sftp_sandbox: CampaignSandbox) -> None:
    campaign_sftp_sandbox.seed("profile", [{"externalId": "c-1", "lastModified": "2025-03-01 08:00:00.000Z"}])
    export(campaign_sftp_sandbox)
    campaign_sftp_sandbox.advance_clock(5)
    profile = campaign_sftp_sandbox.unsubscribe(external_id="c-1")
    assert profile["denyListEmail"] is True
    assert campaign_sftp_sandbox.attribute_times("profile", profile["PKey"])["denyListEmail"] == profile["lastModified"]
    _, rows = export(campaign_sftp_sandbox)
    assert [(row[0], row[3]) for row in rows] == [("c-1", "1")]

    campaign_sftp_sandbox.advance_clock(5)
    campaign_sftp_sandbox.unsubscribe(pkey=profile["PKey"], changes={"denyListEmail": False, "denyListMobile": True})
    _, rows = export(campaign_sftp_sandbox)
    assert [(row[3], row[5]) for row in rows] == [("0", "1")]

    campaign_sftp_sandbox.advance_clock(5)
    campaign_sftp_sandbox.unsubscribe(pkey=profile["PKey"], changes={"denyListMobile": True})  # no change
    assert export(campaign_sftp_sandbox)[1] == []


def test_unsubscribe_refuses_what_is_not_an_opt_out(campaign_sftp_sandbox: CampaignSandbox) -> None:
    campaign_sftp_sandbox.seed("profile", [{"externalId": "c-1"}])
    with pytest.raises(ValueError, match="'email' is not an opt-out attribute"):
        campaign_sftp_sandbox.unsubscribe(external_id="c-1", changes={"email": True})
    with pytest.raises(ValueError, match="must be true or false"):
        campaign_sftp_sandbox.unsubscribe(external_id="c-1", changes={"denyList": "yes"})  # type: ignore[dict-item]
    with pytest.raises(KeyError):
        campaign_sftp_sandbox.unsubscribe(external_id="nobody")


def test_the_older_spelling_is_exported_as_the_instance_spells_it(campaign_sftp_sandbox: CampaignSandbox) -> None:
    campaign_sftp_sandbox.seed("profile", [{"externalId": "c-1", "denyListPhone": True}])
    campaign_sftp_sandbox.set_optout_spelling("blackList")
    header, rows = export(campaign_sftp_sandbox)
    assert header == [name.replace("denyList", "blackList") for name in COLUMNS]
    assert rows[0][6] == "1"
    campaign_sftp_sandbox.advance_clock(1)
    assert campaign_sftp_sandbox.unsubscribe(external_id="c-1")["blackListEmail"] is True

"""Deliveries and the two event export workflows (docs/campaign-event-export.md): files in the export folder, read
back here with Python's csv module (independent of the sandbox's writer) and compared with the events `deliver`
returned."""

from __future__ import annotations

import csv
import pathlib
from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox
from sandbox.campaign.errors import SandboxError
from sandbox.campaign.files import FileProblem

HEADER = [
    "eventId",
    "eventType",
    "eventDate",
    "externalId",
    "campaignId",
    "campaignLabel",
    "deliveryId",
    "deliveryLabel",
    "trackingUrl",
    "mirrorPageUrl",
    "failureType",
    "failureReason",
]
NO_BOUNCES = {"hardBounce": 0, "softBounce": 0, "ignoredBounce": 0, "asyncBounce": 0}


def read(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def exported(sandbox: CampaignSandbox) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    result = sandbox.export_logs()
    folder = sandbox.export_folder
    return read(folder / result["files"]["deliverylogs"]), read(folder / result["files"]["trackinglogs"])


def as_file_row(event: dict[str, Any]) -> dict[str, str]:
    return {name: event[name] for name in HEADER}


def people(sandbox: CampaignSandbox, count: int) -> list[str]:
    ids = [f"contact-{i:03d}" for i in range(count)]
    sandbox.seed("profile", [{"externalId": value, "email": f"{value}@example.com"} for value in ids])
    return ids


def test_a_delivery_is_exported_as_its_events(campaign_sftp_sandbox: CampaignSandbox) -> None:
    ids = people(campaign_sftp_sandbox, 40)
    delivery = campaign_sftp_sandbox.deliver(external_ids=ids, without_external_id=3, seed=11)
    assert (delivery["campaignId"], delivery["deliveryId"]) == ("OP1", "DM1")
    events = delivery["events"]
    kinds = {e["eventType"] for e in events}
    assert kinds == {"send", "open", "click", "bounce"}  # seed 11 with the default rates makes every kind

    deliveries, tracking = exported(campaign_sftp_sandbox)
    not_yet = [e for e in events if e["asynchronous"]]  # their bounce is in the future of the sandbox clock
    expected_delivery = [as_file_row(e) for e in events if e["log"] == "deliverylogs" and not e["asynchronous"]]
    assert sorted(map(str, deliveries)) == sorted(map(str, expected_delivery))
    assert len(deliveries) == 43  # one per message, a later bounce is a second version of the same log
    expected_tracking = [as_file_row(e) for e in events if e["log"] == "trackinglogs"]
    assert sorted(map(str, tracking)) == sorted(map(str, expected_tracking))
    assert not_yet, "seed 11 has an asynchronous bounce"

    clicks = [row for row in tracking if row["eventType"] == "click"]
    assert all(row["trackingUrl"].startswith("https://www.example.com/") for row in clicks)
    assert {row["eventType"] for row in tracking} == {"open", "click"}
    assert all(row["failureType"] == row["failureReason"] == "" for row in tracking)
    native = [row for row in deliveries if row["externalId"] == ""]
    assert len(native) == 3  # the Campaign-only profiles: no externalId
    bounces = [row for row in deliveries if row["eventType"] == "bounce"]
    assert all(row["failureType"] in ("hard", "soft", "ignored") and row["failureReason"] for row in bounces)


def test_an_asynchronous_bounce_is_exported_first_as_send_then_as_bounce(
    campaign_sftp_sandbox: CampaignSandbox,
) -> None:
    ids = people(campaign_sftp_sandbox, 3)
    delivery = campaign_sftp_sandbox.deliver(external_ids=ids, rates={**NO_BOUNCES, "asyncBounce": 1.0, "open": 0})
    first, tracking = exported(campaign_sftp_sandbox)
    assert [row["eventType"] for row in first] == ["send", "send", "send"]
    assert tracking == []  # bounced messages are never opened

    campaign_sftp_sandbox.advance_clock(3599)
    assert exported(campaign_sftp_sandbox)[0] == []  # not yet
    campaign_sftp_sandbox.advance_clock(1)
    later, _ = exported(campaign_sftp_sandbox)
    assert [row["eventId"] for row in later] == [row["eventId"] for row in first]
    assert {row["eventType"] for row in later} == {"bounce"}
    expected = [as_file_row(e) for e in delivery["events"] if e["asynchronous"]]
    assert later == expected
    assert all(row["eventDate"] > first[0]["eventDate"] for row in later)

    campaign_sftp_sandbox.advance_clock(1)
    assert exported(campaign_sftp_sandbox) == ([], [])  # incremental: nothing new, header-only files


def test_failures_carry_campaign_types_and_reasons(campaign_sftp_sandbox: CampaignSandbox) -> None:
    ids = people(campaign_sftp_sandbox, 12)
    campaign_sftp_sandbox.seed("profile", [{"externalId": "no-mail"}])
    campaign_sftp_sandbox.deliver(external_ids=[*ids, "no-mail"], rates={**NO_BOUNCES, "hardBounce": 1.0})
    rows, _ = exported(campaign_sftp_sandbox)
    by_id = {row["externalId"]: row for row in rows}
    assert (by_id["no-mail"]["failureType"], by_id["no-mail"]["failureReason"]) == ("hard", "Address empty")
    reasons = {"User unknown", "Quarantined address", "Unreachable", "Refused", "Account disabled"}
    assert all(row["eventType"] == "bounce" and row["failureType"] == "hard" for row in rows)
    assert {row["failureReason"] for row in rows if row["externalId"] != "no-mail"} <= reasons

    campaign_sftp_sandbox.advance_clock(1)
    campaign_sftp_sandbox.deliver(external_ids=ids, rates={**NO_BOUNCES, "softBounce": 1.0})
    soft, _ = exported(campaign_sftp_sandbox)
    assert {row["failureType"] for row in soft} == {"soft"}
    assert {row["deliveryId"] for row in soft} == {"DM2"}  # incremental: only the new delivery


def test_denylisted_profiles_are_excluded_and_labels_survive_quoting(campaign_sftp_sandbox: CampaignSandbox) -> None:
    ids = people(campaign_sftp_sandbox, 2)
    campaign_sftp_sandbox.seed("profile", [{"externalId": "gone", "email": "g@example.com", "denyListEmail": True}])
    label = 'Spring; "sale"\nwith emoji 🎉 '
    delivery = campaign_sftp_sandbox.deliver(
        external_ids=[*ids, "gone"],
        campaign_label=label,
        delivery_label="DM;190",
        rates={**NO_BOUNCES, "open": 1.0, "click": 1.0},
        urls=['https://shop.example.com/a;b?c="d"&e=f'],
    )
    assert [e["externalId"] for e in delivery["excluded"]] == ["gone"]
    rows, tracking = exported(campaign_sftp_sandbox)
    assert sorted(row["externalId"] for row in rows) == ids
    assert {row["campaignLabel"] for row in rows + tracking} == {label}
    assert {row["deliveryLabel"] for row in rows} == {"DM;190"}
    assert {row["trackingUrl"] for row in tracking if row["eventType"] == "click"} == {
        'https://shop.example.com/a;b?c="d"&e=f'
    }


def test_the_same_seed_replays_the_same_events(campaign_sftp_sandbox: CampaignSandbox) -> None:
    def play() -> list[tuple[str, ...]]:
        campaign_sftp_sandbox.reset(campaign_sftp_sandbox.config)
        ids = people(campaign_sftp_sandbox, 30)
        events = campaign_sftp_sandbox.deliver(external_ids=ids, seed=5)["events"]
        return [(e["eventId"], e["eventType"], e["externalId"], e["failureReason"], e["trackingUrl"]) for e in events]

    assert play() == play()


def test_the_profile_is_read_at_export_time(campaign_sftp_sandbox: CampaignSandbox) -> None:
    ids = people(campaign_sftp_sandbox, 1)
    campaign_sftp_sandbox.deliver(external_ids=ids, rates=NO_BOUNCES)
    pkey = campaign_sftp_sandbox.rows("profile")[0]["PKey"]
    campaign_sftp_sandbox.state.tables["profile"].delete(pkey)
    rows, _ = exported(campaign_sftp_sandbox)
    assert [row["externalId"] for row in rows] == [""]  # Campaign keeps logs of deleted profiles


def test_count_picks_profiles_that_have_an_external_id(campaign_sftp_sandbox: CampaignSandbox) -> None:
    ids = people(campaign_sftp_sandbox, 10)
    campaign_sftp_sandbox.seed("profile", [{"email": "native@example.com"}])
    delivery = campaign_sftp_sandbox.deliver(count=4, seed=2)
    chosen = [t["externalId"] for t in delivery["targets"]]
    assert len(set(chosen)) == 4
    assert set(chosen) <= set(ids)
    with pytest.raises(ValueError, match="only 10 more profiles"):
        campaign_sftp_sandbox.deliver(count=11)


def test_two_exports_in_one_second_are_refused_not_overwritten(campaign_sftp_sandbox: CampaignSandbox) -> None:
    refusal = None
    for _ in range(5):  # two calls can straddle a second boundary on a slow machine: then both are fine
        campaign_sftp_sandbox.advance_clock(1)
        first = campaign_sftp_sandbox.export_logs()
        try:
            campaign_sftp_sandbox.export_logs()
        except FileProblem as problem:
            refusal = problem
            break
    assert refusal is not None
    assert "already ran in this second" in str(refusal)
    assert first["files"]["deliverylogs"] in str(refusal)
    names = sorted(p.name for p in campaign_sftp_sandbox.export_folder.iterdir())
    assert len(names) % 2 == 0
    assert all(name.startswith("campaign_events_") and name.endswith("logs.csv") for name in names)
    history = campaign_sftp_sandbox.export_history()
    assert [entry["workflow"] for entry in history] == ["deliverylogs", "trackinglogs"] * (len(names) // 2)


def test_exports_need_an_sftp_root(campaign_sandbox: CampaignSandbox) -> None:
    with pytest.raises(SandboxError) as info:
        campaign_sandbox.export_logs()
    assert info.value.status == 501

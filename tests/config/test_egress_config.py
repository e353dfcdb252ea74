"""The egress block: the export's column layout, the activity columns and the owner, their defaults and checks."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import ConfigError, dump_sync_config, parse_sync_config
from shared.config.model import EGRESS_SOURCE_FIELDS
from tests.config.docs import good

GUID = "9180BD12-96B0-594C-8DEC-B999543D666B"


def egress_doc(**egress: Any) -> dict[str, Any]:
    doc = good()
    doc["egress"] = {
        "enabled": True,
        "events": {"send": True, "click": True, "bounce": True},
        "activityTables": {"send": "new_campaignsends", "click": "new_campaignclicks", "bounce": "new_campaignbounces"},
        **egress,
    }
    return doc


def problems_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_sync_config(doc)
    return [(p.path, p.message) for p in caught.value.problems]


def test_defaults_are_the_documented_export_layout_and_the_application_user() -> None:
    egress = parse_sync_config(egress_doc()).egress
    assert egress.source_columns == {field: field for field in EGRESS_SOURCE_FIELDS}
    assert (egress.source_pattern, egress.source_separator) == ("campaign_events_*.csv", ";")
    assert egress.activity_columns == {} and egress.owner is None


def test_a_configured_layout_columns_and_owner() -> None:
    doc = egress_doc(source={"pattern": "events_*.txt", "separator": "|",
                             "columns": {"eventId": "logId", "mirrorPageUrl": None}},
                     activityColumns={"campaignName": "acme_campaign"}, owner=GUID)  # fmt: skip
    config = parse_sync_config(doc)
    egress = config.egress
    assert egress.source_columns["eventId"] == "logId" and egress.source_columns["mirrorPageUrl"] is None
    assert egress.source_columns["eventType"] == "eventType"
    assert (egress.source_pattern, egress.source_separator) == ("events_*.txt", "|")
    assert egress.activity_columns == {"campaignName": "acme_campaign"}
    assert egress.owner == GUID.lower()
    assert parse_sync_config(dump_sync_config(config)) == config


def test_layout_problems_are_reported_at_their_paths() -> None:
    doc = egress_doc(source={"columns": {"eventDate": None, "failureType": None, "campaignId": "deliveryId"}},
                     activityColumns={"campaignName": "new_x", "deliveryName": "new_x"})  # fmt: skip
    assert sorted(problems_of(doc)) == [
        ("$.egress.activityColumns.deliveryName", "activity column 'new_x' is already used by campaignName"),
        ("$.egress.source.columns.deliveryId", "column 'deliveryId' is already used by campaignId"),
        ("$.egress.source.columns.eventDate", "cannot be left out: every event needs it"),
        ("$.egress.source.columns.failureType",
         "cannot be left out while bounce events are on: only hard bounces land"),
    ]  # fmt: skip


def test_each_event_type_needs_its_own_table() -> None:
    doc = egress_doc()
    doc["egress"]["activityTables"]["click"] = "new_campaignsends"
    assert problems_of(doc) == [
        ("$.egress.activityTables.click",
         "already used by 'send' events: each event type needs its own activity table")
    ]  # fmt: skip


def test_the_owner_must_be_a_systemuserid_and_the_message_does_not_echo_it() -> None:
    assert problems_of(egress_doc(owner="dana@example.org")) == [
        ("$.egress.owner", "must be a systemuserid (GUID) owning the activities and tasks")
    ]

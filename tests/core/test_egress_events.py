"""Rows of Campaign's event export as events: the documented layout, a configured one, and what is not an event."""

from __future__ import annotations

import pytest

from shared.core.events import BadRow, ColumnLayout, EmailEvent

ROW = {
    "eventId": "1001",
    "eventType": "send",
    "eventDate": "2026/12/01 20:30:00",
    "externalId": "5F2C0A3E-1111-4222-8333-944455556666",
    "campaignId": "OP12",
    "campaignLabel": "2019LoyaltyCamp",
    "deliveryId": "DM190",
    "deliveryLabel": 'Spring; "sale"',
    "trackingUrl": "",
    "mirrorPageUrl": "https://acme.campaign.adobe.com/mirror/DM190/9c1e",
    "failureType": "",
    "failureReason": "",
}


def parse(values: dict[str, str], layout: ColumnLayout | None = None) -> EmailEvent | BadRow:
    return (layout or ColumnLayout()).parse(values, "campaign_events_20261201203000_deliverylogs.csv", 7)


def test_a_send_row_becomes_a_normalised_event() -> None:
    assert parse(ROW) == EmailEvent(
        event_type="send",
        event_id="1001",
        event_date="2026-12-01T20:30:00Z",
        external_id="5f2c0a3e-1111-4222-8333-944455556666",
        campaign_id="OP12",
        campaign_label="2019LoyaltyCamp",
        delivery_id="DM190",
        delivery_label='Spring; "sale"',
        mirror_page_url="https://acme.campaign.adobe.com/mirror/DM190/9c1e",
    )


def test_failure_fields_belong_to_bounces_and_the_url_to_clicks() -> None:
    bounce = parse({**ROW, "eventType": "Bounce", "failureType": "HARD", "failureReason": "User unknown",
                    "trackingUrl": "https://x.example/"})  # fmt: skip
    assert isinstance(bounce, EmailEvent)
    assert (bounce.event_type, bounce.failure_type, bounce.failure_reason, bounce.tracking_url) == (
        "bounce", "hard", "User unknown", "")  # fmt: skip
    click = parse({**ROW, "eventType": "click", "trackingUrl": "https://x.example/a?b=1", "failureType": "hard"})
    assert isinstance(click, EmailEvent)
    assert (click.tracking_url, click.failure_type) == ("https://x.example/a?b=1", "")
    assert parse({**ROW, "eventType": "send"}).key == "send:1001"  # type: ignore[union-attr]
    assert parse({**ROW, "eventType": "bounce", "failureType": "soft"}).key == "bounce:1001"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"eventType": "unsubscribe"}, "eventType is not one of send, open, click, bounce"),
        ({"eventId": "  "}, "eventId is empty"),
        ({"eventId": "x" * 101}, "eventId is not an id"),
        ({"eventDate": "2026-12-01 20:30:00"}, "eventDate is not a date-time YYYY/MM/DD HH:MM:SS"),
        ({"eventDate": "2026/13/01 20:30:00"}, "eventDate is not a date-time"),
        ({"eventType": "bounce", "failureType": ""}, "failureType of a bounce is not one of hard, soft, ignored"),
    ],
)
def test_a_row_that_is_not_an_event_names_file_line_and_field_never_the_value(
    change: dict[str, str], problem: str
) -> None:
    bad = parse({**ROW, **change})
    assert isinstance(bad, BadRow)
    assert bad.reason.startswith("campaign_events_20261201203000_deliverylogs.csv line 7: ")
    assert problem in bad.reason
    assert bad.key == "campaign_events_20261201203000_deliverylogs.csv:7"
    for value in change.values():
        if value.strip():
            assert value not in bad.reason.split(": ", 1)[1].replace(problem, "")


def test_a_configured_layout_renames_and_leaves_out_columns() -> None:
    layout = ColumnLayout({"eventId": "logId", "eventType": "kind", "eventDate": "when", "externalId": "crmId",
                           "campaignId": None, "campaignLabel": "campaign", "deliveryId": None,
                           "deliveryLabel": "delivery", "trackingUrl": "url", "mirrorPageUrl": None,
                           "failureType": "failure", "failureReason": None})  # fmt: skip
    assert layout.required_columns() == ["logId", "kind", "when", "crmId", "campaign", "delivery", "url", "failure"]
    event = parse({"logId": "9", "kind": "click", "when": "2026/01/02 03:04:05", "crmId": "", "campaign": "C",
                   "delivery": "D", "url": "https://u.example/", "failure": ""}, layout)  # fmt: skip
    assert event == EmailEvent("click", "9", "2026-01-02T03:04:05Z", campaign_label="C", delivery_label="D",
                               tracking_url="https://u.example/")  # fmt: skip


def test_a_layout_cannot_leave_out_what_every_event_needs() -> None:
    with pytest.raises(ValueError, match="eventDate"):
        ColumnLayout({"eventId": "a", "eventType": "b", "eventDate": None, "externalId": "c"})


def test_the_payload_kept_with_a_dead_letter_gives_the_event_back() -> None:
    event = parse({**ROW, "eventType": "bounce", "failureType": "hard", "failureReason": "Refused"})
    assert isinstance(event, EmailEvent)
    payload = event.to_payload()
    assert payload["eventType"] == "bounce" and payload["eventDate"] == "2026-12-01T20:30:00Z"
    assert EmailEvent.from_payload(payload) == event
    for broken in ({**payload, "eventType": "spam"}, {**payload, "eventId": ""}, {**payload, "eventDate": "x"}):
        with pytest.raises(ValueError):
            EmailEvent.from_payload(broken)

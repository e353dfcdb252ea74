"""What one event becomes in Dynamics: the activity (every field), the follow-up task, or a skip or a dead end."""

from __future__ import annotations

from shared.core.activities import (
    ActivityTable,
    EgressShape,
    NeverLands,
    Skip,
    Writes,
    activity_id,
    decide_event,
    default_activity_columns,
    task_id,
)
from shared.core.events import EmailEvent

CONTACT = "5f2c0a3e-1111-4222-8333-944455556666"
OWNER = "9180bd12-96b0-594c-8dec-b999543d666b"
COLUMNS = {
    "campaignName": "new_campaignname",
    "deliveryName": "new_deliveryname",
    "campaignId": "new_campaignid",
    "deliveryId": "new_deliveryid",
    "eventId": "new_eventid",
    "eventDate": "new_eventdate",
    "trackingUrl": "new_trackingurl",
    "mirrorPageUrl": "new_mirrorpageurl",
    "failureType": "new_failuretype",
    "failureReason": "new_failurereason",
}
TABLES = {
    t: ActivityTable(t, f"new_campaign{t}s", f"new_campaign{t}", f"regardingobjectid_contact_new_campaign{t}", COLUMNS)
    for t in ("send", "open", "click", "bounce")
}


def shape(**options: object) -> EgressShape:
    return EgressShape(TABLES, OWNER, **options)  # type: ignore[arg-type]


def event(event_type: str = "send", **values: str) -> EmailEvent:
    base = {"event_id": "1001", "event_date": "2026-12-01T20:30:00Z", "external_id": CONTACT, "campaign_id": "OP12",
            "campaign_label": "2019LoyaltyCamp", "delivery_id": "DM190", "delivery_label": "Spring sale",
            "mirror_page_url": "https://acme.campaign.adobe.com/mirror/DM190/9c1e"}  # fmt: skip
    return EmailEvent(event_type=event_type, **{**base, **values})


def test_ids_are_derived_from_type_and_event_id_in_a_fixed_namespace() -> None:
    # Literal values: a change of namespace or format would make reprocessed files land twice.
    assert activity_id("send", "1001") == "3da1faf6-c045-586a-9065-5b1d87782947"
    assert activity_id("bounce", "1001") == "e2d2adc0-3d00-5b6c-8ec7-6418f4789a13"  # the same log, later
    assert task_id("click", "17") == "d65c5552-bc6b-5fdf-b040-f87bd335f26f"
    assert task_id("bounce", "1001") == "dbd7cb18-dbe0-5513-9949-56d7a68486d2"


def test_a_send_becomes_an_activity_with_every_field() -> None:
    decision = decide_event(event(), shape())
    assert isinstance(decision, Writes) and len(decision.writes) == 1
    [write] = decision.writes
    assert (write.role, write.entity_set, write.id) == ("activity", "new_campaignsends",
                                                       "3da1faf6-c045-586a-9065-5b1d87782947")  # fmt: skip
    assert write.body == {
        "subject": "Campaign Name: 2019LoyaltyCamp; Delivery Name: Spring sale",
        "regardingobjectid_contact_new_campaignsend@odata.bind": f"/contacts({CONTACT})",
        "ownerid@odata.bind": f"/systemusers({OWNER})",
        "actualstart": "2026-12-01T20:30:00Z",
        "actualend": "2026-12-01T20:30:00Z",
        "new_campaignname": "2019LoyaltyCamp",
        "new_deliveryname": "Spring sale",
        "new_campaignid": "OP12",
        "new_deliveryid": "DM190",
        "new_eventid": "1001",
        "new_eventdate": "2026-12-01T20:30:00Z",
        "new_mirrorpageurl": "https://acme.campaign.adobe.com/mirror/DM190/9c1e",
    }


def test_a_click_carries_its_url_and_a_follow_up_task_due_in_n_days() -> None:
    click = event("click", event_id="17", tracking_url="https://www.example.com/offers?x=1")
    decision = decide_event(click, shape(task_on_click=True, task_due_days=3))
    assert isinstance(decision, Writes)
    activity, task = decision.writes
    assert activity.body["new_trackingurl"] == "https://www.example.com/offers?x=1"
    assert (task.role, task.entity_set, task.id) == ("task", "tasks", "d65c5552-bc6b-5fdf-b040-f87bd335f26f")
    assert task.body["scheduledend"] == "2026-12-04T20:30:00Z"
    assert task.body["regardingobjectid_contact_task@odata.bind"] == f"/contacts({CONTACT})"
    assert task.body["ownerid@odata.bind"] == f"/systemusers({OWNER})"
    assert task.body["subject"] == "Follow up on an email click: Spring sale"
    assert "https://www.example.com/offers?x=1" in str(task.body["description"])
    assert len(decide_event(click, shape(task_on_click=False)).writes) == 1  # type: ignore[union-attr]


def test_a_hard_bounce_carries_its_failure_and_a_task_to_fix_the_address() -> None:
    bounce = event("bounce", failure_type="hard", failure_reason="User unknown")
    decision = decide_event(bounce, shape(task_on_bounce=True, task_due_days=0))
    assert isinstance(decision, Writes)
    activity, task = decision.writes
    assert (activity.body["new_failuretype"], activity.body["new_failurereason"]) == ("hard", "User unknown")
    assert "new_trackingurl" not in activity.body
    assert task.body["subject"].startswith("Fix the email address")  # type: ignore[union-attr]
    assert task.body["scheduledend"] == "2026-12-01T20:30:00Z"


def test_skips_and_dead_ends() -> None:
    assert decide_event(event("bounce", failure_type="soft"), shape()) == Skip("bounces_soft")
    assert decide_event(event("bounce", failure_type="ignored"), shape()) == Skip("bounces_ignored")
    only_sends = EgressShape({"send": TABLES["send"]}, OWNER)
    assert decide_event(event("open"), only_sends) == Skip("event_type_off")
    assert decide_event(event("bounce", failure_type="soft"), only_sends) == Skip("event_type_off")
    no_id = decide_event(event(external_id=""), shape())
    assert isinstance(no_id, NeverLands) and "send:1001" in no_id.reason and "no externalId" in no_id.reason
    not_guid = decide_event(event(external_id="crm-42"), shape())
    assert isinstance(not_guid, NeverLands) and "crm-42" not in not_guid.reason
    long_url = decide_event(event("click", tracking_url="https://x.example/" + "a" * 4000), shape())
    assert isinstance(long_url, NeverLands) and "trackingUrl" in long_url.reason


def test_names_fall_back_to_ids_and_long_labels_are_clipped() -> None:
    decision = decide_event(event(campaign_label="", delivery_label="D" * 300), shape())
    assert isinstance(decision, Writes)
    body = decision.writes[0].body
    assert str(body["subject"]).startswith("Campaign Name: OP12; Delivery Name: DDD")
    assert len(str(body["subject"])) == 200 and len(str(body["new_deliveryname"])) == 200
    assert "new_mirrorpageurl" not in decide_event(event(mirror_page_url=""), shape()).writes[0].body  # type: ignore[union-attr]


def test_default_columns_take_the_tables_prefix() -> None:
    assert default_activity_columns("acme") == {k: v.replace("new_", "acme_") for k, v in COLUMNS.items()}

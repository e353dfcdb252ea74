"""What egress writes to Dynamics for one email event, decided without I/O.

An event becomes a custom activity on the contact's timeline (one activity table per event type) and, for a click
or a hard bounce when the mapping asks for it, a follow-up task. Ids are derived from the event (UUIDv5 in a
namespace fixed here), so writing the same event again addresses the same rows: the writer creates them when absent
and never touches them otherwise (a task a user has completed since stays completed).

Decisions: `Skip` (a soft or ignored bounce, a type turned off), `NeverLands` (no Dynamics contact can ever match:
dead-letter it with the reason), or `Writes` (the activity, and the task if any).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping

from shared.config.model import EGRESS_ACTIVITY_FIELDS
from shared.core.events import EmailEvent, iso_plus_days

# Fixed for ever: changing it would give every event new ids, and reprocessed files would land twice.
EVENT_NAMESPACE = uuid.UUID("6f1c3b1e-5d0a-4c8e-9a47-2b7d1e8c4f90")

# Count names (shared.flows.counts.Count holds the same strings; the core does not import flows).
BOUNCES_SOFT, BOUNCES_IGNORED, EVENT_TYPE_OFF = "bounces_soft", "bounces_ignored", "event_type_off"

SUBJECT_LENGTH = 200  # activitypointer.subject
NAME_LENGTH = 200  # campaign and delivery names, failure reason (provisioned lengths)
ID_LENGTH = 100  # campaign, delivery and event ids
URL_LENGTH = 4000  # tracking and mirror page URLs: the longest a String column holds
TASKS = "tasks"
TASK_REGARDING = "regardingobjectid_contact_task"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def activity_id(event_type: str, event_id: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{event_type}:{event_id}"))


def task_id(event_type: str, event_id: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"task:{event_type}:{event_id}"))


def default_activity_columns(prefix: str) -> dict[str, str]:
    """Column logical names of an activity table: `<prefix>_<field in lower case>` (new_campaignname, ...)."""
    return {field: f"{prefix}_{field.lower()}" for field in EGRESS_ACTIVITY_FIELDS}


def columns_for(event_type: str) -> tuple[str, ...]:
    """The fields an activity of this type carries."""
    extra = {"click": ("trackingUrl",), "bounce": ("failureType", "failureReason")}.get(event_type, ())
    common = tuple(f for f in EGRESS_ACTIVITY_FIELDS if f not in ("trackingUrl", "failureType", "failureReason"))
    return common + extra


@dataclasses.dataclass(frozen=True)
class ActivityTable:
    event_type: str
    entity_set: str
    logical_name: str
    regarding: str  # navigation property towards contact, e.g. regardingobjectid_contact_new_campaignsend
    columns: Mapping[str, str]  # field (EGRESS_ACTIVITY_FIELDS) -> column logical name


@dataclasses.dataclass(frozen=True)
class EgressShape:
    """What egress writes, resolved against the Dynamics instance once per run."""

    tables: Mapping[str, ActivityTable]  # the event types that are on
    owner_id: str  # systemuserid owning activities and tasks
    task_on_click: bool = False
    task_on_bounce: bool = False
    task_due_days: int = 2
    task_regarding: str = TASK_REGARDING


@dataclasses.dataclass(frozen=True)
class Write:
    """Create this row with this id if it does not exist yet; `role` is activity or task."""

    role: str
    entity_set: str
    id: str
    body: dict[str, object]


@dataclasses.dataclass(frozen=True)
class Writes:
    writes: tuple[Write, ...]


@dataclasses.dataclass(frozen=True)
class Skip:
    count: str


@dataclasses.dataclass(frozen=True)
class NeverLands:
    reason: str  # names the event and the problem, never a value


Decision = Writes | Skip | NeverLands


def decide_event(event: EmailEvent, shape: EgressShape) -> Decision:
    table = shape.tables.get(event.event_type)
    if table is None:
        return Skip(EVENT_TYPE_OFF)
    if event.event_type == "bounce" and event.failure_type != "hard":
        return Skip(BOUNCES_SOFT if event.failure_type == "soft" else BOUNCES_IGNORED)
    if not event.external_id:
        return NeverLands(f"event {event.key}: the profile has no externalId (it did not come from Dynamics)")
    if not _GUID.match(event.external_id):
        return NeverLands(f"event {event.key}: externalId is not a Dynamics contact id (a GUID)")
    for name, url in (("trackingUrl", event.tracking_url), ("mirrorPageUrl", event.mirror_page_url)):
        if len(url) > URL_LENGTH:
            return NeverLands(f"event {event.key}: {name} is longer than {URL_LENGTH} characters")
    writes = [activity_write(event, table, shape.owner_id)]
    if (event.event_type == "click" and shape.task_on_click) or (event.event_type == "bounce" and shape.task_on_bounce):
        writes.append(task_write(event, shape))
    return Writes(tuple(writes))


def campaign_name(event: EmailEvent) -> str:
    return event.campaign_label or event.campaign_id


def delivery_name(event: EmailEvent) -> str:
    return event.delivery_label or event.delivery_id


def subject(event: EmailEvent) -> str:
    return clip(f"Campaign Name: {campaign_name(event)}; Delivery Name: {delivery_name(event)}", SUBJECT_LENGTH)


def activity_write(event: EmailEvent, table: ActivityTable, owner_id: str) -> Write:
    values: dict[str, str] = {
        "campaignName": clip(campaign_name(event), NAME_LENGTH),
        "deliveryName": clip(delivery_name(event), NAME_LENGTH),
        "campaignId": clip(event.campaign_id, ID_LENGTH),
        "deliveryId": clip(event.delivery_id, ID_LENGTH),
        "eventId": event.event_id,
        "eventDate": event.event_date,
        "trackingUrl": event.tracking_url,
        "mirrorPageUrl": event.mirror_page_url,
        "failureType": event.failure_type,
        "failureReason": clip(event.failure_reason, NAME_LENGTH),
    }
    body: dict[str, object] = {
        "subject": subject(event),
        f"{table.regarding}@odata.bind": f"/contacts({event.external_id})",
        "ownerid@odata.bind": f"/systemusers({owner_id})",
        "actualstart": event.event_date,
        "actualend": event.event_date,
    }
    for field in columns_for(event.event_type):
        if values[field]:  # an empty value is left out: the column stays null
            body[table.columns[field]] = values[field]
    return Write("activity", table.entity_set, activity_id(event.event_type, event.event_id), body)


def task_write(event: EmailEvent, shape: EgressShape) -> Write:
    names = f"Campaign Name: {campaign_name(event)}; Delivery Name: {delivery_name(event)}"
    if event.event_type == "click":
        title = f"Follow up on an email click: {delivery_name(event)}"
        details = [
            names,
            f"Clicked on {event.event_date}",
            *([f"Link: {event.tracking_url}"] * bool(event.tracking_url)),
        ]
    else:
        title = "Fix the email address: the email bounced (hard bounce)"
        details = [
            names,
            f"Bounced on {event.event_date}",
            *([f"Reason: {event.failure_reason}"] * bool(event.failure_reason)),
        ]
    body: dict[str, object] = {
        "subject": clip(title, SUBJECT_LENGTH),
        "description": "\n".join(details),
        "scheduledend": iso_plus_days(event.event_date, shape.task_due_days),
        f"{shape.task_regarding}@odata.bind": f"/contacts({event.external_id})",
        "ownerid@odata.bind": f"/systemusers({shape.owner_id})",
    }
    return Write("task", TASKS, task_id(event.event_type, event.event_id), body)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

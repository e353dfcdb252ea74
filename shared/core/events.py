"""Campaign email events as egress reads them: one row of Campaign's event export becomes an `EmailEvent`.

The export's layout (docs/campaign-event-export.md) is configurable: `ColumnLayout` maps each logical field to the
header name the export uses, or to None when the export leaves the column out. A row that cannot be an event (an
unknown type, a date in another format, an empty id) becomes a `BadRow` whose reason names the source, the line and
the field, never a value. Pure: no I/O.

An event is identified by (type, id): Campaign's delivery-log id is the id of a send and, when an asynchronous bounce
comes later, of that bounce too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from shared.config.model import EGRESS_EVENTS, EGRESS_REQUIRED_SOURCE_FIELDS, EGRESS_SOURCE_FIELDS

FAILURE_TYPES = ("hard", "soft", "ignored")
FILE_DATETIME = "%Y/%m/%d %H:%M:%S"  # docs/file-format.md: date-times in UTC
MAX_EVENT_ID = 100
_ISO = "%Y-%m-%dT%H:%M:%SZ"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclasses.dataclass(frozen=True)
class EmailEvent:
    """One email event, normalised: ids, labels, an ISO 8601 UTC date, URLs. No e-mail address, no name."""

    event_type: str  # send | open | click | bounce
    event_id: str
    event_date: str  # YYYY-MM-DDTHH:MM:SSZ
    external_id: str = ""  # the profile's externalId (the Dynamics contactid), lower case; "" when it has none
    campaign_id: str = ""
    campaign_label: str = ""
    delivery_id: str = ""
    delivery_label: str = ""
    tracking_url: str = ""
    mirror_page_url: str = ""
    failure_type: str = ""  # hard | soft | ignored, bounces only
    failure_reason: str = ""  # Campaign's failure label (User unknown, Mailbox full...)

    @property
    def key(self) -> str:
        """The event's identity: what dead letters and derived ids are keyed on."""
        return event_key(self.event_type, self.event_id)

    def to_payload(self) -> dict[str, str]:
        """The event as stored beside a dead letter, to be retried without the (archived) file."""
        return {name: getattr(self, attribute) for name, attribute in _PAYLOAD.items()}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> EmailEvent:
        """The inverse of to_payload; raises ValueError for a payload that is not an event."""
        values = {attribute: str(payload.get(name) or "") for name, attribute in _PAYLOAD.items()}
        event = cls(**values)
        if event.event_type not in EGRESS_EVENTS or not event.event_id:
            raise ValueError("the stored payload is not an email event")
        dt.datetime.strptime(event.event_date, _ISO)  # ValueError when it is not one
        return event


_PAYLOAD = {
    "eventType": "event_type",
    "eventId": "event_id",
    "eventDate": "event_date",
    "externalId": "external_id",
    "campaignId": "campaign_id",
    "campaignLabel": "campaign_label",
    "deliveryId": "delivery_id",
    "deliveryLabel": "delivery_label",
    "trackingUrl": "tracking_url",
    "mirrorPageUrl": "mirror_page_url",
    "failureType": "failure_type",
    "failureReason": "failure_reason",
}
assert tuple(sorted(_PAYLOAD)) == tuple(sorted(EGRESS_SOURCE_FIELDS))


def event_key(event_type: str, event_id: str) -> str:
    return f"{event_type}:{event_id}"


@dataclasses.dataclass(frozen=True)
class BadRow:
    """A row that is not an event. `key` ("<source>:<line>") is what its dead letter is filed under."""

    source: str  # the file name (or another source's name for the batch)
    line: int
    reason: str  # names the source, line and field; never a value

    @property
    def key(self) -> str:
        return f"{self.source}:{self.line}"


@dataclasses.dataclass(frozen=True)
class ColumnLayout:
    """Logical field -> header name in the export (None: the export leaves it out)."""

    columns: Mapping[str, str | None] = dataclasses.field(default_factory=lambda: {f: f for f in EGRESS_SOURCE_FIELDS})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(EGRESS_SOURCE_FIELDS))
        missing = [f for f in EGRESS_REQUIRED_SOURCE_FIELDS if not self.columns.get(f)]
        if unknown or missing:
            raise ValueError(f"column layout: unknown fields {unknown}, required fields left out {missing}")

    def required_columns(self) -> list[str]:
        """The header names a file must have: every column the layout names."""
        return [name for field in EGRESS_SOURCE_FIELDS if (name := self.columns.get(field))]

    def parse(self, values: Mapping[str, str], source: str, line: int) -> EmailEvent | BadRow:
        """One data row (header name -> text) as an event, or a BadRow saying what is wrong with it."""

        def cell(field: str) -> str:
            name = self.columns.get(field)
            return values.get(name, "").strip() if name else ""

        def bad(problem: str) -> BadRow:
            return BadRow(source, line, f"{source} line {line}: {problem}")

        event_type = cell("eventType").lower()
        if event_type not in EGRESS_EVENTS:
            return bad(f"eventType is not one of {', '.join(EGRESS_EVENTS)}")
        event_id = cell("eventId")
        if not event_id:
            return bad("eventId is empty")
        if len(event_id) > MAX_EVENT_ID or _CONTROL.search(event_id):
            return bad(f"eventId is not an id (over {MAX_EVENT_ID} characters, or control characters)")
        when = file_datetime_to_iso(cell("eventDate"))
        if when is None:
            return bad("eventDate is not a date-time YYYY/MM/DD HH:MM:SS")
        failure_type = cell("failureType").lower()
        if event_type == "bounce" and failure_type not in FAILURE_TYPES:
            return bad(f"failureType of a bounce is not one of {', '.join(FAILURE_TYPES)}")
        return EmailEvent(
            event_type=event_type,
            event_id=event_id,
            event_date=when,
            external_id=cell("externalId").lower(),
            campaign_id=cell("campaignId"),
            campaign_label=cell("campaignLabel"),
            delivery_id=cell("deliveryId"),
            delivery_label=cell("deliveryLabel"),
            tracking_url=cell("trackingUrl") if event_type == "click" else "",
            mirror_page_url=cell("mirrorPageUrl"),
            failure_type=failure_type if event_type == "bounce" else "",
            failure_reason=cell("failureReason") if event_type == "bounce" else "",
        )


def file_datetime_to_iso(text: str) -> str | None:
    """`YYYY/MM/DD HH:MM:SS` (UTC) as `YYYY-MM-DDTHH:MM:SSZ`, or None."""
    try:
        return dt.datetime.strptime(text, FILE_DATETIME).strftime(_ISO)
    except ValueError:
        return None


def iso_plus_days(iso: str, days: int) -> str:
    return (dt.datetime.strptime(iso, _ISO) + dt.timedelta(days=days)).strftime(_ISO)

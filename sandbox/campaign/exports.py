"""Campaign's export workflows, run on demand: email events (delivery and tracking logs) and profiles' opt-outs.

Each is Scheduler -> Incremental query (on lastModified, with a stored watermark) -> Enrichment -> Extract file ->
Transfer file. Here a call runs one execution at the sandbox clock's `now`: it selects the rows whose lastModified
passed the watermark (and is not after now), writes the file into the export folder (temporary name, then renamed)
and only then moves the watermark. File layouts are those of docs/campaign-event-export.md and
docs/campaign-optout-export.md (delimited text of docs/file-format.md).

The watermark is the (lastModified, id) of the last row exported: Campaign keeps only a date [U]; the id breaks ties
between rows written in the same millisecond, so none is skipped or exported twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sandbox.campaign import delimited
from sandbox.campaign.events import DeliveryLog, TrackingLog
from sandbox.campaign.schema import OPTOUT_SUFFIXES
from sandbox.campaign.store import Row

EVENT_COLUMNS = (
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
)
SEPARATOR = ";"

Watermark = tuple[float, int]


def file_datetime(ts: float) -> str:
    """`YYYY/MM/DD HH:MM:SS`, UTC (docs/file-format.md)."""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y/%m/%d %H:%M:%S")


def name_stamp(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y%m%d%H%M%S")


def events_file_names(ts: float) -> dict[str, str]:
    stamp = name_stamp(ts)
    return {log: f"campaign_events_{stamp}_{log}.csv" for log in ("deliverylogs", "trackinglogs")}


def optouts_file_name(ts: float) -> str:
    return f"campaign_optouts_{name_stamp(ts)}.csv"


def optout_columns(spelling: str) -> tuple[str, ...]:
    return ("externalId", "lastModified", *(spelling + suffix for suffix in OPTOUT_SUFFIXES), "ccpaOptOut")


def passed(watermark: Watermark | None, last_modified: float, ident: int, now: float) -> bool:
    if last_modified > now:
        return False
    return watermark is None or (last_modified, ident) > watermark


@dataclasses.dataclass
class Selection:
    rows: list[list[str]]
    watermark: Watermark | None  # the new one (unchanged when nothing was selected)


def delivery_log_rows(
    logs: Iterable[DeliveryLog], watermark: Watermark | None, now: float, external_id: Callable[[str], str]
) -> Selection:
    chosen = []
    for log in logs:
        version = log.version(now)
        if passed(watermark, version["lastModified"], log.id, now):
            chosen.append((version["lastModified"], log.id, log, version))
    chosen.sort(key=lambda item: (item[0], item[1]))
    rows = []
    for _, _, log, version in chosen:
        delivery = log.delivery
        event_type = "bounce" if version["status"] == "failed" else "send"
        rows.append(
            [
                str(log.id),
                event_type,
                file_datetime(version["eventDate"]),
                external_id(log.profile_pkey),
                delivery.campaign_id,
                delivery.campaign_label,
                delivery.delivery_id,
                delivery.delivery_label,
                "",
                log.mirror_page_url,
                version["failureType"],
                version["failureReason"],
            ]
        )
    return Selection(rows, (chosen[-1][0], chosen[-1][1]) if chosen else watermark)


def tracking_log_rows(
    tracks: Iterable[TrackingLog], watermark: Watermark | None, now: float, external_id: Callable[[str], str]
) -> Selection:
    chosen = sorted(
        (t for t in tracks if passed(watermark, t.written_at, t.id, now)), key=lambda t: (t.written_at, t.id)
    )
    rows = []
    for track in chosen:
        delivery = track.delivery_log.delivery
        rows.append(
            [
                str(track.id),
                track.kind,
                file_datetime(track.date),
                external_id(track.delivery_log.profile_pkey),
                delivery.campaign_id,
                delivery.campaign_label,
                delivery.delivery_id,
                delivery.delivery_label,
                track.url,
                track.delivery_log.mirror_page_url,
                "",
                "",
            ]
        )
    return Selection(rows, (chosen[-1].written_at, chosen[-1].id) if chosen else watermark)


def optout_rows(profiles: Iterable[Row], watermark: Watermark | None, now: float, spelling: str) -> Selection:
    chosen = sorted(
        (row for row in profiles if passed(watermark, row.last_modified, row.seq, now)),
        key=lambda row: (row.last_modified, row.seq),
    )
    names = optout_columns(spelling)[2:]
    rows = [
        [
            str(row.values.get("externalId") or ""),
            file_datetime(row.last_modified),
            *("1" if row.values.get(name) else "0" for name in names),
        ]
        for row in chosen
    ]
    return Selection(rows, (chosen[-1].last_modified, chosen[-1].seq) if chosen else watermark)


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    return delimited.write_text(header, rows, SEPARATOR).encode("utf-8")


def describe(watermark: Watermark | None) -> dict[str, Any] | None:
    return None if watermark is None else {"lastModified": file_datetime(watermark[0]), "id": watermark[1]}

"""Strict parsing of the text forms Dataverse and the configuration use: ISO dates and datetimes, GUIDs."""

from __future__ import annotations

import datetime as dt
import re
import uuid

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?")
_GUID = re.compile(r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?")
_CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_date(text: str) -> dt.date | None:
    """YYYY-MM-DD, or the date part of an ISO datetime as written (a date-only column carries no time zone)."""
    if _DATE.fullmatch(text) or _DATETIME.fullmatch(text):
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 date or datetime as an aware UTC datetime; no offset means UTC, a bare date means midnight."""
    if _DATE.fullmatch(text):
        day = parse_date(text)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) if day else None
    if not _DATETIME.fullmatch(text):
        return None
    try:
        # fromisoformat takes at most 6 fraction digits; Dataverse and .NET write up to 7.
        value = dt.datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("z", "Z")))
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def is_temporal_text(text: str) -> bool:
    return bool(_DATE.fullmatch(text) or _DATETIME.fullmatch(text))


def parse_guid(text: str) -> str | None:
    """The canonical lower-case form of a GUID (braces allowed), or None."""
    if _CANONICAL_GUID.fullmatch(text):
        return str(text)  # already canonical, as Dataverse writes ids: skip the uuid round trip
    if not _GUID.fullmatch(text):
        return None
    return str(uuid.UUID(text.strip("{}")))


def format_datetime(value: dt.datetime) -> str:
    """UTC, whole seconds: YYYY-MM-DDTHH:MM:SSZ (fractions are dropped, as Dataverse stores whole seconds)."""
    v = value.astimezone(dt.UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"

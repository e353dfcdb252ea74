"""Table Storage key rules: PartitionKey/RowKey may not hold / \\ # ? or control characters."""

from __future__ import annotations

import re
import time

_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def safe_key(value: str) -> str:
    """Escape forbidden characters reversibly-enough for ids (GUIDs and names pass unchanged)."""
    if not value:
        raise ValueError("empty table key")
    return _FORBIDDEN.sub(lambda m: f"%{ord(m.group()):02X}", value)


def partition(*parts: str) -> str:
    return safe_key("~".join(parts))


def reverse_ticks(now: float | None = None) -> str:
    """A RowKey that sorts newest first (Table Storage returns rows in RowKey order)."""
    micros = int((time.time() if now is None else now) * 1_000_000)
    return f"{10**17 - micros:017d}"

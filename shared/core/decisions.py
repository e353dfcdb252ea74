"""What ingress does with one Dynamics change, decided without I/O; the flow's writer carries it out.

Inputs: the row (or a delete), what the record index knows of the record, the table's shape, the
checkpoint generation and whether the read is a full one. A full read, a replay and a record Campaign
never had carry every mapped field; an increment carries only the apply-updates fields. A payload
identical to the last one written costs nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from shared.core.projection import payload_hash
from shared.core.shape import TableShape

# Count names (shared.flows.counts.Count holds the same strings; the core does not import flows).
UNCHANGED, FILTERED_OUT, DELETES_IGNORED = "unchanged", "filtered_out", "deletes_ignored"
DELETED, DELETED_FILTERED_OUT = "deleted", "deleted_filtered_out"


class Known(Protocol):
    """What the record index remembers of a synced record."""

    href: str
    hash_full: str
    hash_updates: str
    generation: int


@dataclasses.dataclass(frozen=True)
class Write:
    """Create or update the record with this payload (at `href` when known, else found by its key)."""

    payload: dict[str, Any]
    hash_full: str
    hash_updates: str
    href: str | None


@dataclasses.dataclass(frozen=True)
class Remove:
    """Delete the record (at `href` when known, else found by its key); `count` says why."""

    href: str | None
    count: str


@dataclasses.dataclass(frozen=True)
class Skip:
    count: str


Decision = Write | Remove | Skip


def decide_change(
    row: Mapping[str, Any], known: Known | None, *, shape: TableShape, generation: int, full_read: bool
) -> Decision:
    if not shape.passes(row):
        if known is not None and shape.table.filters.delete_filtered_out:
            return Remove(known.href, DELETED_FILTERED_OUT)
        return Skip(FILTERED_OUT)
    current = known if known is not None and known.generation == generation else None  # a replay voids old hashes
    full = full_read or current is None
    payload = shape.payload(row, full=full)
    updates = shape.updates_of(payload) if full else payload
    updates_hash = payload_hash(shape.hashed(updates))
    full_hash = payload_hash(shape.hashed(payload)) if full else (current.hash_full if current is not None else "")
    if current is not None:
        stored, now = (current.hash_full, full_hash) if full else (current.hash_updates, updates_hash)
        if stored == now:
            return Skip(UNCHANGED)
    return Write(payload, full_hash, updates_hash, known.href if known is not None else None)


def decide_delete(known: Known | None, *, apply_deletes: bool) -> Decision:
    """A Dynamics delete: removed in Campaign when the mapping applies deletes."""
    if not apply_deletes:
        return Skip(DELETES_IGNORED)
    return Remove(known.href if known is not None else None, DELETED)

"""Per flow and table progress, written with ETag optimistic concurrency.

A checkpoint is written only after the work it describes is durable in the target system, so a
crash between the two repeats work (idempotently) and never skips it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.keys import safe_key

INITIAL = "initial"  # reading every row (first run or replay)
INCREMENTAL = "incremental"  # reading changes since delta_link


class CheckpointConflict(Exception):
    """Someone else wrote this checkpoint since we read it: our view is stale, stop."""


@dataclasses.dataclass
class Checkpoint:
    flow: str
    table: str
    phase: str = INITIAL
    next_link: str | None = None  # resume point inside the current read
    delta_link: str | None = None  # where the next incremental read starts
    pages: int = 0  # pages done in the current read
    counters: dict[str, int] = dataclasses.field(default_factory=dict)  # totals of the current read
    reset_requested: bool = False  # replay: the next run starts a full read
    generation: int = 0  # bumped on every reset, so old runs can tell they are stale
    sweep_epoch: int = 0  # set by a resync read: records it did not see are swept once it ends
    last_outcome: str = ""  # completed | partial, as of the last save of a run (failures: see the run log)
    last_run_at: str = ""
    etag: str | None = dataclasses.field(default=None, compare=False)

    def start_full_read(self, *, replay: bool, sweep_epoch: int) -> None:
        """Read everything again. A replay also rewrites unchanged records (a new generation voids the
        stored payload hashes); a resync after an expired delta token only writes what differs.
        A full read reports no deletes, so records it does not meet are swept when it ends."""
        self.sweep_epoch = sweep_epoch
        self.phase = INITIAL
        self.next_link = None
        self.delta_link = None
        self.pages = 0
        self.counters = {}
        self.reset_requested = False
        if replay:
            self.generation += 1

    def add_counts(self, counts: dict[str, int]) -> None:
        for name, value in counts.items():
            self.counters[name] = self.counters.get(name, 0) + value


_FIELDS = ("phase", "next_link", "delta_link", "pages", "reset_requested", "generation", "sweep_epoch",
           "last_outcome", "last_run_at")  # fmt: skip


class CheckpointStore:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def load(self, flow: str, table: str) -> Checkpoint:
        try:
            entity = self._table.get_entity(safe_key(flow), safe_key(table))
        except ResourceNotFoundError:
            return Checkpoint(flow=flow, table=table)
        values: dict[str, Any] = {name: entity[name] for name in _FIELDS if name in entity}
        for name in ("next_link", "delta_link"):
            values[name] = values.get(name) or None
        return Checkpoint(
            flow=flow,
            table=table,
            counters=json.loads(entity.get("counters") or "{}"),
            etag=entity.metadata["etag"],
            **values,
        )

    def save(self, checkpoint: Checkpoint) -> Checkpoint:
        """Write if nobody else did since `load`; the new ETag is kept on the object."""
        entity: dict[str, Any] = {
            "PartitionKey": safe_key(checkpoint.flow),
            "RowKey": safe_key(checkpoint.table),
            "counters": json.dumps(checkpoint.counters, sort_keys=True),
        }
        for name in _FIELDS:
            value = getattr(checkpoint, name)
            entity[name] = "" if value is None else value
        try:
            if checkpoint.etag is None:
                metadata = self._table.create_entity(entity)
            else:
                metadata = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=checkpoint.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise CheckpointConflict(f"checkpoint {checkpoint.flow}/{checkpoint.table} changed under us") from exc
        checkpoint.etag = metadata["etag"]
        return checkpoint

    def entries(self, flow: str | None = None) -> list[Checkpoint]:
        query = f"PartitionKey eq '{safe_key(flow)}'" if flow else None
        entities = self._table.query_entities(query) if query else self._table.list_entities()
        return [self.load(e["PartitionKey"], e["RowKey"]) for e in entities]

    def request_reset(self, flow: str, table: str) -> Checkpoint:
        """Replay: mark the checkpoint so the next run reloads everything."""
        while True:
            checkpoint = self.load(flow, table)
            checkpoint.reset_requested = True
            try:
                return self.save(checkpoint)
            except CheckpointConflict:
                continue

"""Per flow and scope progress: an envelope the runner understands, holding a cursor each flow defines.

The envelope (flow, scope, generation, replay request, last outcome and run time, counters, when it was
saved, ETag) is the same for every flow; the cursor is the flow's own typed position (a change-tracking
read, a file transfer's state machine, a file and row...), serialised by itself. Flows move their
cursor through its methods and save the envelope; nobody pokes another flow's fields.

A checkpoint is written only after the work it describes is durable in the target system, so a crash
between the two repeats work (idempotently) and never skips it. Writes use ETags: two writers of one
checkpoint cannot both win.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.keys import safe_key


class Cursor(Protocol):
    """A flow's position. `from_state({})` is where a scope that never ran starts."""

    KIND: ClassVar[str]  # stored beside the state, so a row read with the wrong cursor type fails loudly

    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Any: ...

    def describe(self) -> str:
        """Where it stands, short and without opaque links (run summaries, status)."""
        ...


C = TypeVar("C", bound=Cursor)


class CheckpointConflict(Exception):
    """Someone else wrote this checkpoint since we read it: our view is stale, stop."""


class CursorKindMismatch(Exception):
    """The stored cursor belongs to another kind of flow state than the one asked for."""


@dataclasses.dataclass
class Checkpoint(Generic[C]):
    flow: str
    scope: str
    cursor: C
    generation: int = 0  # bumped by every replay: state written under an older generation stops counting
    reset_requested: bool = False  # replay asked for: the flow starts over on its next run
    last_outcome: str = ""  # completed | partial | failed, as of the last save of a run
    last_run_at: str = ""  # start of the run that saved last (UTC, ISO 8601)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)  # totals since the cursor's phase began
    saved_at: float = 0.0  # epoch seconds of the last save: the cursor's age
    stuck_at: str = ""  # the position the last runs failed at, when they did (see note_failure)
    stuck_runs: int = 0  # how many runs in a row failed there
    etag: str | None = dataclasses.field(default=None, compare=False)

    def begin_replay(self) -> None:
        """Start a new generation; the flow then moves its cursor back to the beginning."""
        self.generation += 1
        self.reset_requested = False
        self.counters = {}

    def note_failure(self, position: str) -> int:
        """A run failed at `position` (an error that was not a record's): how many in a row now."""
        self.stuck_runs = self.stuck_runs + 1 if self.stuck_at == position else 1
        self.stuck_at = position
        return self.stuck_runs

    def runs_stuck_at(self, position: str) -> int:
        return self.stuck_runs if self.stuck_at == position else 0

    def moved_on(self) -> None:
        self.stuck_at, self.stuck_runs = "", 0

    def add_counts(self, counts: Mapping[str, int]) -> None:
        for name, value in counts.items():
            self.counters[str(name)] = self.counters.get(str(name), 0) + int(value)


@dataclasses.dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as stored, cursor undecoded: what `status` shows for any flow."""

    flow: str
    scope: str
    cursor_kind: str
    cursor: dict[str, Any]
    generation: int
    reset_requested: bool
    last_outcome: str
    last_run_at: str
    counters: dict[str, int]
    saved_at: float
    stuck_at: str = ""
    stuck_runs: int = 0


_ENVELOPE = ("generation", "reset_requested", "last_outcome", "last_run_at", "saved_at", "stuck_at", "stuck_runs")


class CheckpointStore:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def load(self, flow: str, scope: str, cursor_type: type[C]) -> Checkpoint[C]:
        entity = self._entity(flow, scope)
        if entity is None:
            return Checkpoint(flow=flow, scope=scope, cursor=cursor_type.from_state({}))
        stored = _stored(entity)
        if stored.cursor_kind and stored.cursor_kind != cursor_type.KIND:
            raise CursorKindMismatch(
                f"checkpoint {flow}/{scope} holds a '{stored.cursor_kind}' cursor, not '{cursor_type.KIND}'"
            )
        return Checkpoint(
            flow=flow,
            scope=scope,
            cursor=cursor_type.from_state(stored.cursor),
            generation=stored.generation,
            reset_requested=stored.reset_requested,
            last_outcome=stored.last_outcome,
            last_run_at=stored.last_run_at,
            counters=stored.counters,
            saved_at=stored.saved_at,
            stuck_at=stored.stuck_at,
            stuck_runs=stored.stuck_runs,
            etag=entity.metadata["etag"],
        )

    def save(self, checkpoint: Checkpoint[Any]) -> Checkpoint[Any]:
        """Write if nobody else did since `load`; the new ETag is kept on the object."""
        checkpoint.saved_at = self._clock()
        entity: dict[str, Any] = {
            "PartitionKey": safe_key(checkpoint.flow),
            "RowKey": safe_key(checkpoint.scope),
            "flow": checkpoint.flow,
            "scope": checkpoint.scope,
            "cursor_kind": type(checkpoint.cursor).KIND,
            "cursor": json.dumps(checkpoint.cursor.to_state(), sort_keys=True),
            "counters": json.dumps(checkpoint.counters, sort_keys=True),
            **{name: getattr(checkpoint, name) for name in _ENVELOPE},
        }
        try:
            if checkpoint.etag is None:
                metadata = self._table.create_entity(entity)
            else:
                metadata = self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=checkpoint.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise CheckpointConflict(f"checkpoint {checkpoint.flow}/{checkpoint.scope} changed under us") from exc
        checkpoint.etag = metadata["etag"]
        return checkpoint

    def update(
        self, flow: str, scope: str, cursor_type: type[C], change: Callable[[Checkpoint[C]], None]
    ) -> Checkpoint[C]:
        """Load, change and save, again on a conflict: for writers outside the flow's own run (replay,
        a hand-over from another flow). `change` must be safe to apply to a fresh copy each time."""
        while True:
            checkpoint = self.load(flow, scope, cursor_type)
            change(checkpoint)
            try:
                return self.save(checkpoint)
            except CheckpointConflict:
                continue

    def request_reset(self, flow: str, scope: str) -> None:
        """Replay: mark the checkpoint, whatever its cursor, so the flow's next run starts over."""
        while True:
            entity = self._entity(flow, scope)
            try:
                if entity is None:
                    self._table.create_entity({"PartitionKey": safe_key(flow), "RowKey": safe_key(scope),
                                               "flow": flow, "scope": scope, "cursor_kind": "", "cursor": "{}",
                                               "counters": "{}", "reset_requested": True})  # fmt: skip
                else:
                    entity["reset_requested"] = True
                    self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                                              match_condition=MatchConditions.IfNotModified)  # fmt: skip
                return
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue

    def stored(self, flow: str, scope: str) -> StoredCheckpoint | None:
        entity = self._entity(flow, scope)
        return _stored(entity) if entity is not None else None

    def entries(self, flow: str | None = None) -> list[StoredCheckpoint]:
        entities = (
            self._table.query_entities("PartitionKey eq @pk", parameters={"pk": safe_key(flow)})
            if flow
            else self._table.list_entities()
        )
        return [_stored(e) for e in entities]

    def _entity(self, flow: str, scope: str) -> Any:
        try:
            return self._table.get_entity(safe_key(flow), safe_key(scope))
        except ResourceNotFoundError:
            return None


def _stored(entity: Mapping[str, Any]) -> StoredCheckpoint:
    return StoredCheckpoint(
        flow=str(entity.get("flow") or entity["PartitionKey"]),
        scope=str(entity.get("scope") or entity["RowKey"]),
        cursor_kind=str(entity.get("cursor_kind") or ""),
        cursor=dict(json.loads(entity.get("cursor") or "{}")),
        generation=int(entity.get("generation") or 0),
        reset_requested=bool(entity.get("reset_requested")),
        last_outcome=str(entity.get("last_outcome") or ""),
        last_run_at=str(entity.get("last_run_at") or ""),
        counters=dict(json.loads(entity.get("counters") or "{}")),
        saved_at=float(entity.get("saved_at") or 0.0),
        stuck_at=str(entity.get("stuck_at") or ""),
        stuck_runs=int(entity.get("stuck_runs") or 0),
    )

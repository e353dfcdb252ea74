"""What `status` shows, per flow and scope: where the cursor stands and how old it is, the last run,
what waits, open dead letters, and a lease held by a run (live, or dead and still blocking)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.flows.definition import FlowDefinition
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.lease import HeldLease, held_leases
from shared.state.runs import RunLog
from shared.wiring import Services


@dataclasses.dataclass(frozen=True)
class ScopeStatus:
    flow: str
    scope: str
    cursor: str
    generation: int
    replay_requested: bool
    last_outcome: str  # of the last run (from the run log), else of the last checkpoint save
    last_run_at: str
    last_reason: str
    cursor_saved_at: float | None
    cursor_age_seconds: float | None
    backlog: str
    dead_letters: int
    lease: HeldLease | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def collect_status(
    svc: Services,
    definitions: Sequence[FlowDefinition],
    *,
    with_backlog: bool = True,
    clock: Callable[[], float] = time.time,
) -> list[ScopeStatus]:
    checkpoints = CheckpointStore(svc.state.table("checkpoints"))
    runs = RunLog(svc.state.table("runs"))
    letters = DeadLetterStore(svc.state.table("deadletters"))
    leases = {(lease.flow, lease.scope): lease for lease in held_leases(svc.state.table("leases"), clock)}
    now = clock()
    out = []
    for definition in definitions:
        for scope in definition.scopes(svc.config):
            stored = checkpoints.stored(definition.name, scope)
            cursor = definition.cursor_type.from_state(stored.cursor if stored else {})
            recent = runs.latest(definition.name, scope, limit=1)
            last: dict[str, Any] = recent[0] if recent else {}
            saved_at = stored.saved_at if stored and stored.saved_at else None
            out.append(
                ScopeStatus(
                    flow=definition.name,
                    scope=scope,
                    cursor=cursor.describe(),
                    generation=stored.generation if stored else 0,
                    replay_requested=stored.reset_requested if stored else False,
                    last_outcome=last.get("outcome") or (stored.last_outcome if stored else ""),
                    last_run_at=last.get("started_at") or (stored.last_run_at if stored else ""),
                    last_reason=str(last.get("reason") or ""),
                    cursor_saved_at=saved_at,
                    cursor_age_seconds=round(now - saved_at, 1) if saved_at else None,
                    backlog=_backlog(definition, svc, scope) if with_backlog else "",
                    dead_letters=len(letters.entries(definition.name, scope)),
                    lease=leases.get((definition.name, scope)),
                )
            )
    return out


def _backlog(definition: FlowDefinition, svc: Services, scope: str) -> str:
    if definition.backlog is None:
        return ""
    try:
        return definition.backlog(svc, scope)
    except Exception as exc:  # status must show the rest even when one system does not answer
        return f"unknown ({type(exc).__name__})"

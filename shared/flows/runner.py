"""Runs one flow over one table: the run lease, the time budget and the run summary, for every flow.

A flow body gets a `RunContext`, counts what it does into `ctx.counts`, checks `ctx.out_of_time()`
between units of work, and calls `ctx.heartbeat()` after each checkpoint.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable

from shared.http import ApiError
from shared.state.lease import LeaseHeld, LeaseLost, RunLease
from shared.state.runs import RunLog
from shared.state.store import StateStore

log = logging.getLogger("sync.run")

LEASE_MARGIN_SECONDS = 300.0  # covers one last slow request after the budget ran out


class OutOfTime(Exception):
    """The budget ran out mid-unit: the unit is not checkpointed and the next run redoes it."""


@dataclasses.dataclass
class RunContext:
    flow: str
    table: str
    run_id: str
    deadline: float  # on the monotonic clock
    lease: RunLease
    monotonic: Callable[[], float] = time.monotonic
    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    cursor_from: str = ""
    cursor_to: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    started_at: str = ""  # UTC, ISO 8601

    def out_of_time(self) -> bool:
        return self.monotonic() >= self.deadline

    def heartbeat(self) -> None:
        """Extend the lease after durable progress; raises LeaseLost if another run took over."""
        self.lease.renew()


@dataclasses.dataclass
class RunSummary:
    flow: str
    table: str
    run_id: str
    outcome: str  # completed | partial (budget ran out, resumes next tick) | skipped | failed
    counts: dict[str, int]
    duration_seconds: float
    cursor_from: str = ""
    cursor_to: str = ""
    started_at: str = ""
    invocation_id: str = ""
    reason: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


FlowBody = Callable[[RunContext], bool]  # returns True when it finished, False when it stopped for time


def run_flow(
    flow: str,
    table: str,
    body: FlowBody,
    *,
    state: StateStore,
    budget_seconds: float,
    invocation_id: str = "",
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> RunSummary:
    run_id = uuid.uuid4().hex
    started = monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock()))
    lease = RunLease(state.table("leases"), f"{flow}~{table}", run_id, duration=budget_seconds + LEASE_MARGIN_SECONDS,
                     clock=clock)  # fmt: skip
    ctx = RunContext(flow, table, run_id, started + budget_seconds, lease, monotonic, started_at=started_at)
    outcome, reason = "completed", ""
    try:
        lease.acquire()
    except LeaseHeld as exc:
        outcome, reason = "skipped", f"another run holds the lease until {exc.expires_at:.0f}"
    else:
        try:
            finished = body(ctx)
            outcome = "completed" if finished else "partial"
        except OutOfTime:
            outcome = "partial"
        except LeaseLost as exc:
            outcome, reason = "failed", str(exc)
        except ApiError as exc:
            outcome, reason = "failed", exc.describe()
        except Exception as exc:  # the summary must be written whatever broke; the traceback goes to the log
            outcome, reason = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("run.error flow=%s table=%s run=%s", flow, table, run_id)
        finally:
            lease.release()
    summary = RunSummary(
        flow=flow,
        table=table,
        run_id=run_id,
        outcome=outcome,
        counts=dict(ctx.counts),
        duration_seconds=round(monotonic() - started, 3),
        cursor_from=ctx.cursor_from,
        cursor_to=ctx.cursor_to,
        started_at=started_at,
        invocation_id=invocation_id,
        reason=reason[:2000],
        notes=ctx.notes,
    )
    try:
        RunLog(state.table("runs")).append(dataclasses.asdict(summary), now=clock())
    except Exception:  # a lost summary row must not turn a good run into a failed one
        log.warning("run.summary_not_stored flow=%s table=%s run=%s", flow, table, run_id)
    level = logging.ERROR if outcome == "failed" else logging.INFO
    log.log(level, "run.summary %s", summary.to_json())
    return summary

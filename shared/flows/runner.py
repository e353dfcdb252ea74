"""Runs a flow over its scopes: the run lease, the time budget and the run summary, for every flow.

A scope is what one run of a flow works through under its own lease and checkpoint: a table for
ingress and initial transfer, a file source for egress, a queue for opt-out. A flow body gets a
`RunContext`, counts what it does into `ctx.counts`, lets `ctx.out_of_time()` (or `OutOfTime`) stop it
between units of work, and calls `ctx.heartbeat()` after each checkpoint. A long flow may tell a watcher
(the operator CLI's progress bar) how far it is with `ctx.report(...)`; nothing else depends on it.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from shared.http import ApiError
from shared.state.checkpoints import CheckpointStore
from shared.state.lease import LeaseHeld, LeaseLost, RunLease
from shared.state.runs import RunLog
from shared.state.store import StateStore
from shared.telemetry import log_run_summary

log = logging.getLogger("sync.run")

LEASE_MARGIN_SECONDS = 300.0  # covers one last slow request after the budget ran out


class OutOfTime(Exception):
    """The budget ran out mid-unit: the unit is not checkpointed and the next run redoes it."""


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far a run of one scope is, for a watcher: `done` of `total` units in the current stage."""

    flow: str
    scope: str
    stage: str  # e.g. "export", "upload"
    done: int
    total: int | None = None  # None: not known
    unit: str = "rows"
    detail: tuple[tuple[str, int], ...] = ()  # e.g. (("parts", 3), ("parts_uploaded", 1))


ProgressSink = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    pass


class NoLease:
    """A dry run writes no state, the lease row included; it may overlap a real run since it changes nothing."""

    def acquire(self) -> None:
        pass

    def keep(self) -> None:
        pass

    def release(self) -> None:
        pass


@dataclasses.dataclass
class RunContext:
    flow: str
    scope: str
    run_id: str
    deadline: float  # on the monotonic clock
    lease: RunLease | NoLease
    monotonic: Callable[[], float] = time.monotonic
    counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    cursor_from: str = ""
    cursor_to: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    started_at: str = ""  # UTC, ISO 8601
    dry_run: bool = False  # decide and report, write nothing (targets and state)
    progress: ProgressSink = ignore_progress

    def out_of_time(self) -> bool:
        return self.monotonic() >= self.deadline

    def check_time(self) -> None:
        """Raise OutOfTime when the budget is spent (between units of work)."""
        if self.out_of_time():
            raise OutOfTime()

    def heartbeat(self) -> None:
        """After durable progress: extend the lease when due (RunLease.keep); raises LeaseLost if another run
        took over."""
        self.lease.keep()

    def note(self, text: str) -> None:
        self.notes.append(text)

    def report(self, stage: str, done: int, total: int | None = None, *, unit: str = "rows", **detail: int) -> None:
        """Tell the watcher, if any, how far the run is (a failing watcher never stops the run)."""
        try:
            self.progress(Progress(self.flow, self.scope, stage, done, total, unit, tuple(detail.items())))
        except Exception:
            log.warning("run.progress_failed flow=%s scope=%s", self.flow, self.scope)


@dataclasses.dataclass
class RunSummary:
    flow: str
    scope: str
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
    dry_run: bool = False
    cursor_age_seconds: float | None = None  # since the scope's checkpoint was last saved (lag alerts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


FlowBody = Callable[[RunContext], bool]  # returns True when it finished, False when it stopped for time


def run_flow(
    flow: str,
    scope: str,
    body: FlowBody,
    *,
    state: StateStore,
    budget_seconds: float,
    invocation_id: str = "",
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    progress: ProgressSink = ignore_progress,
) -> RunSummary:
    run_id = uuid.uuid4().hex
    started = monotonic()
    started_at = _utc(clock())
    lease: RunLease | NoLease = (
        NoLease()
        if dry_run
        else RunLease(state.table("leases"), f"{flow}~{scope}", run_id, duration=budget_seconds + LEASE_MARGIN_SECONDS,
                      clock=clock)
    )  # fmt: skip
    ctx = RunContext(flow, scope, run_id, started + budget_seconds, lease, monotonic, started_at=started_at,
                     dry_run=dry_run, progress=progress)  # fmt: skip
    outcome, reason = "completed", ""
    try:
        lease.acquire()
    except LeaseHeld as exc:
        outcome, reason = "skipped", f"run {exc.owner[:8]} holds the lease until {_utc(exc.expires_at)}"
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
            log.exception("run.error flow=%s scope=%s run=%s", flow, scope, run_id)
        finally:
            lease.release()
    summary = RunSummary(
        flow=flow,
        scope=scope,
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
        dry_run=dry_run,
    )
    if not dry_run:
        summary.cursor_age_seconds = _cursor_age(state, flow, scope, clock())
        try:
            RunLog(state.table("runs")).append(dataclasses.asdict(summary), now=clock())
        except Exception:  # a lost summary row must not turn a good run into a failed one
            log.warning("run.summary_not_stored flow=%s scope=%s run=%s", flow, scope, run_id)
    log_run_summary(log, dataclasses.asdict(summary))
    return summary


def _cursor_age(state: StateStore, flow: str, scope: str, now: float) -> float | None:
    try:
        stored = CheckpointStore(state.table("checkpoints")).stored(flow, scope)
    except Exception:  # storage trouble is reported by the run itself; the age is only a hint
        return None
    return round(now - stored.saved_at, 1) if stored and stored.saved_at else None


def run_scopes(
    flow: str,
    bodies: Sequence[tuple[str, FlowBody]],
    *,
    state: StateStore,
    budget_seconds: float,
    invocation_id: str = "",
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    progress: ProgressSink = ignore_progress,
) -> list[RunSummary]:
    """Each scope in turn, under its own lease, with an equal share of what is left of the budget, so
    one big scope cannot starve the others (a scope that finishes early leaves its rest to the next)."""
    summaries = []
    deadline = monotonic() + budget_seconds
    for position, (scope, body) in enumerate(bodies):
        share = max(0.0, deadline - monotonic()) / (len(bodies) - position)
        summaries.append(
            run_flow(flow, scope, body, state=state, budget_seconds=share, invocation_id=invocation_id,
                     dry_run=dry_run, clock=clock, monotonic=monotonic, progress=progress)
        )  # fmt: skip
    return summaries


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

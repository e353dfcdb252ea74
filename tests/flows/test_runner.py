"""The runner on in-memory state: lease, budget, outcome and summary, whatever the flow body does."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import pytest

from shared.flows.runner import OutOfTime, RunContext, run_flow, run_scopes
from shared.http import ApiError, Outcome
from shared.state.lease import RENEW_EVERY_SECONDS, RunLease
from shared.state.store import StateStore
from tests.flows.fakes import FakeState, TickingClock

EPOCH = 1_764_600_000.0  # 2025-12-01T14:40:00Z


def run(state: FakeState, body: Any, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"budget_seconds": 60.0, "clock": lambda: EPOCH, **kwargs}
    return run_flow("egress", "events", body, state=cast(StateStore, state), **options)


def test_completed_run_stores_one_summary_and_releases_the_lease() -> None:
    state = FakeState()

    def body(ctx: RunContext) -> bool:
        ctx.counts["created"] += 3
        ctx.cursor_to = "file-2:row-0"
        return True

    summary = run(state, body, invocation_id="inv-1")
    assert (summary.outcome, summary.counts, summary.cursor_to) == ("completed", {"created": 3}, "file-2:row-0")
    assert state.tables["leases"].rows == {}  # released
    [(stored, _)] = state.tables["runs"].rows.values()
    saved = json.loads(stored["summary"])
    assert (saved["flow"], saved["scope"], saved["invocation_id"], saved["started_at"]) == (
        "egress", "events", "inv-1", "2025-12-01T14:40:00Z")  # fmt: skip


def test_a_body_that_stops_for_time_is_partial() -> None:
    assert run(FakeState(), lambda ctx: False).outcome == "partial"

    def out_of_time(ctx: RunContext) -> bool:
        raise OutOfTime()

    assert run(FakeState(), out_of_time).outcome == "partial"


def test_lease_held_by_a_live_run_skips_and_says_until_when() -> None:
    state = FakeState()
    other = RunLease(state.table("leases"), "egress~events", "a1b2c3d4e5", duration=600, clock=lambda: EPOCH)  # type: ignore[arg-type]
    other.acquire()
    calls: list[int] = []
    summary = run(state, lambda ctx: calls.append(1) or True)
    assert summary.outcome == "skipped" and calls == []
    assert summary.reason == "run a1b2c3d4 holds the lease until 2025-12-01T14:50:00Z"


def test_lease_lost_mid_run_fails_the_run() -> None:
    state = FakeState()
    now = [EPOCH]

    def body(ctx: RunContext) -> bool:
        ctx.counts["created"] += 1
        leases = state.table("leases")
        [key] = leases.rows
        values, _ = leases.rows[key]
        leases.rows[key] = ({**values, "owner": "usurper"}, "W/other")  # another run took it over
        ctx.heartbeat()  # the lease was written just now: not checked yet
        now[0] += RENEW_EVERY_SECONDS
        ctx.heartbeat()
        raise AssertionError("heartbeat must raise")

    summary = run(state, body, clock=lambda: now[0])
    assert summary.outcome == "failed" and "taken over" in summary.reason
    assert summary.counts == {"created": 1}  # what happened before stays counted
    assert state.table("leases").rows  # not ours any more: left alone


def test_errors_fail_the_run_with_a_reason_and_the_summary_is_still_stored(caplog: pytest.LogCaptureFixture) -> None:
    state = FakeState()

    def api_down(ctx: RunContext) -> bool:
        raise ApiError(Outcome.FATAL, 403, "forbidden", code="403003", method="POST", url="https://x/y?email=a@b")

    summary = run(state, api_down)
    assert summary.outcome == "failed" and summary.reason == "POST https://x/y -> 403 [403003] (fatal): forbidden"

    def broken(ctx: RunContext) -> bool:
        raise KeyError("contactid")

    with caplog.at_level(logging.ERROR):
        summary = run(state, broken)
    assert summary.outcome == "failed" and summary.reason == "KeyError: 'contactid'"
    assert len(state.table("runs").rows) == 2 and state.table("leases").rows == {}


def test_a_failing_summary_store_does_not_fail_a_good_run(caplog: pytest.LogCaptureFixture) -> None:
    state = FakeState()
    state.table("runs").fail["create_entity"] = ConnectionError("storage down")
    with caplog.at_level(logging.WARNING):
        summary = run(state, lambda ctx: True)
    assert summary.outcome == "completed"
    assert any("run.summary_not_stored" in r.getMessage() for r in caplog.records)


def test_dry_run_takes_no_lease_and_stores_nothing() -> None:
    state = FakeState()
    seen: list[bool] = []
    summary = run(state, lambda ctx: seen.append(ctx.dry_run) or True, dry_run=True)
    assert summary.outcome == "completed" and summary.dry_run and seen == [True]
    assert all(table.rows == {} for table in state.tables.values())
    assert state.table("leases").calls == []


def test_scopes_share_the_budget_and_an_early_finisher_leaves_its_rest() -> None:
    state = FakeState()
    clock = TickingClock(step=0.0)
    shares: dict[str, float] = {}

    def body(name: str, spend: float) -> Any:
        def run_body(ctx: RunContext) -> bool:
            shares[name] = ctx.deadline - clock.now
            clock.now += spend
            return True

        return run_body

    run_scopes("ingress", [("a", body("a", 10.0)), ("b", body("b", 50.0)), ("c", body("c", 0.0))],
               state=cast(StateStore, state), budget_seconds=90.0, monotonic=clock)  # fmt: skip
    assert shares == {"a": 30.0, "b": 40.0, "c": 30.0}  # 90/3; (90-10)/2; what b left

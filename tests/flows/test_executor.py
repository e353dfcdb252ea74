"""The per-record executor on in-memory state: dead letters, fail fast, learning, budget, dry run."""

from __future__ import annotations

import collections
import threading
from typing import Any, cast

import pytest

from shared.core.errors import RecordError
from shared.flows.executor import Applied, Batch, Done, RecordExecutor
from shared.flows.runner import OutOfTime, RunContext
from shared.http import ApiError, Outcome
from shared.state.deadletters import DeadLetterStore
from shared.state.lease import RunLease
from tests.flows.fakes import FakeState, FakeTable, TickingClock


def context(*, deadline: float = 1e9, monotonic: Any = lambda: 0.0, dry_run: bool = False) -> RunContext:
    lease = cast(RunLease, None)
    return RunContext("ingress", "contacts", "run1", deadline, lease, monotonic, dry_run=dry_run)


def executor(ctx: RunContext, parallel: int = 4) -> tuple[RecordExecutor, DeadLetterStore, FakeTable]:
    table = FakeState().table("deadletters")
    letters = DeadLetterStore(table, clock=lambda: 100.0)  # type: ignore[arg-type]
    return RecordExecutor("ingress", "contacts", letters, ctx, max_parallel=parallel), letters, table


RECORDS = [(f"id{n:03d}", n) for n in range(100)]


def test_record_errors_are_dead_lettered_and_the_rest_goes_on() -> None:
    ctx = context()
    run, letters, _ = executor(ctx)
    learned: list[list[Done[str]]] = []

    def apply(record_id: str, n: int) -> Applied[str]:
        if n in (3, 50):
            raise RecordError(f"field 'firstname': too long for the target ({n})")
        if n == 7:
            raise ApiError(
                Outcome.RECORD_ERROR, 400, "invalid value for 'birthDate'", method="PATCH", url="https://c/p"
            )
        return Applied("created", effect=f"href-{n}")

    counts = run.run(RECORDS, apply, learn=learned.append)
    assert counts == {"created": 97, "dead_lettered": 3} and ctx.counts == counts
    [batch] = learned  # learned once, in bulk
    assert sorted(d.record_id for d in batch) == sorted(r for r, n in RECORDS if n not in (3, 7, 50))
    assert {d.record_id: d.reason for d in letters.entries("ingress", "contacts")} == {
        "id003": "field 'firstname': too long for the target (3)",
        "id007": "PATCH https://c/p -> 400 (record_error): invalid value for 'birthDate'",
        "id050": "field 'firstname': too long for the target (50)",
    }


def test_the_first_fatal_error_starts_nothing_more_and_keeps_what_finished() -> None:
    ctx = context()
    run, _, _ = executor(ctx, parallel=1)
    attempted: list[int] = []
    learned: list[Done[str]] = []

    def apply(record_id: str, n: int) -> Applied[str]:
        attempted.append(n)
        if n == 9:
            raise ApiError(Outcome.FATAL, 403, "forbidden")
        return Applied("updated", effect=record_id)

    with pytest.raises(ApiError):
        run.run(RECORDS, apply, learn=learned.extend)
    assert attempted == list(range(10))  # the tenth write failed: no eleventh was made
    assert [d.record_id for d in learned] == [f"id{n:03d}" for n in range(9)] and ctx.counts == {"updated": 9}


def test_with_parallel_writes_a_fatal_error_cancels_what_has_not_started() -> None:
    ctx = context()
    run, _, _ = executor(ctx, parallel=4)
    attempted: collections.Counter[int] = collections.Counter()
    in_flight = threading.Barrier(4)  # the first four start together; the fifth one fails

    def apply(record_id: str, n: int) -> Applied[str]:
        attempted[n] += 1
        if n < 4:
            in_flight.wait(timeout=5)
        if n == 4:
            raise TimeoutError("Campaign 504 after its retries")
        return Applied("updated")

    with pytest.raises(TimeoutError):
        run.run(RECORDS, apply)
    # Workers freed by records 0-3 may each have started one more before the failure was seen.
    assert 5 <= sum(attempted.values()) <= 8 and max(attempted.values()) == 1


def test_dead_letters_of_records_that_now_succeed_are_resolved_after_learning() -> None:
    ctx = context()
    run, letters, _ = executor(ctx)
    for record_id in ("id001", "id002", "id099"):
        letters.record("ingress", "contacts", record_id, "earlier failure")
    order: list[str] = []

    def learn(done: list[Done[None]]) -> None:
        order.append(f"learn {len(letters.entries('ingress', 'contacts'))} open")

    counts = run.run(RECORDS[:50], lambda record_id, n: Applied("updated"), learn=learn)
    assert counts == {"updated": 50}
    assert order == ["learn 3 open"]  # the index learned before any dead letter went
    assert [d.record_id for d in letters.entries("ingress", "contacts")] == ["id099"]  # not in this batch


def test_a_scope_without_dead_letters_costs_one_probe() -> None:
    ctx = context()
    run, _, table = executor(ctx)
    run.run(RECORDS, lambda record_id, n: Applied("unchanged"))
    assert table.calls == ["query_entities"]


def test_out_of_time_mid_batch_keeps_what_finished_and_raises() -> None:
    clock = TickingClock(step=1.0)
    ctx = context(deadline=20.5, monotonic=clock)
    run, _, _ = executor(ctx, parallel=1)
    learned: list[Done[None]] = []
    with pytest.raises(OutOfTime):
        run.run(RECORDS, lambda record_id, n: Applied("created"), learn=learned.extend)
    assert len(learned) == 20 and ctx.counts == {"created": 20}


def test_dry_run_records_no_dead_letter_and_learns_nothing() -> None:
    ctx = context(dry_run=True)
    run, letters, _ = executor(ctx)
    learned: list[Any] = []

    def apply(record_id: str, n: int) -> Applied[None]:
        if n == 1:
            raise RecordError("field 'x': bad")
        return Applied("created")

    assert run.run(RECORDS[:5], apply, learn=learned.append) == {"created": 4, "dead_lettered": 1}
    assert learned == [] and letters.entries() == []


def test_retries_count_under_their_own_names() -> None:
    ctx = context()
    run, letters, _ = executor(ctx)
    letters.record("ingress", "contacts", "id000", "x")
    letters.record("ingress", "contacts", "id001", "x")

    def apply(record_id: str, n: int) -> Applied[None]:
        if n == 1:
            raise RecordError("still bad")
        return Applied("updated")

    counts = run.run(RECORDS[:2], apply, known_letters=["id000", "id001"], failed_count="dead_letter_retries_failed",
                     succeeded_count="dead_letter_retries_ok")  # fmt: skip
    assert counts == {"updated": 1, "dead_letter_retries_ok": 1, "dead_letter_retries_failed": 1}
    [left] = letters.entries("ingress", "contacts")
    assert (left.record_id, left.attempts) == ("id001", 2)


def test_isolation_dead_letters_a_record_that_fails_alone_and_applies_every_other() -> None:
    ctx = context()
    run, letters, _ = executor(ctx, parallel=4)
    applied: list[int] = []

    def apply(record_id: str, n: int) -> Applied[None]:
        if n == 6:
            raise ApiError(Outcome.RETRY, 500, "Internal Server Error", method="PATCH", url="https://c/p/@6")
        applied.append(n)
        return Applied("updated")

    counts = run.run(RECORDS[:10], apply, isolate=True)
    assert counts == {"updated": 9, "dead_lettered": 1} and applied == [0, 1, 2, 3, 4, 5, 7, 8, 9]  # in order
    [letter] = letters.entries("ingress", "contacts")
    assert letter.record_id == "id006" and letter.reason.startswith("fails alone while the rest of its batch")


def test_isolation_calls_three_failures_in_a_row_an_outage_and_blames_no_record() -> None:
    ctx = context()
    run, letters, _ = executor(ctx)

    def apply(record_id: str, n: int) -> Applied[None]:
        if n >= 2:
            raise ApiError(Outcome.RETRY, 503, "Service Unavailable")
        return Applied("updated")

    with pytest.raises(ApiError):
        run.run(RECORDS[:10], apply, isolate=True)
    assert letters.entries() == [] and ctx.counts == {"updated": 2}


# -- batches one after the other (run_batches)


def test_a_batch_starts_while_the_last_records_of_the_one_before_are_still_in_flight() -> None:
    ctx = context()
    run, _, _ = executor(ctx, parallel=2)
    next_batch_started = threading.Event()
    waited: list[bool] = []

    def slow(record_id: str, n: int) -> Applied[str]:
        waited.append(next_batch_started.wait(timeout=5))  # a barrier between batches would make this time out
        return Applied("updated")

    def quick(record_id: str, n: int) -> Applied[str]:
        next_batch_started.set()
        return Applied("updated")

    counts = run.run_batches([Batch([("a0", 0)], slow, ()), Batch([("b0", 1), ("b1", 2)], quick, ())])
    assert waited == [True] and counts == {"updated": 3} and ctx.counts == counts


def test_each_batch_is_learned_on_its_own_once_its_last_record_is_back() -> None:
    ctx = context()
    run, _, table = executor(ctx, parallel=3)
    learned: list[list[str]] = []
    batches = [Batch(RECORDS[start : start + 10], lambda record_id, n: Applied("created"), ())
               for start in range(0, 30, 10)]  # fmt: skip
    counts = run.run_batches(batches, learn=lambda done: learned.append(sorted(d.record_id for d in done)))
    assert sorted(learned) == [[f"id{n:03d}" for n in range(s, s + 10)] for s in (0, 10, 20)]
    assert counts == {"created": 30} and table.calls == []  # open letters known: no probe


def test_a_batch_with_its_own_learn_is_learned_by_it_and_the_others_by_the_run() -> None:
    ctx = context()
    run, _, _ = executor(ctx, parallel=2)
    by_run: list[str] = []
    by_batch: list[str] = []
    batches = [Batch(RECORDS[:5], lambda record_id, n: Applied("created"), ()),
               Batch(RECORDS[5:8], lambda record_id, n: Applied("created"), (),
                     learn=lambda done: by_batch.extend(d.record_id for d in done))]  # fmt: skip
    run.run_batches(batches, learn=lambda done: by_run.extend(d.record_id for d in done))
    assert sorted(by_run) == ["id000", "id001", "id002", "id003", "id004"]
    assert sorted(by_batch) == ["id005", "id006", "id007"]


def test_an_error_in_a_later_batch_keeps_what_finished_of_every_batch_and_starts_no_further_batch() -> None:
    ctx = context()
    run, _, _ = executor(ctx, parallel=1)
    learned: list[list[str]] = []
    handed: list[str] = []

    def apply(record_id: str, n: int) -> Applied[str]:
        if n == 13:
            raise ApiError(Outcome.FATAL, 403, "forbidden")
        return Applied("updated")

    def batches() -> Any:
        for start in range(0, 30, 10):
            handed.append(f"batch {start}")
            yield Batch(RECORDS[start : start + 10], apply, ())

    with pytest.raises(ApiError):
        run.run_batches(batches(), learn=lambda done: learned.append([d.record_id for d in done]))
    assert handed == ["batch 0", "batch 10"]  # the third batch was never read
    assert learned == [[f"id{n:03d}" for n in range(10)], ["id010", "id011", "id012"]]
    assert ctx.counts == {"updated": 13}


def test_reading_a_batch_ahead_failing_stops_the_run_and_keeps_what_finished() -> None:
    ctx = context()
    run, _, _ = executor(ctx, parallel=2)
    learned: list[str] = []

    def batches() -> Any:
        yield Batch(RECORDS[:5], lambda record_id, n: Applied("updated"), ())
        raise ConnectionError("index read failed")

    with pytest.raises(ConnectionError):
        run.run_batches(batches(), learn=lambda done: learned.extend(d.record_id for d in done))
    assert sorted(learned) == [f"id{n:03d}" for n in range(5)] and ctx.counts == {"updated": 5}

"""Batch writes of egress against a scripted client: batches sized and grouped by event, results matched back to
their events by position, parts that were not processed sent again, a fatal part stopping the run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest

from shared.clients.dataverse import Creation, DataverseClient, Operation, OperationResult
from shared.core.activities import Write, Writes
from shared.core.events import EmailEvent
from shared.flows.egress_writer import BatchWriter
from shared.http import ApiError, Outcome, RetryPolicy

Answer = Callable[[int, Operation], tuple[int, Outcome, str]]  # (call number, operation) -> status, outcome, code


class ScriptedDataverse:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[list[Operation]] = []
        self._lock = threading.Lock()

    def batch(self, operations: Sequence[Operation], *, continue_on_error: bool = True) -> list[OperationResult]:
        assert continue_on_error
        with self._lock:
            self.calls.append(list(operations))
            number = len(self.calls)
        out = []
        for index, op in enumerate(operations):
            status, outcome, code = self.answer(number, op)
            out.append(OperationResult(index, status, outcome, code=code, message="a message quoting x@y.example"))
        return out


def created(number: int, op: Operation) -> tuple[int, Outcome, str]:
    return 204, Outcome.OK, ""


def activity_id(i: int) -> str:  # row ids are GUIDs: the client refuses anything else before building a URL
    return f"aaaaaaaa-0000-4000-8000-{i:012x}"


def task_id(i: int) -> str:
    return f"bbbbbbbb-0000-4000-8000-{i:012x}"


def events(n: int, *, task_every: int = 0) -> list[tuple[EmailEvent, Writes]]:
    out = []
    for i in range(n):
        event = EmailEvent("click", str(i), "2026-12-01T20:30:00Z", external_id="c")
        writes = [Write("activity", "new_campaignclicks", activity_id(i), {"subject": "s"})]
        if task_every and i % task_every == 0:
            writes.append(Write("task", "tasks", task_id(i), {"subject": "t"}))
        out.append((event, Writes(tuple(writes))))
    return out


def writer(client: ScriptedDataverse, **options: Any) -> tuple[BatchWriter, list[float]]:
    sleeps: list[float] = []
    made = BatchWriter(cast(DataverseClient, client), sleep=sleeps.append, rand=lambda: 0.0,
                       policy=RetryPolicy(max_attempts=3, base_delay=1.0), **options)  # fmt: skip
    return made, sleeps


def test_operations_are_create_if_absent_in_batches_that_keep_an_events_rows_together() -> None:
    client = ScriptedDataverse(created)
    outcomes = writer(client, batch_size=5, max_parallel=2)[0].write(events(7, task_every=2))
    sizes = sorted(len(call) for call in client.calls)
    assert sum(sizes) == 11 and max(sizes) <= 5
    for call in client.calls:
        ids = [op.path for op in call]
        for op in call:  # a task goes with its activity
            if op.path.startswith("tasks("):
                assert op.path.replace("tasks(bbbbbbbb", "new_campaignclicks(aaaaaaaa") in ids
        assert all(op.method == "PATCH" and op.headers == {"If-None-Match": "*"} for op in call)
    assert [(o.activity, o.task) for o in outcomes] == [
        (Creation.CREATED, Creation.CREATED if i % 2 == 0 else None) for i in range(7)
    ]


def test_results_are_matched_back_to_their_events() -> None:
    def answer(number: int, op: Operation) -> tuple[int, Outcome, str]:
        if op.path == f"new_campaignclicks({activity_id(1)})":
            return 412, Outcome.RECORD_ERROR, "0x80040237"  # there already
        if op.path == f"tasks({task_id(2)})":
            return 404, Outcome.RECORD_ERROR, "0x80040217"  # the contact is missing
        if op.path == f"new_campaignclicks({activity_id(3)})":
            return 400, Outcome.RECORD_ERROR, "0x80044331"  # refused
        return 204, Outcome.OK, ""

    outcomes = writer(ScriptedDataverse(answer), batch_size=3)[0].write(events(5, task_every=1))
    assert [o.ok for o in outcomes] == [True, True, False, False, True]
    assert (outcomes[1].activity, outcomes[1].task) == (Creation.EXISTS, Creation.CREATED)
    assert outcomes[2].problem is Creation.MISSING_REFERENCE
    assert outcomes[2].reason.startswith("event click:2: no Dynamics contact") and "[0x80040217]" in outcomes[2].reason
    assert outcomes[3].problem is Creation.REFUSED and "400 [0x80044331]" in outcomes[3].reason
    assert all("@" not in o.reason for o in outcomes)  # the server's message (which may quote values) is left out


def test_parts_not_processed_are_sent_again_and_only_they() -> None:
    def answer(number: int, op: Operation) -> tuple[int, Outcome, str]:
        if number == 1 and op.path in (
            f"new_campaignclicks({activity_id(1)})",
            f"new_campaignclicks({activity_id(2)})",
        ):
            return (
                (0, Outcome.RETRY, "")
                if op.path.endswith(f"{activity_id(1)})")
                else (429, Outcome.RATE_LIMITED, "0x80072322")
            )
        return 204, Outcome.OK, ""

    client = ScriptedDataverse(answer)
    made, sleeps = writer(client, batch_size=10)
    outcomes = made.write(events(4))
    assert [len(c) for c in client.calls] == [4, 2]
    assert {op.path for op in client.calls[1]} == {
        f"new_campaignclicks({activity_id(1)})",
        f"new_campaignclicks({activity_id(2)})",
    }
    assert sleeps == [1.0] and all(o.activity is Creation.CREATED for o in outcomes)


def test_parts_that_never_go_through_stop_the_run() -> None:
    client = ScriptedDataverse(lambda number, op: (503, Outcome.RETRY, ""))
    made, sleeps = writer(client)
    with pytest.raises(ApiError) as raised:
        made.write(events(2))
    assert raised.value.outcome is Outcome.RETRY and len(client.calls) == 3 and sleeps == [1.0, 2.0]


def test_a_part_refused_for_permissions_stops_the_run_at_once() -> None:
    client = ScriptedDataverse(lambda number, op: (403, Outcome.FATAL, "0x80040220"))
    with pytest.raises(ApiError) as raised:
        writer(client)[0].write(events(3))
    assert raised.value.outcome is Outcome.FATAL and raised.value.status == 403 and len(client.calls) == 1


def test_an_error_of_the_whole_request_starts_no_further_batch() -> None:
    def answer(number: int, op: Operation) -> tuple[int, Outcome, str]:
        raise ApiError(Outcome.FATAL, 401, "no")

    client = ScriptedDataverse(answer)
    with pytest.raises(ApiError):
        writer(client, batch_size=1, max_parallel=1)[0].write(events(5))
    assert len(client.calls) == 1

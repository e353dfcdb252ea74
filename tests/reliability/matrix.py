"""What every cell does the same way: tick a flow as its timer would until it completes, count the end state against
the expected one, record the figures and assert nothing was lost or duplicated."""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shared.flows.runner import RunSummary
from shared.state.deadletters import DeadLetterStore
from tests.e2e.conftest import Stack
from tests.reliability.figures import CellResult, Collector

log = logging.getLogger("tests.reliability")

SOAK = os.environ.get("RELIABILITY_SOAK") == "1"
SEEDS = (1, 2, 3) if SOAK else (1,)
SIZE = 120 if SOAK else 24  # source records per cell (contacts, or events' contacts)
MAX_TICKS = 12


class Ticks:
    """Runs a flow tick after tick (a tick that raises is one the host logged; the timer fires again) until every
    scope completed; counts the runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.failures: list[str] = []

    def until_completed(self, tick: Callable[[], list[RunSummary]], *, max_ticks: int = MAX_TICKS) -> None:
        for _ in range(max_ticks):
            self.runs += 1
            try:
                summaries = tick()
            except Exception as exc:  # the host logs it and the next tick comes
                self.failures.append(f"{type(exc).__name__}")
                log.info("tick raised %s", type(exc).__name__)
                continue
            self.failures += [f"{s.outcome}: {s.reason[:200]}" for s in summaries if s.outcome != "completed"]
            if summaries and all(s.outcome == "completed" for s in summaries):
                return
        raise AssertionError(f"not completed after {max_ticks} ticks: {self.failures[-5:]}")


def keyed_counts(actual_keys: Iterable[str], expected_keys: Iterable[str]) -> tuple[int, int, int]:
    """(lost, duplicated, unexpected): expected keys missing, extra copies of a key, keys nobody expects."""
    counts = collections.Counter(actual_keys)
    expected = set(expected_keys)
    lost = len(expected - set(counts))
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    unexpected = len(set(counts) - expected)
    return lost, duplicated, unexpected


def stale_values(expected: Mapping[str, Mapping[str, Any]], actual: Mapping[str, Mapping[str, Any]],
                 fields: Callable[[str], bool] = lambda _: True) -> list[tuple[str, str]]:  # fmt: skip
    """(key, field) pairs whose value in the target is not the expected one (a lost update)."""
    return [
        (key, name)
        for key, payload in expected.items()
        if key in actual
        for name, value in payload.items()
        if fields(name) and not (value == actual[key].get(name) or (value is None and actual[key].get(name) == ""))
    ]


def open_dead_letters(stack: Stack, flow: str, scope: str | None = None) -> set[str]:
    return {d.record_id for d in DeadLetterStore(stack.svc.state.table("deadletters")).entries(flow, scope)}


def record(collector: Collector, *, fault: str, flow: str, seed: int, ticks: Ticks, records: int, lost: int,
           duplicated: int, unexpected: int, dead_lettered: set[str], rejected: set[str],
           fired: list[Callable[[], bool]]) -> None:  # fmt: skip
    """Stores the cell's figures, then asserts them: the fault happened, nothing lost, duplicated or left over, and
    the dead letters are exactly the records rejected on purpose."""
    collector.add(CellResult(fault, flow, seed, ticks.runs, records, lost + unexpected, duplicated,
                             len(dead_lettered), len(rejected)))  # fmt: skip
    assert fired and all(check() for check in fired), f"the fault '{fault}' never reached {flow}"
    assert (lost, duplicated, unexpected) == (0, 0, 0), (lost, duplicated, unexpected, ticks.failures[-5:])
    assert dead_lettered == rejected

"""The initial-transfer cell's shared steps: a table over the threshold handed to the file path, the transfer ticked
under a fault until it is handed back to ingress, then Dynamics changes through ingress; the end state measured in
Campaign against the oracle (nothing is refused on purpose here: the Load file's rejections are not reported back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.flows.runner import RunSummary
from tests.e2e.test_ingress import only_updatable
from tests.e2e.test_initial_transfer import TransferStack
from tests.reliability import sources
from tests.reliability.figures import Collector
from tests.reliability.matrix import SIZE, Ticks, keyed_counts, open_dead_letters, record, stale_values

FLOW = "initial_transfer"
SETTINGS = {
    "INITIAL_TRANSFER_THRESHOLD": "10",
    "DATAVERSE_PAGE_SIZE": "8",
    "INITIAL_TRANSFER_PART_ROWS": "10",
    "INITIAL_TRANSFER_GZIP": "false",
    "HTTP_READ_TIMEOUT_SECONDS": "1",
    "CAMPAIGN_MAX_PARALLEL": "2",
}


def handed_over(ts: TransferStack, tick: Callable[[], list[RunSummary]]) -> Callable[[], list[RunSummary]]:
    """A transfer tick counts as completed only once the table is back with ingress."""

    def run() -> list[RunSummary]:
        summaries = tick()
        if ts.cursor().state != "handed-over":
            for s in summaries:
                if s.outcome == "completed":
                    s.outcome = "partial"  # the import is still on its way: the timer looks again
        return summaries

    return run


def transfer_then_increments(ts: TransferStack, seed: int, arm_fault: Callable[[], list[Callable[[], bool]]],
                             transfer: Callable[[], list[RunSummary]] | None = None,
                             before_increments: Callable[[], Any] | None = None,
                             ) -> tuple[Ticks, list[Callable[[], bool]]]:  # fmt: skip
    ids = sources.seed_contacts(ts.dv, SIZE, seed)
    ticks = Ticks()
    ticks.until_completed(lambda: ts.ingress("contacts"))  # counts the rows, hands the table to the file path
    assert ts.cursor().state != "idle"
    fired = arm_fault()
    ticks.until_completed(handed_over(ts, transfer or (lambda: ts.transfer("contacts"))))
    sources.change_contacts(ts.dv, ids, seed, SIZE // 2)
    if before_increments:
        fired += before_increments()
    ticks.until_completed(lambda: ts.ingress("contacts"))
    return ticks, fired


def check(ts: TransferStack, figures: Collector, fault: str, seed: int, ticks: Ticks,
          fired: list[Callable[[], bool]]) -> None:  # fmt: skip
    table = ts.stack.table("contacts")
    expected = ts.stack.expected(table)
    rows = ts.stack.campaign_rows(table)
    lost, duplicated, unexpected = keyed_counts([r[table.key_attribute] for r in rows], expected)
    stale = stale_values(expected, {r[table.key_attribute]: r for r in rows}, only_updatable)
    record(figures, fault=fault, flow=FLOW, seed=seed, ticks=ticks, records=len(expected), lost=lost + len(stale),
           duplicated=duplicated, unexpected=unexpected, dead_lettered=open_dead_letters(ts.stack, "ingress"),
           rejected=set(), fired=fired)  # fmt: skip

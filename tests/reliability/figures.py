"""The matrix's figures: one row per cell (fault kind, flow, runs, records, lost, duplicated, dead-lettered), kept for
the session and written as Markdown (the README's Reliability table is regenerated from it)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence

FLOWS = ("ingress", "initial_transfer", "egress", "optout")


@dataclasses.dataclass(frozen=True)
class CellResult:
    fault: str
    flow: str
    seed: int
    runs: int  # flow runs (timer ticks) until the end state, the faulted ones included
    records: int  # source records the cell checked in the target system
    lost: int  # expected but missing (or a stale value left behind)
    duplicated: int  # more than one target record for one source record, or an activity twice
    dead_lettered: int  # open dead letters at the end
    rejected: int  # records the test seeded to be refused: must equal dead_lettered


class Collector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.results: list[CellResult] = []

    def add(self, result: CellResult) -> None:
        with self._lock:
            self.results.append(result)

    def markdown(self, faults: Sequence[str], not_applicable: Mapping[tuple[str, str], str],
                 known_gaps: Mapping[tuple[str, str], str], variant: str) -> str:  # fmt: skip
        return render(self.results, faults, not_applicable, known_gaps, variant)


def render(results: Sequence[CellResult], faults: Sequence[str], not_applicable: Mapping[tuple[str, str], str],
           known_gaps: Mapping[tuple[str, str], str], variant: str) -> str:  # fmt: skip
    by_cell: dict[tuple[str, str], list[CellResult]] = {}
    for r in results:
        by_cell.setdefault((r.fault, r.flow), []).append(r)
    lines = [
        f"Fault matrix ({variant}): each cell is runs / records / lost / duplicated / dead-lettered, summed over its "
        "seeds; n/a says why a fault does not apply to a flow.",
        "",
        "| Fault kind | " + " | ".join(FLOWS) + " |",
        "|---|" + "---|" * len(FLOWS),
    ]
    notes: list[str] = []
    for fault in faults:
        cells = []
        for flow in FLOWS:
            got = by_cell.get((fault, flow))
            if got:
                cells.append(_cell(got))
            elif (fault, flow) in known_gaps:
                notes.append(f"{fault} x {flow}: {known_gaps[(fault, flow)]}")
                cells.append(f"xfail [{len(notes)}]")
            elif (fault, flow) in not_applicable:
                notes.append(f"{fault} x {flow}: {not_applicable[(fault, flow)]}")
                cells.append(f"n/a [{len(notes)}]")
            else:
                cells.append("not run")
        lines.append(f"| {fault} | " + " | ".join(cells) + " |")
    measured = list(by_cell)
    totals = [sum(getattr(r, name) for r in results) for name in ("runs", "records", "lost", "duplicated",
                                                                     "dead_lettered", "rejected")]  # fmt: skip
    lines += [
        "",
        f"Totals: {len({f for f, _ in measured})} fault kinds, {len({fl for _, fl in measured})} flows, "
        f"{len(measured)} cells ({len(results)} cell runs with seeds), {totals[0]} flow runs, {totals[1]} records, "
        f"lost {totals[2]}, duplicated {totals[3]}, dead-lettered {totals[4]} (rejected on purpose: {totals[5]}).",
        "",
    ]
    lines += [f"[{n}] {text}" for n, text in enumerate(notes, 1)]
    return "\n".join(lines) + "\n"


def _cell(results: Sequence[CellResult]) -> str:
    total = [sum(getattr(r, n) for r in results) for n in ("runs", "records", "lost", "duplicated", "dead_lettered")]
    return " / ".join(str(v) for v in total)

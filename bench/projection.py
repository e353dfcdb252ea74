"""CPU per row of shaping: the compiled projection and filters against project()/passes() (the reference).

Rows: one 5000-row page of sandbox contacts with the shipped example mapping's columns; mapping: the example's
contacts table (config/sync.example.json). Each side filters then projects every row, as ingress does for a
full write; timed in this process only (no I/O), best of several passes to keep other work on the machine out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.context import Context
from bench.figures import Figure, at_most
from bench.rows import contact_page, example_table
from shared.core.filters import compile_filters, passes
from shared.core.projection import compile_projection, project

NAME = "projection"


def run(ctx: Context) -> list[Figure]:
    table = example_table("contacts")
    rows = contact_page(ctx, table)
    compiled = compile_projection(table, source_types={}, target_types={})
    keep = compile_filters(table.filters)

    def reference_row(row: Mapping[str, Any]) -> None:
        if passes(row, table.filters):
            project(row, table, full=True, source_types={}, target_types={})

    def compiled_row(row: Mapping[str, Any]) -> None:
        if keep(row):
            compiled.project(row, full=True)

    passes_count = 3 if ctx.quick else 7
    reference = per_row_microseconds(reference_row, rows, passes_count)
    fast = per_row_microseconds(compiled_row, rows, passes_count)
    return [
        Figure(NAME, "reference project() + passes()", reference, "µs/row"),
        Figure(NAME, "compiled projection + filters", fast, "µs/row", reference, "reference", at_most(0.35)),
    ]


def per_row_microseconds(
    work: Callable[[Mapping[str, Any]], None], rows: Sequence[Mapping[str, Any]], runs: int
) -> float:
    """The best of `runs` timed passes over the rows, in µs per row."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for row in rows:
            work(row)
        best = min(best, time.perf_counter() - started)
    return best / len(rows) * 1e6

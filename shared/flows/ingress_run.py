"""Runs ingress for a set of tables, each under its own lease, sharing one time budget fairly."""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.config.model import TableMapping
from shared.flows.ingress import FLOW, IngressDeps, ingress_body
from shared.flows.runner import RunSummary, run_flow
from shared.state.store import StateStore


def run_ingress(
    tables: list[TableMapping],
    deps: IngressDeps,
    state: StateStore,
    *,
    budget_seconds: float,
    invocation_id: str = "",
    monotonic: Callable[[], float] = time.monotonic,
) -> list[RunSummary]:
    """Each table gets an equal share of what is left, so one big table cannot starve the others."""
    summaries = []
    deadline = monotonic() + budget_seconds
    for position, table in enumerate(tables):
        share = max(0.0, deadline - monotonic()) / (len(tables) - position)
        summaries.append(
            run_flow(FLOW, table.name, ingress_body(table, deps), state=state, budget_seconds=share,
                     invocation_id=invocation_id, monotonic=monotonic)
        )  # fmt: skip
    return summaries

"""How the CLI shows things: tables for people (rich; plain text when not on a terminal), JSON for scripts."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from shared.flows.definition import Check
from shared.ops.status import ScopeStatus


def console() -> Console:
    return Console(file=sys.stdout, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def local_time(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never saved"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def status_table(rows: Sequence[ScopeStatus]) -> Table:
    table = Table(title="status", show_lines=False)
    for column in ("flow", "scope", "cursor", "last run", "cursor age", "backlog", "dead letters", "lease"):
        table.add_column(column)
    for row in rows:
        last = f"{row.last_outcome or '-'} {row.last_run_at}".strip()
        if row.replay_requested:
            last += " (replay requested)"
        lease = f"run {row.lease.owner[:8]} until {local_time(row.lease.expires_at)}" if row.lease else "-"
        table.add_row(row.flow, row.scope, row.cursor, last, age(row.cursor_age_seconds), row.backlog or "-",
                      str(row.dead_letters), lease)  # fmt: skip
    return table


def summaries_table(summaries: Iterable[Mapping[str, Any]]) -> Table:
    table = Table(title="runs")
    for column in ("flow", "scope", "outcome", "counts", "seconds", "reason / notes"):
        table.add_column(column)
    for s in summaries:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(s["counts"].items()) if v) or "-"
        outcome = s["outcome"] + (" (dry run)" if s.get("dry_run") else "")
        why = "; ".join([s.get("reason") or "", *s.get("notes", [])]).strip("; ")
        table.add_row(s["flow"], s["scope"], outcome, counts, f"{s['duration_seconds']:.1f}", why or "-")
    return table


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table(title="validate (live systems)")
    table.add_column("checked")
    table.add_column("result")
    for check in checks:
        table.add_row(check.subject, "ok" if check.ok else "\n".join(f"- {p}" for p in check.problems))
    return table


def rows_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    return table

"""Run summaries, newest first per flow and scope: what `status` shows."""

from __future__ import annotations

import json
from typing import Any

from azure.data.tables import TableClient

from shared.state.keys import partition, reverse_ticks


class RunLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def append(self, summary: dict[str, Any], now: float | None = None) -> None:
        self._table.create_entity(
            {
                "PartitionKey": partition(summary["flow"], summary["scope"]),
                "RowKey": reverse_ticks(now) + "-" + summary["run_id"][:8],
                "summary": json.dumps(summary, sort_keys=True, default=str)[:30000],
            }
        )

    def latest(self, flow: str, scope: str, limit: int = 10) -> list[dict[str, Any]]:
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": partition(flow, scope)},
                                          results_per_page=limit)  # fmt: skip
        out: list[dict[str, Any]] = []
        for entity in rows:
            out.append(json.loads(entity["summary"]))
            if len(out) >= limit:
                break
        return out

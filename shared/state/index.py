"""The synced-record index: Dynamics id -> Campaign record and hashes of what was last pushed.

It lets an update go straight to PATCH without a lookup, and lets an unchanged record cost no call.
It holds ids, hrefs and hashes only: nothing personal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.keys import safe_key


@dataclasses.dataclass
class IndexEntry:
    table: str
    record_id: str  # Dynamics id
    href: str  # Campaign record href (PKey-based; re-resolved through the custom key if it 404s)
    hash_full: str = ""  # hash of the full projection last written (initial load, replay, create)
    hash_updates: str = ""  # hash of the apply-updates projection last written
    generation: int = 0  # checkpoint generation of the write: a replay bumps it, so old hashes stop counting
    updated_at: float = 0.0


class RecordIndex:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def get(self, table: str, record_id: str) -> IndexEntry | None:
        try:
            entity = self._table.get_entity(safe_key(table), safe_key(record_id))
        except ResourceNotFoundError:
            return None
        return IndexEntry(
            table=table,
            record_id=record_id,
            href=entity["href"],
            hash_full=entity.get("hash_full", ""),
            hash_updates=entity.get("hash_updates", ""),
            generation=int(entity.get("generation", 0)),
            updated_at=float(entity.get("updated_at", 0.0)),
        )

    def put(self, entry: IndexEntry) -> None:
        entry.updated_at = self._clock()
        self._table.upsert_entity(
            {
                "PartitionKey": safe_key(entry.table),
                "RowKey": safe_key(entry.record_id),
                "href": entry.href,
                "hash_full": entry.hash_full,
                "hash_updates": entry.hash_updates,
                "generation": entry.generation,
                "updated_at": entry.updated_at,
            },
            mode=UpdateMode.REPLACE,
        )

    def delete(self, table: str, record_id: str) -> None:
        try:
            self._table.delete_entity(safe_key(table), safe_key(record_id))
        except ResourceNotFoundError:
            pass

    def iter_table(self, table: str) -> Iterator[IndexEntry]:
        for entity in self._table.query_entities(f"PartitionKey eq '{safe_key(table)}'"):
            yield IndexEntry(
                table=table,
                record_id=entity["RowKey"],
                href=entity["href"],
                hash_full=entity.get("hash_full", ""),
                hash_updates=entity.get("hash_updates", ""),
                generation=int(entity.get("generation", 0)),
                updated_at=float(entity.get("updated_at", 0.0)),
            )

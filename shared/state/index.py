"""The synced-record index: Dynamics id -> Campaign record and hashes of what was last pushed.

It lets an update go straight to PATCH without a lookup, and lets an unchanged record cost no call.
It holds ids, hrefs and hashes only: nothing personal.

A table's entries are spread over SHARDS partitions (`<table>~<shard>`, the shard from a hash of the id):
one Table Storage partition serves about 2,000 entities per second, and a query that ORs RowKeys is
served as a scan of its partition, so partitions are kept smaller (a million records: ~62,000 each).
A few ids (an increment) are point reads, in parallel; many ids (a replay) query each shard for its own
ids, 14 per query. An initial load reads nothing here: its records are new (see ingress).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.key_reads import read_many
from shared.state.keys import safe_key
from shared.state.transactions import in_transactions, submit_transaction

SHARDS = 16
POINT_READS_UP_TO = 200  # fewer ids than this are read one by one: a point read is the cheapest query


def partition_of(table: str, record_id: str) -> str:
    """The partition of a record's entry: stable across processes (crc32, not Python's salted hash)."""
    return partitions(table)[zlib.crc32(record_id.encode()) % SHARDS]


@functools.lru_cache(maxsize=64)  # a few tables, asked several times per record: built once per table
def partitions(table: str) -> tuple[str, ...]:
    return tuple(safe_key(f"{table}~{shard:02d}") for shard in range(SHARDS))


@dataclasses.dataclass
class IndexEntry:
    table: str
    record_id: str  # Dynamics id
    href: str  # Campaign record href (PKey-based; re-resolved through the custom key if it 404s)
    hash_full: str = ""  # hash of the full projection last written (initial load, replay, create)
    hash_updates: str = ""  # hash of the apply-updates projection last written
    generation: int = 0  # checkpoint generation of the write: a replay bumps it, so old hashes stop counting
    seen_epoch: int = 0  # the resync read that last saw this record (see ingress's sweep)
    updated_at: float = 0.0


class RecordIndex:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def get(self, table: str, record_id: str) -> IndexEntry | None:
        try:
            entity = self._table.get_entity(partition_of(table, record_id), safe_key(record_id))
        except ResourceNotFoundError:
            return None
        return self._entry(table, entity)

    def get_many(self, table: str, record_ids: Iterable[str], parallel: int = 8) -> dict[str, IndexEntry]:
        """Entries of many records with one query per 14 ids of one shard, instead of one call per record."""
        wanted = sorted(set(record_ids))
        if len(wanted) <= POINT_READS_UP_TO:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(parallel, len(wanted) or 1))) as pool:
                found = pool.map(lambda record_id: self.get(table, record_id), wanted)
                return {entry.record_id: entry for entry in found if entry is not None}
        by_partition: dict[str, list[str]] = {}
        for record_id in wanted:
            by_partition.setdefault(partition_of(table, record_id), []).append(safe_key(record_id))
        entries = (self._entry(table, e) for e in read_many(self._table, by_partition, parallel))
        return {entry.record_id: entry for entry in entries}

    def put(self, entry: IndexEntry) -> None:
        self._table.upsert_entity(self._entity(entry), mode=UpdateMode.REPLACE)

    def put_many(self, entries: Iterable[IndexEntry], *, parallel: int = 8) -> None:
        """Upsert in transactions of 100, the service's limit, each within one partition, sent in parallel."""

        def save(group: Sequence[IndexEntry]) -> None:
            submit_transaction(self._table, [("upsert", self._entity(e), {"mode": UpdateMode.REPLACE}) for e in group])

        in_transactions(entries, lambda e: partition_of(e.table, e.record_id), save, parallel=parallel)

    def _entity(self, entry: IndexEntry) -> dict[str, Any]:
        entry.updated_at = self._clock()
        return {
            "PartitionKey": partition_of(entry.table, entry.record_id),
            "RowKey": safe_key(entry.record_id),
            "record_id": entry.record_id,
            "href": entry.href,
            "hash_full": entry.hash_full,
            "hash_updates": entry.hash_updates,
            "generation": entry.generation,
            "seen_epoch": entry.seen_epoch,
            "updated_at": entry.updated_at,
        }

    @staticmethod
    def _entry(table: str, entity: Mapping[str, Any]) -> IndexEntry:
        return IndexEntry(
            table=table,
            record_id=entity.get("record_id") or entity["RowKey"],
            href=entity["href"],
            hash_full=entity.get("hash_full", ""),
            hash_updates=entity.get("hash_updates", ""),
            generation=int(entity.get("generation", 0)),
            seen_epoch=int(entity.get("seen_epoch", 0)),
            updated_at=float(entity.get("updated_at", 0.0)),
        )

    def delete(self, table: str, record_id: str) -> None:
        try:
            self._table.delete_entity(partition_of(table, record_id), safe_key(record_id))
        except ResourceNotFoundError:
            pass

    def iter_table(self, table: str) -> Iterator[IndexEntry]:
        for pk in partitions(table):
            for entity in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": pk}):
                yield self._entry(table, entity)

"""The "newest applied" record: per contact and opt-out attribute, what the connector last made Campaign and
Dynamics agree on (value, the Dynamics row's modifiedon and version, the value's origin time, the path).

Every path that writes an opt-out (the webhook processor, ingress, the Campaign file) reads it before it
decides and writes it after the write it describes, with the ETag it read: a writer whose record changed in
between knows another path wrote meanwhile and reconciles (shared/flows/optout_apply.py). One row per contact
(RowKey the contact id), one JSON column per attribute (denyList* spelling). Ids, booleans and times only.

Rows are spread over SHARDS partitions (`optout~<shard>`, the shard from a crc32 of the id, as the record
index does): one partition serves about 2,000 entities per second, and a query or a conditional write in a
partition of every contact is served as a scan of it. Earlier versions kept every row in the partition
`optout`; a contact found only there is read from it (as a record with no row yet, so that its first save
creates the sharded row, and two first writers still conflict), until a store sees that partition empty.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.core.optout import AppliedState, Mark
from shared.state.key_reads import read_many
from shared.state.keys import safe_key
from shared.state.transactions import in_transactions, submit_transaction

LEGACY_PARTITION = "optout"  # every row, before the shards
SHARDS = 16


def partition_of(contact: str) -> str:
    return f"{LEGACY_PARTITION}~{zlib.crc32(contact.encode()) % SHARDS:02d}"


_SYSTEM = frozenset({"PartitionKey", "RowKey", "Timestamp", "contact", "updated_at", "odata.etag"})


class AppliedConflict(Exception):
    """The contact's record changed since it was read: another writer got there first."""


@dataclasses.dataclass
class AppliedRecord:
    contact: str
    states: dict[str, AppliedState] = dataclasses.field(default_factory=dict)  # attribute -> state
    etag: str | None = None  # None: no row yet

    def get(self, attribute: str) -> AppliedState | None:
        return self.states.get(attribute)

    def with_changes(self, changes: Mapping[str, AppliedState]) -> AppliedRecord:
        return AppliedRecord(self.contact, {**self.states, **changes}, self.etag)


class AppliedStore:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock
        self._legacy_rows: bool | None = None  # rows left in the legacy partition (read once per store)
        self._lock = threading.Lock()

    def get(self, contact: str) -> AppliedRecord:
        try:
            return _record(self._table.get_entity(partition_of(contact), safe_key(contact)))
        except ResourceNotFoundError:
            pass
        if self._legacy():
            try:
                return _record(self._table.get_entity(LEGACY_PARTITION, safe_key(contact)), legacy=True)
            except ResourceNotFoundError:
                pass
        return AppliedRecord(contact)

    def _legacy(self) -> bool:
        with self._lock:
            if self._legacy_rows is None:
                found = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": LEGACY_PARTITION},
                                                   results_per_page=1, select=["RowKey"])  # fmt: skip
                self._legacy_rows = next(iter(found), None) is not None
            return self._legacy_rows

    def get_many(self, contacts: Iterable[str], parallel: int = 8) -> dict[str, AppliedRecord]:
        """Records of many contacts, 14 per query; contacts without a row get an empty record."""
        ids = sorted(set(contacts))
        out = {contact: AppliedRecord(contact) for contact in ids}
        found = self._query(ids, partition_of, parallel)
        out.update(found)
        missing = [contact for contact in ids if contact not in found]
        if missing and self._legacy():
            out.update(self._query(missing, lambda _: LEGACY_PARTITION, parallel, legacy=True))
        return out

    def _query(
        self, ids: list[str], partition: Callable[[str], str], parallel: int, *, legacy: bool = False
    ) -> dict[str, AppliedRecord]:
        by_partition: dict[str, list[str]] = {}
        for contact in ids:
            by_partition.setdefault(partition(contact), []).append(safe_key(contact))
        records = (_record(e, legacy=legacy) for e in read_many(self._table, by_partition, parallel))
        return {record.contact: record for record in records}

    def save(self, record: AppliedRecord, changes: Mapping[str, AppliedState]) -> AppliedRecord:
        """Write `record` with `changes` if nobody wrote it since it was read (raises AppliedConflict).
        Empty `changes` still checks, and moves, the ETag: a writer confirms nobody wrote in between."""
        updated = record.with_changes(changes)
        entity = self._entity(updated)
        try:
            if record.etag is None:
                metadata = self._table.create_entity(entity)
            else:
                metadata = self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=record.etag,
                                                     match_condition=MatchConditions.IfNotModified)  # fmt: skip
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as exc:
            raise AppliedConflict(record.contact) from exc
        updated.etag = metadata["etag"]
        return updated

    def save_many(
        self, items: Sequence[tuple[AppliedRecord, Mapping[str, AppliedState]]], *, parallel: int = 8
    ) -> list[str]:
        """Save many records in transactions of 100 (`parallel` at once); returns the contacts whose record
        changed under us (their whole transaction is then retried one by one, so only the real conflicts come
        back)."""
        found = in_transactions(items, lambda item: partition_of(item[0].contact), self._save_chunk,
                                parallel=parallel)  # fmt: skip
        return [contact for conflicts in found for contact in conflicts]

    def _save_chunk(self, chunk: Sequence[tuple[AppliedRecord, Mapping[str, AppliedState]]]) -> list[str]:
        operations: list[Any] = []
        for record, changes in chunk:
            entity = self._entity(record.with_changes(changes))
            if record.etag is None:
                operations.append(("create", entity))
            else:
                condition = {"mode": UpdateMode.REPLACE, "etag": record.etag,
                             "match_condition": MatchConditions.IfNotModified}  # fmt: skip
                operations.append(("update", entity, condition))
        try:
            submit_transaction(self._table, operations)
        except TableTransactionError:
            conflicts = []
            for record, changes in chunk:
                try:
                    self.save(record, changes)
                except AppliedConflict:
                    conflicts.append(record.contact)
            return conflicts
        return []

    def _entity(self, record: AppliedRecord) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": partition_of(record.contact), "RowKey": safe_key(record.contact),
                                  "contact": record.contact, "updated_at": self._clock()}  # fmt: skip
        for attribute, state in record.states.items():
            entity[attribute] = json.dumps(
                {"value": state.value, "modifiedon": state.mark.modifiedon, "version": state.mark.version,
                 "origin": state.origin_time, "source": state.source}, sort_keys=True)  # fmt: skip
        return entity


def _record(entity: Mapping[str, Any], *, legacy: bool = False) -> AppliedRecord:
    """The record of a row; a legacy row's record has no ETag: its save creates the sharded row."""
    states: dict[str, AppliedState] = {}
    for name, raw in entity.items():
        if name in _SYSTEM or not isinstance(raw, str):
            continue
        try:
            data = json.loads(raw)
            states[name] = AppliedState(bool(data["value"]), Mark(float(data["modifiedon"]), int(data["version"])),
                                        float(data["origin"]), str(data["source"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            continue  # not an attribute column
    metadata = getattr(entity, "metadata", {}) or {}
    etag = None if legacy else metadata.get("etag")
    return AppliedRecord(str(entity.get("contact") or entity["RowKey"]), states, etag)

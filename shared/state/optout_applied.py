"""The "newest applied" record: per contact and opt-out attribute, what the connector last made Campaign and
Dynamics agree on (value, the Dynamics row's modifiedon and version, the value's origin time, the path).

Every path that writes an opt-out (the webhook processor, ingress, the Campaign file) reads it before it
decides and writes it after the write it describes, with the ETag it read: a writer whose record changed in
between knows another path wrote meanwhile and reconciles (shared/flows/optout_apply.py). One row per contact
(PartitionKey `optout`, RowKey the contact id), one JSON column per attribute (denyList* spelling). Ids,
booleans and times only.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.core.optout import AppliedState, Mark
from shared.state.key_reads import MAX_KEYS, read_by_keys
from shared.state.keys import safe_key
from shared.state.transactions import submit_transaction

PARTITION = "optout"
_BATCH = 100  # operations per entity-group transaction
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

    def get(self, contact: str) -> AppliedRecord:
        try:
            return _record(self._table.get_entity(PARTITION, safe_key(contact)))
        except ResourceNotFoundError:
            return AppliedRecord(contact)

    def get_many(self, contacts: Iterable[str], parallel: int = 8) -> dict[str, AppliedRecord]:
        """Records of many contacts, 14 per query; contacts without a row get an empty record."""
        ids = sorted(set(contacts))
        chunks = [ids[i : i + MAX_KEYS] for i in range(0, len(ids), MAX_KEYS)]

        def query(chunk: list[str]) -> list[AppliedRecord]:
            return [_record(e) for e in read_by_keys(self._table, PARTITION, [safe_key(c) for c in chunk])]

        out = {contact: AppliedRecord(contact) for contact in ids}
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            for records in pool.map(query, chunks):
                out.update((r.contact, r) for r in records)
        return out

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

    def save_many(self, items: Sequence[tuple[AppliedRecord, Mapping[str, AppliedState]]]) -> list[str]:
        """Save many records in transactions of 100; returns the contacts whose record changed under us
        (their whole transaction is then retried one by one, so only the real conflicts come back)."""
        chunks = [items[i : i + _BATCH] for i in range(0, len(items), _BATCH)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(8, len(chunks)))) as pool:
            return [contact for found in pool.map(self._save_chunk, chunks) for contact in found]

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
        entity: dict[str, Any] = {"PartitionKey": PARTITION, "RowKey": safe_key(record.contact),
                                  "contact": record.contact, "updated_at": self._clock()}  # fmt: skip
        for attribute, state in record.states.items():
            entity[attribute] = json.dumps(
                {"value": state.value, "modifiedon": state.mark.modifiedon, "version": state.mark.version,
                 "origin": state.origin_time, "source": state.source}, sort_keys=True)  # fmt: skip
        return entity


def _record(entity: Mapping[str, Any]) -> AppliedRecord:
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
    return AppliedRecord(str(entity.get("contact") or entity["RowKey"]), states, metadata.get("etag"))

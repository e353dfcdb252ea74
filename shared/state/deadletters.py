"""Dead letters: records that failed, with the reason, kept until a later run succeeds or gives up.

Only ids and reasons are stored; reasons are built from field names and error codes, never values. A flow
whose source cannot be read again (egress: its files are archived) may keep what it needs to retry the record in
a separate `payload` (JSON; ids, labels, dates and URLs, never in the reason).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.keys import partition, safe_key

MAX_REASON = 1000
MAX_PAYLOAD = 30_000  # characters of JSON: a Table Storage string property holds 32K characters
_IDS_PER_QUERY = 14  # a filter may hold at most 15 comparisons: the PartitionKey and 14 RowKeys


@dataclasses.dataclass
class DeadLetter:
    flow: str
    scope: str  # the table, file source or queue the record came from
    record_id: str
    reason: str
    attempts: int
    first_seen: float
    last_seen: float
    payload: dict[str, Any] | None = None  # what the flow needs to retry the record, when it keeps it


class DeadLetterStore:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def record(
        self, flow: str, scope: str, record_id: str, reason: str, payload: Mapping[str, Any] | None = None
    ) -> DeadLetter:
        """Add a failure, or count one more attempt of a known one (safe under concurrent writers)."""
        pk, rk = partition(flow, scope), safe_key(record_id)
        reason = reason[:MAX_REASON]
        stored = {} if payload is None else {"payload": _payload_text(payload)}
        while True:
            now = self._clock()
            try:
                current = self._table.get_entity(pk, rk)
            except ResourceNotFoundError:
                entity = {"PartitionKey": pk, "RowKey": rk, "flow": flow, "scope": scope, "record_id": record_id,
                          "reason": reason, "attempts": 1, "first_seen": now, "last_seen": now, **stored}  # fmt: skip
                try:
                    self._table.create_entity(entity)
                except ResourceExistsError:
                    continue
                return self._from_entity(entity)
            current["reason"] = reason
            current.update(stored)
            current["attempts"] = int(current["attempts"]) + 1
            current["last_seen"] = now
            try:
                self._table.update_entity(
                    current, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )  # fmt: skip
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
            return self._from_entity(current)

    def resolve(self, flow: str, scope: str, record_id: str) -> None:
        """The record went through: forget the failure."""
        try:
            self._table.delete_entity(partition(flow, scope), safe_key(record_id))
        except ResourceNotFoundError:
            pass

    def get(self, flow: str, scope: str, record_id: str) -> DeadLetter | None:
        try:
            return self._from_entity(self._table.get_entity(partition(flow, scope), safe_key(record_id)))
        except ResourceNotFoundError:
            return None

    def open_among(self, flow: str, scope: str, record_ids: Iterable[str], parallel: int = 8) -> set[str]:
        """Which of these records have an open dead letter, looked up by id (14 per query).

        One cheap probe first: a scope without dead letters, the usual case, costs a single request."""
        pk = partition(flow, scope)
        probe = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": pk}, select=["RowKey"],
                                           results_per_page=1)  # fmt: skip
        if next(iter(probe), None) is None:  # ItemPaged is lazy: this reads one page of one row
            return set()
        ids = sorted(set(record_ids))
        chunks = [ids[i : i + _IDS_PER_QUERY] for i in range(0, len(ids), _IDS_PER_QUERY)]

        def query(chunk: list[str]) -> list[str]:
            names = {f"r{n}": safe_key(record_id) for n, record_id in enumerate(chunk)}
            rows = " or ".join(f"RowKey eq @{name}" for name in names)
            found = self._table.query_entities(f"PartitionKey eq @pk and ( {rows} )", parameters={"pk": pk, **names},
                                               select=["record_id"])  # fmt: skip
            return [str(e["record_id"]) for e in found]

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return {record_id for found in pool.map(query, chunks) for record_id in found}

    def entries(self, flow: str | None = None, scope: str | None = None) -> list[DeadLetter]:
        if flow and scope:
            entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": partition(flow, scope)})
        elif flow:
            entities = self._table.query_entities("flow eq @flow", parameters={"flow": flow})
        else:
            entities = self._table.list_entities()
        return sorted((self._from_entity(e) for e in entities), key=lambda d: d.first_seen)

    def due(self, flow: str, scope: str, max_attempts: int) -> list[DeadLetter]:
        """Dead letters still worth retrying."""
        return [d for d in self.entries(flow, scope) if d.attempts < max_attempts]

    def rearm(self, flow: str, scope: str) -> int:
        """Make every dead letter of a scope due again (an operator's "retry now"); returns how many."""
        letters = self.entries(flow, scope)
        for letter in letters:
            entity = self._table.get_entity(partition(flow, scope), safe_key(letter.record_id))
            entity["attempts"] = 0
            self._table.update_entity(entity, mode=UpdateMode.REPLACE)
        return len(letters)

    def purge(self, flow: str, scope: str) -> int:
        """Forget every dead letter of a scope (an operator's decision); returns how many went."""
        letters = self.entries(flow, scope)
        for letter in letters:
            self.resolve(flow, scope, letter.record_id)
        return len(letters)

    @staticmethod
    def _from_entity(entity: dict) -> DeadLetter:
        return DeadLetter(
            flow=entity["flow"],
            scope=entity.get("scope") or entity["table"],
            record_id=entity["record_id"],
            reason=entity["reason"],
            attempts=int(entity["attempts"]),
            first_seen=float(entity["first_seen"]),
            last_seen=float(entity["last_seen"]),
            payload=json.loads(entity["payload"]) if entity.get("payload") else None,
        )


def _payload_text(payload: Mapping[str, Any]) -> str:
    text = json.dumps(dict(payload), separators=(",", ":"), sort_keys=True)
    if len(text) > MAX_PAYLOAD:
        raise ValueError(f"a dead-letter payload holds at most {MAX_PAYLOAD} characters of JSON")
    return text

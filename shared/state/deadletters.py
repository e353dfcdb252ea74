"""Dead letters: records that failed, with the reason, kept until a later run succeeds or gives up.

Only ids and reasons are stored; reasons are built from field names and error codes, never values.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.keys import partition, safe_key

MAX_REASON = 1000


@dataclasses.dataclass
class DeadLetter:
    flow: str
    table: str
    record_id: str
    reason: str
    attempts: int
    first_seen: float
    last_seen: float


class DeadLetterStore:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def record(self, flow: str, table: str, record_id: str, reason: str) -> DeadLetter:
        """Add a failure, or count one more attempt of a known one (safe under concurrent writers)."""
        pk, rk = partition(flow, table), safe_key(record_id)
        reason = reason[:MAX_REASON]
        while True:
            now = self._clock()
            try:
                current = self._table.get_entity(pk, rk)
            except ResourceNotFoundError:
                entity = {"PartitionKey": pk, "RowKey": rk, "flow": flow, "table": table, "record_id": record_id,
                          "reason": reason, "attempts": 1, "first_seen": now, "last_seen": now}  # fmt: skip
                try:
                    self._table.create_entity(entity)
                except ResourceExistsError:
                    continue
                return self._from_entity(entity)
            current["reason"] = reason
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

    def resolve(self, flow: str, table: str, record_id: str) -> None:
        """The record went through: forget the failure."""
        try:
            self._table.delete_entity(partition(flow, table), safe_key(record_id))
        except ResourceNotFoundError:
            pass

    def get(self, flow: str, table: str, record_id: str) -> DeadLetter | None:
        try:
            return self._from_entity(self._table.get_entity(partition(flow, table), safe_key(record_id)))
        except ResourceNotFoundError:
            return None

    def entries(self, flow: str | None = None, table: str | None = None) -> list[DeadLetter]:
        if flow and table:
            entities = self._table.query_entities(f"PartitionKey eq '{partition(flow, table)}'")
        elif flow:
            entities = self._table.query_entities(f"flow eq '{flow}'")
        else:
            entities = self._table.list_entities()
        return sorted((self._from_entity(e) for e in entities), key=lambda d: d.first_seen)

    def due(self, flow: str, table: str, max_attempts: int) -> list[DeadLetter]:
        """Dead letters still worth retrying."""
        return [d for d in self.entries(flow, table) if d.attempts < max_attempts]

    @staticmethod
    def _from_entity(entity: dict) -> DeadLetter:
        return DeadLetter(
            flow=entity["flow"],
            table=entity["table"],
            record_id=entity["record_id"],
            reason=entity["reason"],
            attempts=int(entity["attempts"]),
            first_seen=float(entity["first_seen"]),
            last_seen=float(entity["last_seen"]),
        )

"""A run lease in Table Storage: two invocations of one flow never both write.

A timer occurrence can run twice when the host loses its blob lock (azure-functions-host#2968), so
every flow takes this lease first. It expires on its own, so a crashed holder blocks nobody for long.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from types import TracebackType

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.state.keys import safe_key

_PARTITION = "lease"
RENEW_EVERY_SECONDS = 15.0  # keep() writes at most this often: a cleared lease is noticed within it


class LeaseHeld(Exception):
    def __init__(self, name: str, owner: str, expires_at: float) -> None:
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(f"lease {name} is held by run {owner} until {expires_at:.0f}")


class LeaseLost(Exception):
    """Our lease expired and someone else took it: stop writing."""


class RunLease:
    def __init__(
        self,
        table: TableClient,
        name: str,
        owner: str,
        *,
        duration: float = 300.0,
        clock: Callable[[], float] = time.time,
        renew_every: float = RENEW_EVERY_SECONDS,
    ) -> None:
        self._table = table
        self.name = name
        self.owner = owner
        self.duration = duration
        self.renew_every = renew_every
        self._clock = clock
        self._etag: str | None = None
        self._written_at = 0.0  # when the lease row was last written by us (acquire or renew)

    def _entity(self) -> dict[str, object]:
        return {
            "PartitionKey": _PARTITION,
            "RowKey": safe_key(self.name),
            "name": self.name,
            "owner": self.owner,
            "expires_at": self._clock() + self.duration,
        }

    def acquire(self) -> None:
        self._written_at = self._clock()
        try:
            self._etag = self._table.create_entity(self._entity())["etag"]
            return
        except ResourceExistsError:
            pass
        current = self._table.get_entity(_PARTITION, safe_key(self.name))
        if current["owner"] != self.owner and float(current["expires_at"]) > self._clock():
            raise LeaseHeld(self.name, current["owner"], float(current["expires_at"]))
        try:
            self._etag = self._table.update_entity(
                self._entity(),
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )["etag"]
        except ResourceModifiedError as exc:  # another run took it between our read and write
            raise LeaseHeld(self.name, "another run", 0.0) from exc

    def keep(self) -> None:
        """renew() when `renew_every` has passed since the lease was last written, else nothing.

        Called after every unit of durable progress (a page, a file), which in an initial transfer comes every
        few milliseconds: a write each time was a Table round trip in the export's path, 200 per million rows.
        The lease lasts the run's whole budget plus a margin, so it cannot expire between two keeps; what a
        keep can meet late is an operator's `leases clear` of a live run, noticed within `renew_every`."""
        if self._etag is None:
            raise LeaseLost(f"lease {self.name} is not held")
        if self._clock() - self._written_at >= self.renew_every:
            self.renew()

    def renew(self) -> None:
        if self._etag is None:
            raise LeaseLost(f"lease {self.name} is not held")
        self._written_at = self._clock()
        try:
            self._etag = self._table.update_entity(
                self._entity(), mode=UpdateMode.REPLACE, etag=self._etag, match_condition=MatchConditions.IfNotModified
            )["etag"]
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            self._etag = None
            raise LeaseLost(f"lease {self.name} was taken over") from exc

    def release(self) -> None:
        if self._etag is None:
            return
        try:
            self._table.delete_entity(
                _PARTITION, safe_key(self.name), etag=self._etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            pass  # already taken over or gone: nothing of ours to release
        self._etag = None

    def __enter__(self) -> RunLease:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@dataclasses.dataclass(frozen=True)
class HeldLease:
    flow: str
    scope: str
    owner: str  # the run id holding it
    expires_at: float  # epoch seconds


def held_leases(table: TableClient, clock: Callable[[], float] = time.time) -> list[HeldLease]:
    """Leases not yet expired: runs in progress, or dead runs still blocking their scope."""
    now = clock()
    out = []
    for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": _PARTITION}):
        if float(entity["expires_at"]) <= now:
            continue
        flow, _, scope = str(entity.get("name") or entity["RowKey"]).partition("~")
        out.append(HeldLease(flow, scope, str(entity["owner"]), float(entity["expires_at"])))
    return out


def clear_lease(table: TableClient, flow: str, scope: str) -> bool:
    """Remove a lease (an operator's decision, after checking its run is dead); False when there was none."""
    try:
        table.delete_entity(_PARTITION, safe_key(f"{flow}~{scope}"))
    except ResourceNotFoundError:
        return False
    return True

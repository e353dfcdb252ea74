"""Egress writes: every event's rows (its activity, and its task if any) created if absent, through `$batch`.

- Each row is a create-if-absent operation (PATCH <set>(<derived id>) with If-None-Match: *): created, or found
  there already (412) and left alone, so a batch sent twice creates nothing twice and never reverts a row a user
  changed since.
- Operations go in `$batch` requests of at most `batch_size`, an event's rows always in the same request, with
  continue-on-error; up to `max_parallel` requests in flight (the client bounds them too). Service-protection 429s
  on the request wait out Retry-After in the HTTP client.
- Results come back by position and are matched to their events. Parts that were not processed, throttled or met a
  server error are sent again in a later round; a part refused for permissions (or anything unexpected) stops the
  run before the batch is committed, so the next run sends it again.
- An event whose write names a row that does not exist (the contact) or is refused on its own account comes back
  with that problem, for the flow to dead-letter.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import random
import threading
import time
from collections.abc import Callable, Sequence

from shared.clients.dataverse import Creation, DataverseClient, Operation, OperationResult, creation
from shared.core.activities import Write, Writes
from shared.core.events import EmailEvent
from shared.http import ApiError, Outcome, RetryPolicy

PART_RETRY = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=30.0)


@dataclasses.dataclass(frozen=True)
class EventOutcome:
    event: EmailEvent
    activity: Creation | None = None  # CREATED or EXISTS when the event went through
    task: Creation | None = None
    problem: Creation | None = None  # MISSING_REFERENCE or REFUSED: dead-letter it
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclasses.dataclass(frozen=True)
class _Part:
    event: int  # index in the events written
    write: Write


class BatchWriter:
    def __init__(
        self,
        dataverse: DataverseClient,
        *,
        batch_size: int = 1000,
        max_parallel: int = 4,
        policy: RetryPolicy = PART_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.dataverse = dataverse
        self.batch_size = max(1, batch_size)
        self.max_parallel = max(1, max_parallel)
        self.policy = policy
        self.sleep = sleep
        self.rand = rand

    def write(self, items: Sequence[tuple[EmailEvent, Writes]]) -> list[EventOutcome]:
        """Write every event's rows; one outcome per event, in order. Raises ApiError when it must stop."""
        results: dict[tuple[int, str], tuple[Creation, OperationResult]] = {}
        pending = [_Part(index, write) for index, (_, writes) in enumerate(items) for write in writes.writes]
        for attempt in range(1, self.policy.max_attempts + 1):
            for part, result in self._send_round(pending):
                results[(part.event, part.write.role)] = (creation(result), result)
            fatal = next((r for c, r in results.values() if c is Creation.FATAL), None)
            if fatal is not None:
                raise ApiError(Outcome.FATAL, fatal.status, fatal.message, code=fatal.code, method="PATCH",
                               url="$batch")  # fmt: skip
            pending = [p for p in pending if results[(p.event, p.write.role)][0] is Creation.RETRY]
            if not pending:
                break
            if attempt < self.policy.max_attempts:
                self.sleep(self.policy.backoff(attempt, self.rand))
        if pending:
            _, last = results[(pending[0].event, pending[0].write.role)]
            raise ApiError(Outcome.RETRY, last.status, f"{len(pending)} $batch operation(s) not processed after "
                           f"{self.policy.max_attempts} rounds: {last.message}", code=last.code, method="POST",
                           url="$batch")  # fmt: skip
        return [self._outcome(index, event, writes, results) for index, (event, writes) in enumerate(items)]

    def _send_round(self, parts: list[_Part]) -> list[tuple[_Part, OperationResult]]:
        """One round: the parts in batches, in parallel; the first error that is not a part's stops the round
        (batches not yet started are dropped, those in flight finish) and is raised."""
        chunks = self._chunks(parts)
        stop = threading.Event()

        def send(chunk: list[_Part]) -> list[tuple[_Part, OperationResult]]:
            if stop.is_set():
                return []
            operations = [Operation.create_if_absent(p.write.entity_set, p.write.id, p.write.body) for p in chunk]
            try:
                answered = self.dataverse.batch(operations, continue_on_error=True)
            except BaseException:
                stop.set()
                raise
            return list(zip(chunk, answered, strict=True))

        out: list[tuple[_Part, OperationResult]] = []
        error: BaseException | None = None
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.max_parallel, len(chunks) or 1)) as pool:
            for future in [pool.submit(send, chunk) for chunk in chunks]:
                try:
                    out += future.result()
                except BaseException as exc:
                    error = error or exc
        if error is not None:
            raise error
        return out

    def _chunks(self, parts: list[_Part]) -> list[list[_Part]]:
        """Batches of at most batch_size operations; an event's operations stay together."""
        groups: dict[int, list[_Part]] = {}
        for part in parts:
            groups.setdefault(part.event, []).append(part)
        chunks: list[list[_Part]] = []
        current: list[_Part] = []
        for group in groups.values():
            if current and len(current) + len(group) > self.batch_size:
                chunks.append(current)
                current = []
            current += group
        if current:
            chunks.append(current)
        return chunks

    @staticmethod
    def _outcome(
        index: int,
        event: EmailEvent,
        writes: Writes,
        results: dict[tuple[int, str], tuple[Creation, OperationResult]],
    ) -> EventOutcome:
        created: dict[str, Creation] = {}
        for write in writes.writes:
            kind, result = results[(index, write.role)]
            if kind in (Creation.MISSING_REFERENCE, Creation.REFUSED):
                return EventOutcome(event, problem=kind, reason=_reason(event, write, kind, result))
            created[write.role] = kind
        return EventOutcome(event, activity=created.get("activity"), task=created.get("task"))


def _reason(event: EmailEvent, write: Write, kind: Creation, result: OperationResult) -> str:
    code = f" [{result.code}]" if result.code else ""
    if kind is Creation.MISSING_REFERENCE:
        return (f"event {event.key}: no Dynamics contact has its externalId (yet): {result.status}{code} writing its "
                f"{write.role} ({write.entity_set}); retried on later runs")  # fmt: skip
    # Dataverse's message may quote a value: the status and code say enough.
    return f"event {event.key}: Dataverse refused its {write.role} ({write.entity_set}): {result.status}{code}"

"""Applies a batch of records in parallel: one place for "apply, dead-letter or resolve, learn, count".

Every flow hands it records with ids and a function that applies one record and says what happened.
- A record that fails on its own account (RecordError, or an ApiError classified RECORD_ERROR) goes to
  the dead-letter table with its reason and the others go on.
- Anything else (a 403, a 5xx after its retries, an expired lease, the budget running out) is not the
  record's fault: no further record is started, records not yet started are dropped, the ones in
  flight finish, what finished is kept (learned and counted), and the error is raised so the run stops
  and the batch is done again next time (idempotently).
- What the flow's own state must learn from the finished records (its index, say) is handed to
  `learn` once, in bulk; only after that are the dead letters of records that now succeeded resolved.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from shared.core.errors import RecordError
from shared.flows.counts import Count
from shared.flows.runner import OutOfTime, RunContext
from shared.http import ApiError, Outcome
from shared.state.deadletters import DeadLetterStore

log = logging.getLogger("sync.executor")

# In isolation, this many records failing in a row with server errors is an outage, not poison records.
OUTAGE_AFTER = 3

T = TypeVar("T")  # what the flow applies: a row, a delete, an event...
E = TypeVar("E")  # what the flow's state learns from a finished record


@dataclasses.dataclass(frozen=True)
class Applied(Generic[E]):
    """What happened to one record (a count name) and what the flow's state must learn from it."""

    count: str
    effect: E | None = None


@dataclasses.dataclass(frozen=True)
class Done(Generic[E]):
    record_id: str
    applied: Applied[E]


class _NotStarted:
    """A record the executor dropped because an earlier error stopped the batch."""


_NOT_STARTED = _NotStarted()


def record_failure(error: BaseException) -> str | None:
    """The dead-letter reason when `error` is the record's own fault, None when it is not."""
    if isinstance(error, RecordError):
        return str(error)
    if isinstance(error, ApiError) and error.outcome is Outcome.RECORD_ERROR:
        return error.describe()
    return None


class RecordExecutor:
    """Bounded parallelism over one batch; see the module doc for what it guarantees."""

    def __init__(
        self, flow: str, scope: str, dead_letters: DeadLetterStore, ctx: RunContext, *, max_parallel: int = 8
    ) -> None:
        self.flow = flow
        self.scope = scope
        self.dead_letters = dead_letters
        self.ctx = ctx
        self.max_parallel = max(1, max_parallel)

    def run(
        self,
        records: Sequence[tuple[str, T]],
        apply: Callable[[str, T], Applied[E]],
        *,
        learn: Callable[[list[Done[E]]], None] | None = None,
        count: Callable[[str], str] = str,
        failed_count: str = Count.DEAD_LETTERED,
        succeeded_count: str | None = None,
        known_letters: Iterable[str] | None = None,
        isolate: bool = False,
    ) -> collections.Counter[str]:
        """Apply every record; returns the counts (also added to ctx.counts).

        `count` renames a result (e.g. deleted -> deleted_after_resync); `succeeded_count` is counted too
        for each success (dead-letter retries); `known_letters` are the ids with an open dead letter when
        the caller already knows them (else they are looked up for these ids); `isolate` applies the records
        one by one and dead-letters a record that fails alone with a server error (see _isolated)."""
        counts: collections.Counter[str] = collections.Counter()
        if not records:
            return counts
        open_letters = (
            set(known_letters)
            if known_letters is not None
            else self.dead_letters.open_among(self.flow, self.scope, [record_id for record_id, _ in records])
        )
        done: list[Done[E]] = []
        error: BaseException | None = None

        stop = threading.Event()  # set by the first error that is not a record's: nothing starts after it

        def one(record_id: str, item: T) -> Applied[E] | _NotStarted | None:
            if stop.is_set():
                return _NOT_STARTED
            try:
                if self.ctx.out_of_time():
                    raise OutOfTime()
                return apply(record_id, item)
            except (RecordError, ApiError) as exc:
                reason = record_failure(exc)
                if reason is None:
                    if not isolate:
                        stop.set()
                    raise
                if not self.ctx.dry_run:
                    self.dead_letters.record(self.flow, self.scope, record_id, reason)
                return None
            except BaseException:
                stop.set()
                raise

        if isolate:
            try:
                self._isolated(records, one, done, counts, failed_count)
            except BaseException as exc:  # an outage: keep what finished, as in parallel
                error = exc
            return self._finish(done, counts, open_letters, learn, count, succeeded_count, error)
        # Each worker takes its next record itself: no hand-off through a coordinating thread per record, which
        # under a busy GIL costs a wake-up (and a wait) between one record's end and the next one's start.
        pending = iter(records)
        taking = threading.Lock()
        keeping = threading.Lock()
        errors: list[BaseException] = []

        def work() -> None:
            while not stop.is_set():
                with taking:
                    entry = next(pending, None)
                if entry is None:
                    return
                record_id, item = entry
                try:
                    applied = one(record_id, item)
                except BaseException as exc:  # not the record's fault: start nothing more, keep what finished
                    with keeping:
                        errors.append(exc)
                    return
                with keeping:
                    if applied is None:
                        counts[failed_count] += 1
                    elif isinstance(applied, Applied):
                        done.append(Done(record_id, applied))

        workers = [threading.Thread(target=work, name=f"{self.flow}-writer-{n}", daemon=True)
                   for n in range(min(self.max_parallel, len(records)))]  # fmt: skip
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        error = errors[0] if errors else None
        return self._finish(done, counts, open_letters, learn, count, succeeded_count, error)

    def _finish(
        self,
        done: list[Done[E]],
        counts: collections.Counter[str],
        open_letters: set[str],
        learn: Callable[[list[Done[E]]], None] | None,
        count: Callable[[str], str],
        succeeded_count: str | None,
        error: BaseException | None,
    ) -> collections.Counter[str]:
        for item in done:
            counts[count(item.applied.count)] += 1
            if succeeded_count:
                counts[succeeded_count] += 1
        if learn is not None and done and not self.ctx.dry_run:
            learn(done)
        if not self.ctx.dry_run:
            for item in done:
                if item.record_id in open_letters:
                    self.dead_letters.resolve(self.flow, self.scope, item.record_id)
        self.ctx.counts.update(counts)
        if error is not None:
            raise error
        return counts

    def _isolated(
        self,
        records: Sequence[tuple[str, T]],
        one: Callable[[str, T], Any],
        done: list[Done[E]],
        counts: collections.Counter[str],
        failed_count: str,
    ) -> None:
        """One record at a time, for a batch that failed several runs in a row: a record failing with a
        server error while its neighbours go through is poison, and is dead-lettered so the rest moves on.
        Several in a row failing is an outage: stop, and dead-letter none of them."""
        suspects: list[tuple[str, ApiError]] = []
        in_a_row = 0
        for record_id, item in records:
            try:
                applied = one(record_id, item)
            except ApiError as exc:
                if exc.outcome is not Outcome.RETRY:
                    raise
                suspects.append((record_id, exc))
                in_a_row += 1
                if in_a_row >= OUTAGE_AFTER:
                    raise
                continue
            in_a_row = 0
            if applied is None:
                counts[failed_count] += 1
            else:
                assert isinstance(applied, Applied), "in isolation every record is applied"
                done.append(Done(record_id, applied))
        if suspects and not done:
            raise suspects[-1][1]  # nothing went through: not the records' fault
        for record_id, error in suspects:
            log.warning("executor.poison_record flow=%s scope=%s record=%s", self.flow, self.scope, record_id)
            if not self.ctx.dry_run:
                reason = f"fails alone while the rest of its batch goes through: {error.describe()}"
                self.dead_letters.record(self.flow, self.scope, record_id, reason)
            counts[failed_count] += 1

"""Applies records in parallel: one place for "apply, dead-letter or resolve, learn, count".

Every flow hands it records with ids (a batch, or batches one after the other) and a function that applies
one record and says what happened.
- A record that fails on its own account (RecordError, or an ApiError classified RECORD_ERROR) goes to
  the dead-letter table with its reason and the others go on.
- Anything else (a 403, a 5xx after its retries, an expired lease, the budget running out) is not the
  record's fault: no further record is started, records not yet started are dropped, the ones in
  flight finish, what finished is kept (learned and counted), and the error is raised so the run stops
  and the batch is done again next time (idempotently).
- What the flow's own state must learn from the finished records (its index, say) is handed to
  `learn` once per batch, in bulk; only after that are the dead letters of records that now succeeded
  resolved.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
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


@dataclasses.dataclass(frozen=True)
class Batch(Generic[T, E]):
    """Records applied with one function (a chunk, with what was read ahead for it). `open_letters`: the ids
    among them with an open dead letter when the caller already knows them, else they are looked up. `learn`:
    what learns from this batch's records, when not the run's own `learn`."""

    records: Sequence[tuple[str, T]]
    apply: Callable[[str, T], Applied[E]]
    open_letters: Iterable[str] | None = None
    learn: Callable[[list[Done[E]]], None] | None = None


class _Progress(Generic[T, E]):
    """One batch being applied: its records still to hand out, what finished, how many are still out."""

    def __init__(self, batch: Batch[T, E], open_letters: set[str]) -> None:
        self.batch = batch
        self.open_letters = open_letters
        self.pending = iter(batch.records)
        self.remaining = len(batch.records)  # records not yet back (dropped ones never come back)
        self.done: list[Done[E]] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.finished = False


class RecordExecutor:
    """Bounded parallelism over batches of records; see the module doc for what it guarantees."""

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
        if not records:
            return collections.Counter()
        return self.run_batches([Batch(records, apply, known_letters)], learn=learn, count=count,
                                failed_count=failed_count, succeeded_count=succeeded_count, isolate=isolate,
                                workers=min(self.max_parallel, len(records)))  # fmt: skip

    def run_batches(
        self,
        batches: Iterable[Batch[T, E]],
        *,
        learn: Callable[[list[Done[E]]], None] | None = None,
        count: Callable[[str], str] = str,
        failed_count: str = Count.DEAD_LETTERED,
        succeeded_count: str | None = None,
        isolate: bool = False,
        workers: int | None = None,
    ) -> collections.Counter[str]:
        """run() over batches taken one after the other from `batches` (which may read each one ahead).

        The workers go from one batch to the next without waiting for a batch's last records: no slot idles
        at a boundary. Each batch is finished (learned, its dead letters resolved, counted) once its last
        record is back, by the worker that brought it back; after an error, what finished of every batch
        started is finished the same way before the error is raised."""
        total: collections.Counter[str] = collections.Counter()
        stop = threading.Event()  # set by the first error that is not a record's: nothing starts after it
        finishing = threading.Lock()  # one batch finished at a time (learn, dead letters, counts)

        def finish(progress: _Progress[T, E]) -> None:
            with finishing:
                if progress.finished:
                    return
                progress.finished = True
                counts = self._finish(progress.done, progress.counts, progress.open_letters,
                                      progress.batch.learn or learn, count, succeeded_count)  # fmt: skip
                total.update(counts)
                progress.done = []

        def one(apply: Callable[[str, T], Applied[E]], record_id: str, item: T) -> Applied[E] | _NotStarted | None:
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
            for batch in batches:
                if not batch.records:
                    continue
                progress = _Progress(batch, self._open_letters(batch))
                error: BaseException | None = None
                try:
                    self._isolated(batch.records, functools.partial(one, batch.apply), progress.done,
                                   progress.counts, failed_count)  # fmt: skip
                except BaseException as exc:  # an outage: keep what finished, as in parallel
                    error = exc
                finish(progress)
                if error is not None:
                    raise error
            return total

        # Each worker takes its next record itself: no hand-off through a coordinating thread per record, which
        # under a busy GIL costs a wake-up (and a wait) between one record's end and the next one's start.
        source = iter(batches)
        taking = threading.Lock()  # the feed: the next record, or the next batch once this one is handed out
        keeping = threading.Lock()
        started: list[_Progress[T, E]] = []
        errors: list[BaseException] = []

        def take() -> tuple[_Progress[T, E], tuple[str, T]] | None:
            while not stop.is_set():
                if started:
                    entry = next(started[-1].pending, None)
                    if entry is not None:
                        return started[-1], entry
                batch = next(source, None)
                if batch is None:
                    return None
                if batch.records:
                    started.append(_Progress(batch, self._open_letters(batch)))
            return None

        def work() -> None:
            while not stop.is_set():
                try:
                    with taking:
                        taken = take()
                except BaseException as exc:  # reading a batch ahead failed: start nothing more
                    stop.set()
                    with keeping:
                        errors.append(exc)
                    return
                if taken is None:
                    return
                progress, (record_id, item) = taken
                try:
                    applied = one(progress.batch.apply, record_id, item)
                except BaseException as exc:  # not the record's fault: start nothing more, keep what finished
                    with keeping:
                        errors.append(exc)
                    return
                with keeping:
                    if applied is None:
                        progress.counts[failed_count] += 1
                    elif isinstance(applied, Applied):
                        progress.done.append(Done(record_id, applied))
                    progress.remaining -= 1
                    complete = progress.remaining == 0
                if complete:
                    try:
                        finish(progress)
                    except BaseException as exc:  # learning failed: the run stops, the page is read again
                        stop.set()
                        with keeping:
                            errors.append(exc)
                        return

        threads = [threading.Thread(target=work, name=f"{self.flow}-writer-{n}", daemon=True)
                   for n in range(workers or self.max_parallel)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for progress in started:  # batches cut short by an error: what finished is kept
            try:
                finish(progress)
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return total

    def _open_letters(self, batch: Batch[T, E]) -> set[str]:
        if batch.open_letters is not None:
            return set(batch.open_letters)
        return self.dead_letters.open_among(self.flow, self.scope, [record_id for record_id, _ in batch.records])

    def _finish(
        self,
        done: list[Done[E]],
        counts: collections.Counter[str],
        open_letters: set[str],
        learn: Callable[[list[Done[E]]], None] | None,
        count: Callable[[str], str],
        succeeded_count: str | None,
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

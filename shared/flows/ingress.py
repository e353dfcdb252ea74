"""Ingress: Dynamics rows become Campaign profiles and custom resources.

Per table, each run: check the mapping against both instances -> give dead letters another go -> read
pages of changes (every row on the first run or a replay, then increments from the stored delta link)
-> decide per record (filters, shape, unchanged?) -> write to Campaign -> learn in the index -> commit
the page. A page is committed only after every record of it is written or dead-lettered, so a run cut
anywhere repeats at most one page, and the repeat is idempotent: the index and the payload hashes turn
re-sent records into no-ops, and Campaign's upsert-by-key (a lookup before any POST) turns a lost index
entry into a PATCH instead of a duplicate.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.clients.campaign import PROFILE_AND_SERVICES_EXT, CampaignClient, KeyFilter
from shared.clients.dataverse import ChangeTrackingExpired, DataverseClient
from shared.config.model import InitialLoad, SyncConfig, TableMapping
from shared.core.decisions import Decision, Remove, Skip, Write, decide_change, decide_delete
from shared.core.errors import RecordError
from shared.core.initial_path import choose_initial_path, needs_count
from shared.core.shape import TableShape
from shared.flows.change_feed import ChangeFeed, ChangeFeedCursor, FeedPage
from shared.flows.counts import AFTER_RESYNC, Count
from shared.flows.definition import Check, FlowDefinition
from shared.flows.executor import Applied, Batch, Done, RecordExecutor
from shared.flows.initial_transfer_cursor import FAILED, TransferCursor, request_transfer
from shared.flows.initial_transfer_cursor import FLOW as TRANSFER_FLOW
from shared.flows.optout_ingress import POSITION_COLUMNS, IngressOptOuts, Pending, ingress_hook
from shared.flows.pipeline import Background, chunks, prefetched
from shared.flows.runner import FlowBody, RunContext
from shared.flows.table_shape import MappingMismatch, resolve_shape
from shared.http import ApiError, Outcome
from shared.state.checkpoints import Checkpoint, CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.index import IndexEntry, RecordIndex
from shared.state.optout_applied import AppliedRecord

if TYPE_CHECKING:
    from shared.wiring import Services

log = logging.getLogger("sync.ingress")

FLOW = "ingress"
SWEEP_CHUNK = 500
CHUNK = 500  # records of a page written while the next chunk's index entries are read
EDGE_CHUNK = 64  # a page's first and last chunks: writes start sooner, and less is learned after the last
PAGES_AHEAD = 1  # the next page is read while one is written: no pause for Dataverse at a page boundary
# Table Storage calls at once for what is read ahead of a chunk and learnt after it, once writing has begun,
# per Campaign writer: a chunk needs about one Table call per four records (queries of 14 ids, transactions),
# so a quarter of the writers' parallelism keeps ahead of them. More only bunches the connector's CPU into
# bursts that hold up the Campaign calls' answers (bench ingress at parallelism 8: 2 Table calls at once gave
# 0.79 of the bound, 8 gave 0.77). Where the writers wait for the Table calls they get the full parallelism
# (see `pacing`), and so does whatever is still to learn once a page's writes are done.
STATE_CALLS_PER_WRITER = 0.25
ISOLATE_AFTER_RUNS = 3  # a page failing this many runs in a row is retried record by record


IngressConfigError = MappingMismatch  # the mapping does not fit the instances: nothing is written


@dataclasses.dataclass
class IngressDeps:
    dataverse: DataverseClient
    campaign: CampaignClient
    checkpoints: CheckpointStore
    index: RecordIndex
    dead_letters: DeadLetterStore
    max_parallel: int = 8
    dead_letter_max_attempts: int = 5
    clock: Callable[[], float] = time.time
    initial_transfer_threshold: int = 500_000  # above it, a first load or a replay goes by file
    sftp_configured: bool = False  # the file path needs the SFTP settings
    optout_hook: Callable[[TableMapping], IngressOptOuts | None] | None = None  # the opt-out safety net


def tables_to_sync(config: SyncConfig, *, contacts: bool | None = None) -> list[TableMapping]:
    """Enabled mappings, contacts first (custom tables may link to profiles); `contacts` selects one kind."""
    tables = [t for t in config.tables if t.enabled and (contacts is None or t.is_profile == contacts)]
    return sorted(tables, key=lambda t: not t.is_profile)


def ingress_deps(services: Services) -> IngressDeps:
    return IngressDeps(
        dataverse=services.dataverse,
        campaign=services.campaign,
        checkpoints=CheckpointStore(services.state.table("checkpoints")),
        index=RecordIndex(services.state.table("index")),
        dead_letters=DeadLetterStore(services.state.table("deadletters")),
        max_parallel=services.settings.campaign.max_parallel,
        dead_letter_max_attempts=services.settings.run.dead_letter_max_attempts,
        initial_transfer_threshold=services.settings.run.initial_transfer_threshold,
        sftp_configured=services.settings.sftp is not None,
        optout_hook=lambda table: ingress_hook(services, table),
    )


def _bodies(services: Services, scopes: Sequence[str]) -> list[tuple[str, FlowBody]]:
    deps = ingress_deps(services)
    return [(name, ingress_body(services.config.table(name), deps)) for name in scopes]


def _preflight(services: Services, scopes: Sequence[str]) -> list[Check]:
    """Each table's mapping against both live instances: change tracking, columns and their types,
    Campaign targets, key and lookup filter (what a run checks before writing)."""
    deps = ingress_deps(services)
    checks = []
    for name in scopes:
        table = services.config.table(name)
        subject = f"table '{name}' ({table.entity} -> {table.resource})"
        try:
            resolve_shape(table, deps.dataverse, deps.campaign)
        except IngressConfigError as exc:
            checks.append(Check(subject, tuple(str(exc).split("; "))))
        except ApiError as exc:
            checks.append(Check(subject, (exc.describe(),)))
        else:
            checks.append(Check(subject))
    return checks


def _backlog(services: Services, scope: str) -> str:
    cursor = CheckpointStore(services.state.table("checkpoints")).load(FLOW, scope, ChangeFeedCursor).cursor
    table = services.config.table(scope)
    if cursor.full_read:
        total = services.dataverse.total_record_count([table.entity]).get(table.entity)
        return f"full read at page {cursor.pages}; the table has ~{total} rows (24 h snapshot)"
    assert cursor.delta_link is not None
    try:
        pending = services.dataverse.pending_changes(table.entity_set, table.source_attributes(), cursor.delta_link)
    except ChangeTrackingExpired:
        return "delta token expired: the next run reads the whole table"
    return "changes waiting" if pending else "up to date"


INGRESS = FlowDefinition(
    name=FLOW,
    description="Dynamics tables -> Campaign profiles and custom resources (change tracking)",
    cursor_type=ChangeFeedCursor,
    scopes=lambda config: [t.name for t in tables_to_sync(config)],
    bodies=_bodies,
    blueprint="shared.entrypoints.ingress",
    preflight=_preflight,
    backlog=_backlog,
)


def ingress_body(table: TableMapping, deps: IngressDeps) -> FlowBody:
    """The runner's flow body for one table."""

    def body(ctx: RunContext) -> bool:
        hook = deps.optout_hook(table) if deps.optout_hook else None
        checkpoint = deps.checkpoints.load(FLOW, table.name, ChangeFeedCursor)
        ctx.cursor_from = ctx.cursor_to = checkpoint.cursor.describe()
        if checkpoint.cursor.waiting_for_file and not checkpoint.reset_requested:
            return wait_for_file_transfer(table, deps, checkpoint, ctx)
        # With the opt-out safety net, opt-outs go through the newest-applied record (shared/flows/optout_ingress.py).
        shape = resolve_shape(table, deps.dataverse, deps.campaign,
                              hash_exclude=hook.hash_excluded if hook else frozenset())  # fmt: skip

        def save() -> None:
            if not ctx.dry_run:
                deps.checkpoints.save(checkpoint)

        if checkpoint.reset_requested:
            # Before the dead letters are retried, so that a replay writes each record once.
            checkpoint.begin_replay()
            checkpoint.cursor.start_full_read(sweep_epoch=int(deps.clock()), choose_path=True)
            save()
            ctx.note("replay requested: full read, every record written again")
        if checkpoint.cursor.path_due and hand_to_file_path(table, deps, checkpoint, ctx, save):
            return True  # the initial transfer loads the table and hands it back
        sync = TableSync(table, deps, shape, checkpoint, ctx, hook)
        sync.retry_dead_letters()
        feed = ChangeFeed(deps.dataverse, table.entity_set, sync.select, clock=deps.clock, prefetch=PAGES_AHEAD)
        for page in feed.pages(checkpoint.cursor, ctx, save=save, sweep=sync.sweep_unseen):
            position = checkpoint.cursor.position()
            isolate = checkpoint.runs_stuck_at(position) >= ISOLATE_AFTER_RUNS
            if isolate:
                ctx.note(f"page failed {checkpoint.stuck_runs} runs in a row: its records go one by one")
            try:
                checkpoint.add_counts(sync.apply_page(page, isolate=isolate))
            except ApiError as exc:
                if exc.outcome is Outcome.RETRY:  # a server error after its retries: poison record or outage
                    checkpoint.note_failure(position)
                    save()
                raise
            checkpoint.moved_on()
            checkpoint.last_outcome, checkpoint.last_run_at = ("completed" if page.last else "partial"), ctx.started_at
            if page.last:
                checkpoint.counters = {}  # counters are the totals of the read in progress
            page.commit()
        return True

    return body


# ----------------------------------------------------------------------------------------- initial-load path


def hand_to_file_path(
    table: TableMapping, deps: IngressDeps, checkpoint: Checkpoint[ChangeFeedCursor], ctx: RunContext,
    save: Callable[[], None],
) -> bool:  # fmt: skip
    """At the start of a first read or a replay: choose the path. True when the table went to the file path
    (the initial transfer loads it and hands back a delta link); False when this run reads it as usual."""
    # Counted for `auto`, and for a forced file load too: its progress is shown against the count.
    counted = deps.dataverse.total_record_count([table.entity])[table.entity] if may_go_by_file(table) else 0
    choice = choose_initial_path(table.initial_load, counted if needs_count(table.initial_load) else None,
                                 deps.initial_transfer_threshold)  # fmt: skip
    ctx.note(choice.note)
    if not choice.by_file:
        checkpoint.cursor.read_through_api()
        save()
        return False
    problems = []
    if table.initial_transfer is None:
        problems.append(
            "the mapping has no options.initialTransfer (the Campaign import workflow to signal: "
            '{"workflow": "<ID>", "signal": "signal1"}); add it, or set options.initialLoad to "api"'
        )
    if not deps.sftp_configured:
        problems.append("the SFTP settings are missing (SFTP_HOST, SFTP_USERNAME, SFTP_PRIVATE_KEY, SFTP_HOST_KEY)")
    if problems:
        raise IngressConfigError(f"table '{table.name}' goes by file, but " + "; and ".join(problems))
    if ctx.dry_run:
        ctx.note("dry run: the table would be handed to the initial transfer")
        return True
    # Our own cursor first: from now on this flow reads nothing of the table, whatever a later count says.
    checkpoint.cursor.load_by_file()
    checkpoint.last_outcome, checkpoint.last_run_at = "completed", ctx.started_at
    save()
    request_transfer(deps.checkpoints, table.name, checkpoint.generation, counted)
    ctx.counts[Count.HANDED_TO_FILE] += 1
    ctx.cursor_to = checkpoint.cursor.describe()
    return True


def may_go_by_file(table: TableMapping) -> bool:
    return table.initial_load is not InitialLoad.API


def wait_for_file_transfer(
    table: TableMapping, deps: IngressDeps, checkpoint: Checkpoint[ChangeFeedCursor], ctx: RunContext
) -> bool:
    """A tick of a table the initial transfer is loading: nothing to read; say how far the transfer is."""
    transfer = deps.checkpoints.load(TRANSFER_FLOW, table.name, TransferCursor).cursor
    if not transfer.serves(checkpoint.generation) and not ctx.dry_run:
        transfer = request_transfer(deps.checkpoints, table.name, checkpoint.generation, 0)  # a lost request
    ctx.counts[Count.WAITING_FOR_TRANSFER] += 1
    hint = (f": retry it with `python -m shared.cli transfer retry {table.name}`, or `replay ingress {table.name}`"
            if transfer.state == FAILED else "")  # fmt: skip
    ctx.note(f"loaded by file: waiting for the initial transfer ({transfer.describe()}){hint}")
    return True


# ----------------------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class IndexChange:
    """What the record index learns once a record is done."""

    put: IndexEntry | None = None
    delete: bool = False
    optout: Pending | None = None  # the record's opt-out decisions, saved with the page (opt-out safety net)


Change = Mapping[str, Any] | None  # a row, or None for a delete


class Known(NamedTuple):
    """What is read for a chunk while the one before it is written."""

    entries: Mapping[str, IndexEntry]
    optouts: Mapping[str, AppliedRecord]  # the newest-applied opt-out records (opt-out safety net)
    open_letters: set[str]  # the chunk's records with an open dead letter


class TableSync:
    """One table's run: decides per record, writes to Campaign, keeps the index in step."""

    def __init__(
        self, table: TableMapping, deps: IngressDeps, shape: TableShape, checkpoint: Checkpoint[ChangeFeedCursor],
        ctx: RunContext, hook: IngressOptOuts | None = None,
    ) -> None:  # fmt: skip
        self.table = table
        self.hook = hook
        self.select = (*table.source_attributes(), *(POSITION_COLUMNS if hook else ()))
        self.deps = deps
        self.shape = shape
        self.checkpoint = checkpoint
        self.ctx = ctx
        self.resource = deps.campaign.resource(table.resource, root=PROFILE_AND_SERVICES_EXT)
        self.key = KeyFilter(table.lookup_filter, table.lookup_parameter)
        self.executor = RecordExecutor(FLOW, table.name, deps.dead_letters, ctx, max_parallel=deps.max_parallel)
        self.state_parallel = max(2, math.ceil(deps.max_parallel * STATE_CALLS_PER_WRITER))
        self._writing = False  # a page's chunks are being written: the Table calls behind them go slower

    # -- the three ways records arrive

    def apply_page(self, page: FeedPage, *, isolate: bool = False) -> dict[str, int]:
        """Every change of a page; the index learns the page's writes in bulk, even if it stops half way."""
        changes: dict[str, Change] = {}  # one change per record: the last one wins
        rejected = 0
        for row in page.rows:
            try:
                changes[self.shape.record_key(row)] = row
            except RecordError as exc:  # no usable id: nothing to dead-letter it under, so count and log it
                rejected += 1
                log.warning("ingress.row_without_id table=%s reason=%s", self.table.name, exc)
        for record_id in page.deleted_ids:
            changes[record_id] = None
        # The index of the next chunk is read, and the index learns the last chunk, while a chunk is written.
        # On the first read of a table its records are new: nothing to read in the index (a page redone after a
        # crash is found in Campaign by its key, as any record without an index entry is: never created twice).
        first_load = page.full_read and not page.seen_epoch and self.checkpoint.generation == 0
        batched = chunks(list(changes.items()), CHUNK, edge=EDGE_CHUNK)
        paces = pacing([len(chunk) for chunk in batched], full=self.deps.max_parallel, behind=self.state_parallel,
                       tail=CHUNK)  # fmt: skip
        read_ahead = self._not_synced if first_load else self._known
        ahead = prefetched(list(zip(batched, paces, strict=True)), lambda item: read_ahead(item[0], item[1]))
        with Background() as background, contextlib.closing(ahead):

            def learner(pace: Pace) -> Callable[[list[Done[IndexChange]]], None]:
                return functools.partial(background.submit, functools.partial(self.learn, parallel=pace.learn))

            batches = (Batch(chunk, functools.partial(self._apply_known, known, full_read=page.full_read,
                                                      seen_epoch=page.seen_epoch), known.open_letters, learner(pace))
                       for (chunk, pace), known in ahead)  # fmt: skip
            self._writing = True
            try:
                counts = self.executor.run_batches(batches, isolate=isolate)
            finally:
                self._writing = False  # what is still to learn now holds up the page's commit
        # Counted once the page is through: a page that stops half way is read again next run.
        read: dict[str, int] = {Count.READ: len(page.rows) + len(page.deleted_ids)}
        if rejected:
            read[Count.REJECTED_WITHOUT_ID] = rejected
        self.ctx.counts.update(read)
        return {**read, **counts}

    def _apply_known(
        self, known: Known, record_id: str, change: Change, *, full_read: bool, seen_epoch: int
    ) -> Applied[IndexChange]:
        return self.apply(record_id, change, known.entries.get(record_id), full_read=full_read,
                          seen_epoch=seen_epoch, optout=known.optouts.get(record_id))  # fmt: skip

    def _not_synced(self, chunk: Sequence[tuple[str, Change]], pace: Pace) -> Known:
        letters = self._open_letters(chunk, pace.read)
        if self.hook is None:
            return Known({}, {}, letters)
        return Known({}, self.hook.prepare([record_id for record_id, change in chunk if change is not None],
                                           synced=(), parallel=pace.read), letters)  # fmt: skip

    def _known(self, chunk: Sequence[tuple[str, Change]], pace: Pace) -> Known:
        if pace.at_once:
            return self._known_at_once(chunk, pace.read)
        entries = self.deps.index.get_many(self.table.name, [record_id for record_id, _ in chunk], parallel=pace.read)
        letters = self._open_letters(chunk, pace.read)
        if self.hook is None:
            return Known(entries, {}, letters)
        rows = [record_id for record_id, change in chunk if change is not None]
        return Known(entries, self.hook.prepare(rows, synced=entries, parallel=pace.read), letters)

    def _known_at_once(self, chunk: Sequence[tuple[str, Change]], parallel: int) -> Known:
        """_known for a read nothing is written before: the dead letters and the opt-out records are read
        alongside the index, not after it (the opt-outs of every row, those of unsynced rows then dropped: a few
        queries more for new rows, none of the wait)."""
        hook = self.hook
        rows = [record_id for record_id, change in chunk if change is not None]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="first-read") as pool:
            letters = pool.submit(self._open_letters, chunk, parallel)
            optouts = pool.submit(hook.read, rows, parallel=parallel) if hook is not None else None
            entries = self.deps.index.get_many(self.table.name, [record_id for record_id, _ in chunk],
                                               parallel=parallel)  # fmt: skip
            prepared = hook.prepare(rows, synced=entries, read=optouts.result()) if hook and optouts else {}
            return Known(entries, prepared, letters.result())

    def _open_letters(self, chunk: Sequence[tuple[str, Change]], parallel: int) -> set[str]:
        return self.deps.dead_letters.open_among(FLOW, self.table.name, [record_id for record_id, _ in chunk],
                                                 parallel=parallel)  # fmt: skip

    def retry_dead_letters(self) -> None:
        """Failed records get another go with their current Dynamics state, up to the attempt limit."""
        due = self.deps.dead_letters.due(FLOW, self.table.name, self.deps.dead_letter_max_attempts)
        if not due:
            return
        self.ctx.check_time()
        ids = [letter.record_id for letter in due]
        known = self.deps.index.get_many(self.table.name, ids, parallel=self.deps.max_parallel)
        select = list(self.select)

        def retry(record_id: str, _: None) -> Applied[IndexChange]:
            row = self.deps.dataverse.retrieve(self.table.entity_set, record_id, select)  # gone: a delete
            return self.apply(record_id, row, known.get(record_id), full_read=True)

        self.executor.run([(i, None) for i in ids], retry, learn=self.learn, known_letters=ids,
                          failed_count=Count.DEAD_LETTER_RETRIES_FAILED,
                          succeeded_count=Count.DEAD_LETTER_RETRIES_OK)  # fmt: skip

    def sweep_unseen(self, epoch: int) -> None:
        """After a full read that replaced a delta link: synced records it never met were deleted in Dynamics."""
        unseen: Iterator[IndexEntry] = (e for e in self.deps.index.iter_table(self.table.name) if e.seen_epoch != epoch)
        while chunk := list(itertools.islice(unseen, SWEEP_CHUNK)):
            self.ctx.check_time()  # the sweep is idempotent: the next run starts it again
            self.executor.run(
                [(entry.record_id, entry) for entry in chunk],
                lambda record_id, entry: self.apply(record_id, None, entry, full_read=True),
                learn=self.learn,
                count=lambda name: AFTER_RESYNC.get(name, name),
            )

    # -- one record

    def apply(
        self, record_id: str, change: Change, known: IndexEntry | None, *, full_read: bool, seen_epoch: int = 0,
        optout: AppliedRecord | None = None,
    ) -> Applied[IndexChange]:  # fmt: skip
        pending = None
        if change is None:
            decision = decide_delete(known, apply_deletes=self.table.apply_deletes)
        else:
            decision = decide_change(change, known, shape=self.shape, generation=self.checkpoint.generation,
                                     full_read=full_read)  # fmt: skip
            if self.hook is not None:
                decision, pending = self.hook.adjust(record_id, change, decision, known, optout)
        applied = self.act(record_id, decision, known)
        if pending is not None:
            effect = applied.effect or IndexChange()
            pending.href = effect.put.href if effect.put else (known.href if known else None)
            applied = dataclasses.replace(applied, effect=dataclasses.replace(effect, optout=pending))
        return mark_seen(applied, known, seen_epoch) if seen_epoch else applied

    def act(self, record_id: str, decision: Decision, known: IndexEntry | None) -> Applied[IndexChange]:
        """The one place ingress writes to Campaign (or, in a dry run, says what it would write)."""
        if isinstance(decision, Skip):
            return Applied(decision.count)
        if isinstance(decision, Remove):
            if self.ctx.dry_run:
                return Applied(decision.count)
            if not self.resource.delete_by_key(self.key, record_id, href=decision.href):
                return Applied(Count.DELETES_UNKNOWN, IndexChange(delete=known is not None))
            return Applied(decision.count, IndexChange(delete=True))
        assert isinstance(decision, Write)
        if self.ctx.dry_run:
            exists = decision.href is not None or self.resource.find_href(self.key, record_id) is not None
            return Applied(Count.UPDATED if exists else Count.CREATED)
        written = self.resource.upsert_by_key(self.key, record_id, decision.payload, href=decision.href)
        entry = IndexEntry(self.table.name, record_id, written.href, hash_full=decision.hash_full,
                           hash_updates=decision.hash_updates, generation=self.checkpoint.generation)  # fmt: skip
        return Applied(Count.CREATED if written.created else Count.UPDATED, IndexChange(put=entry))

    def learn(self, done: list[Done[IndexChange]], *, parallel: int | None = None) -> None:
        """What the index and the opt-out records learn from finished records; `parallel` applies while the
        page's writes go on (the full parallelism otherwise)."""
        parallel = parallel if parallel is not None and self._writing else self.deps.max_parallel
        self.deps.index.put_many((d.applied.effect.put for d in done if d.applied.effect and d.applied.effect.put),
                                 parallel=parallel)  # fmt: skip
        for d in done:
            if d.applied.effect is not None and d.applied.effect.delete:
                self.deps.index.delete(self.table.name, d.record_id)
        if self.hook is not None:
            self.hook.learn([d.applied.effect.optout for d in done if d.applied.effect and d.applied.effect.optout],
                            parallel=parallel)  # fmt: skip


class Pace(NamedTuple):
    read: int  # Table calls at once for what is read ahead of a chunk
    learn: int  # and for what is learnt from it while the page's writes go on
    at_once: bool = False  # the writers wait for the whole read: its parts go at once, not one after the other


def pacing(sizes: Sequence[int], *, full: int, behind: int, tail: int) -> list[Pace]:
    """Per chunk of a page (their sizes in order): `full` where the writers wait for the Table calls, `behind`
    where the calls only have to keep ahead of them. The writers wait for the first chunk's read (all of it:
    nothing is written before it), and for the second's (read while the small first one is written); the
    page's commit waits for the learning of the chunks that end in its last `tail` records."""
    paces = []
    remaining = sum(sizes)
    for position, size in enumerate(sizes):
        remaining -= size
        paces.append(Pace(full if position < 2 else behind, full if remaining < tail else behind, position == 0))
    return paces


def mark_seen(applied: Applied[IndexChange], known: IndexEntry | None, epoch: int) -> Applied[IndexChange]:
    """During a full read that needs a sweep, every synced record it meets is marked, written or not."""
    effect = applied.effect
    if effect is not None and effect.put is not None:
        seen = dataclasses.replace(effect.put, seen_epoch=epoch)
        return dataclasses.replace(applied, effect=dataclasses.replace(effect, put=seen))
    if known is not None and not (effect is not None and effect.delete):
        optout = effect.optout if effect is not None else None
        return dataclasses.replace(
            applied, effect=IndexChange(put=dataclasses.replace(known, seen_epoch=epoch), optout=optout)
        )
    return applied

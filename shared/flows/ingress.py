"""Ingress: Dynamics rows become Campaign profiles and custom resources.

Per table, each run: read a page of changes (the whole table on the first run or a replay, then only
increments from the stored delta link) -> keep what passes the filters -> shape the payloads -> write
them -> checkpoint. A page is checkpointed only after every record of it is written or dead-lettered,
so a run cut anywhere repeats at most one page, and the repeat is idempotent: the record index and
the payload hashes turn re-sent records into no-ops, and a lookup by the custom key before any POST
turns a lost index entry into a PATCH instead of a duplicate.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from shared.clients.campaign import CampaignClient, CampaignConfigError, ResourceClient, is_duplicate_key
from shared.clients.dataverse import ChangeTrackingExpired, DataverseClient, Page
from shared.config.model import PicklistMode, SyncConfig, TableMapping
from shared.core.errors import RecordError
from shared.core.filters import passes
from shared.core.projection import payload_hash, project, record_key
from shared.flows.runner import FlowBody, OutOfTime, RunContext
from shared.http import ApiError, Outcome, TransportError
from shared.state.checkpoints import INCREMENTAL, INITIAL, Checkpoint, CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.index import IndexEntry, RecordIndex

log = logging.getLogger("sync.ingress")

FLOW = "ingress"
CAMPAIGN_ROOT = "profileAndServicesExt"  # extended fields and custom key filters live here


class IngressConfigError(Exception):
    """The mapping does not fit the Dynamics or Campaign instance: nothing is written."""


@dataclasses.dataclass(frozen=True)
class TableTypes:
    """Source and target types and picklist labels, read from both instances once per run."""

    source: Mapping[str, str]
    target: Mapping[str, str]
    labels: Mapping[str, Mapping[int, str]]
    renames: Mapping[str, str] = dataclasses.field(default_factory=dict)  # configured -> instance attribute


@dataclasses.dataclass
class IngressDeps:
    dataverse: DataverseClient
    campaign: CampaignClient
    checkpoints: CheckpointStore
    index: RecordIndex
    dead_letters: DeadLetterStore
    max_parallel: int = 8
    dead_letter_max_attempts: int = 5


def ingress_body(table: TableMapping, deps: IngressDeps) -> FlowBody:
    """The runner's flow body for one table."""

    def body(ctx: RunContext) -> bool:
        types = resolve_types(table, deps)
        checkpoint = deps.checkpoints.load(FLOW, table.name)
        writer = RecordWriter(table, deps, types, generation=checkpoint.generation)
        retry_dead_letters(table, deps, writer, ctx)
        return sync_changes(table, deps, writer, checkpoint, ctx)

    return body


# ----------------------------------------------------------------------------------------- metadata


def resolve_types(table: TableMapping, deps: IngressDeps) -> TableTypes:
    """Check the mapping against both instances before any write; every problem is reported at once."""
    problems: list[str] = []
    definition = deps.dataverse.require_change_tracking(table.entity)  # names the table and how to enable it
    source: dict[str, str] = {}
    for name in table.source_attributes():
        declared = next((f.source_type for f in table.fields if f.source == name and f.source_type), None)
        actual = definition.attributes.get(_attribute_name(name))
        if actual is None:
            problems.append(f"Dataverse table '{table.entity}' has no column '{name}'")
            continue
        source[name] = declared or actual
    labels: dict[str, dict[int, str]] = {}
    if table.picklists is PicklistMode.LABEL:
        for name, kind in source.items():
            if kind in ("Picklist", "State", "Status"):
                labels[name] = dict(deps.dataverse.picklist_labels(table.entity, name))
    try:
        resource_type = deps.campaign.resource_type(table.resource, root=CAMPAIGN_ROOT)
    except ApiError as exc:
        if exc.outcome is not Outcome.RECORD_ERROR:
            raise  # unreachable or throttled: not a mapping problem
        raise IngressConfigError(f"Campaign resource '{table.resource}' cannot be read: {exc.describe()}") from exc
    # Unknown, read-only and type-mismatched targets; opt-out fields resolved to the instance's
    # spelling (denyList* or blackList*), whichever the configuration used.
    expected: dict[str, str | None] = {field.target: field.target_type for field in table.fields}
    expected[table.key_attribute] = None
    try:
        instance_names = deps.campaign.validate_targets(table.resource, expected, root=CAMPAIGN_ROOT)
    except CampaignConfigError as exc:
        problems.extend(f"Campaign resource '{table.resource}': {problem}" for problem in exc.problems)
        instance_names = {}
    technical = resource_type.res_types  # long, double, ...: what conversion speaks
    target = {
        field.target: field.target_type or technical[instance_names[field.target]]
        for field in table.fields
        if field.target in instance_names
    }
    try:
        deps.campaign.validate_filter(table.resource, table.lookup_filter, table.lookup_parameter, root=CAMPAIGN_ROOT)
    except CampaignConfigError as exc:  # names the filter and what the instance has
        problems.append(str(exc))
    if problems:
        raise IngressConfigError(f"mapping '{table.name}' does not fit the instances: " + "; ".join(problems))
    renames = {configured: actual for configured, actual in instance_names.items() if configured != actual}
    return TableTypes(source=source, target=target, labels=labels, renames=renames)


def _attribute_name(column: str) -> str:
    """Web API rows carry a lookup `x` as `_x_value`; metadata names the attribute `x`."""
    if column.startswith("_") and column.endswith("_value"):
        return column[1:-6]
    return column


# ----------------------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class Applied:
    """What happened to one record, and what the index must learn once the page is done."""

    result: str  # a count name: created, updated, unchanged, deleted, filtered_out, ...
    index_put: IndexEntry | None = None
    index_delete: bool = False


class RecordWriter:
    """Applies one Dynamics row or delete to Campaign, given the record's index entry (or None)."""

    def __init__(self, table: TableMapping, deps: IngressDeps, types: TableTypes, *, generation: int) -> None:
        self.table = table
        self.deps = deps
        self.types = types
        self.generation = generation
        self.resource: ResourceClient = deps.campaign.resource(table.resource, root=CAMPAIGN_ROOT)

    def apply(
        self, record_id: str, row: Mapping[str, Any] | None, entry: IndexEntry | None, *, initial: bool
    ) -> Applied:
        """A changed row (upsert) or a deleted one (row None)."""
        return self.remove(record_id, entry) if row is None else self.upsert(row, entry, initial=initial)

    def upsert(self, row: Mapping[str, Any], entry: IndexEntry | None, *, initial: bool) -> Applied:
        record_id = record_key(row, self.table)
        if not passes(row, self.table.filters):
            if entry is not None and self.table.filters.delete_filtered_out:
                self.resource.delete(entry.href, missing_ok=True)
                return Applied("deleted_filtered_out", index_delete=True)
            return Applied("filtered_out")
        # New records and full reads carry every mapped field; increments only the apply-updates fields.
        current = entry if entry is not None and entry.generation == self.generation else None
        full = initial or current is None
        payload = self._project(row, full=full)
        updates_hash = payload_hash(self._project(row, full=False))
        full_hash = payload_hash(payload) if full else (current.hash_full if current else "")
        if current is not None:
            stored, now = (current.hash_full, full_hash) if full else (current.hash_updates, updates_hash)
            if stored == now:
                return Applied("unchanged")
        href, created = self._write(entry, record_id, payload)
        return Applied(
            "created" if created else "updated",
            index_put=IndexEntry(self.table.name, record_id, href, hash_full=full_hash, hash_updates=updates_hash,
                                 generation=self.generation),
        )  # fmt: skip

    def remove(self, record_id: str, entry: IndexEntry | None) -> Applied:
        """A Dynamics delete: removed in Campaign when the mapping applies deletes."""
        if not self.table.apply_deletes:
            return Applied("deletes_ignored")
        href = entry.href if entry else self._lookup(record_id)
        if href is None:
            return Applied("deletes_unknown", index_delete=entry is not None)
        self.resource.delete(href, missing_ok=True)
        return Applied("deleted", index_delete=True)

    def _project(self, row: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
        payload = project(row, self.table, full=full, source_types=self.types.source,
                          target_types=self.types.target, labels=self.types.labels)  # fmt: skip
        renames = self.types.renames
        return {renames.get(name, name): value for name, value in payload.items()} if renames else payload

    def _write(self, entry: IndexEntry | None, record_id: str, payload: Mapping[str, Any]) -> tuple[str, bool]:
        if entry is not None:
            try:
                return self.resource.patch(entry.href, payload).href or entry.href, False
            except ApiError as exc:
                if exc.status != 404:
                    raise
                # The stored href went stale (record deleted or re-keyed in Campaign): resolve it again.
        # Campaign has no upsert: look the record up by its custom key first, so a write whose index
        # entry was lost (a run cut between the two) becomes a PATCH, never a duplicate.
        href = self._lookup(record_id)
        if href is not None:
            return self.resource.patch(href, payload).href or href, False
        try:
            return self.resource.create(payload).href, True
        except ApiError as exc:
            # The answer to our POST was lost (TransportError), or a resent POST met the record the first
            # one made (duplicate key): find what exists before writing again, never create twice.
            if not (isinstance(exc, TransportError) or is_duplicate_key(exc)):
                raise
        href = self._lookup(record_id)
        if href is not None:
            return self.resource.patch(href, payload).href or href, True
        return self.resource.create(payload).href, True

    def _lookup(self, record_id: str) -> str | None:
        found = self.resource.find_by(self.table.lookup_filter, self.table.lookup_parameter, record_id)
        return found[0].href if found else None


# ----------------------------------------------------------------------------------------- pages


def sync_changes(
    table: TableMapping, deps: IngressDeps, writer: RecordWriter, checkpoint: Checkpoint, ctx: RunContext
) -> bool:
    """Read pages from the stored position and write them; True once the read reached its delta link."""
    if checkpoint.reset_requested:
        checkpoint.start_full_read(replay=True, sweep_epoch=int(time.time()))
        writer.generation = checkpoint.generation
        deps.checkpoints.save(checkpoint)
        ctx.notes.append("replay requested: full read, every record written again")
    ctx.cursor_from = describe_cursor(checkpoint)
    ctx.cursor_to = ctx.cursor_from
    select = table.source_attributes()
    restarted = False
    while True:
        if checkpoint.sweep_epoch and checkpoint.phase == INCREMENTAL:
            sweep_unseen(writer, deps, checkpoint, ctx)
        link = checkpoint.next_link or (checkpoint.delta_link if checkpoint.phase == INCREMENTAL else None)
        try:
            for page in deps.dataverse.iter_changes(table.entity_set, select, link):
                if ctx.out_of_time():
                    return False
                counts = write_page(page, writer, deps, ctx, initial=checkpoint.phase == INITIAL,
                                    seen_epoch=checkpoint.sweep_epoch)  # fmt: skip
                ctx.counts.update(counts)
                checkpoint.add_counts(counts)
                checkpoint.pages += 1
                if page.delta_link:
                    checkpoint.phase, checkpoint.delta_link, checkpoint.next_link = INCREMENTAL, page.delta_link, None
                    checkpoint.pages, checkpoint.counters = 0, {}
                else:
                    checkpoint.next_link = page.next_link
                checkpoint.last_outcome = "completed" if page.delta_link else "partial"
                checkpoint.last_run_at = ctx.started_at
                deps.checkpoints.save(checkpoint)
                ctx.cursor_to = describe_cursor(checkpoint)
                ctx.heartbeat()
            if checkpoint.sweep_epoch:
                sweep_unseen(writer, deps, checkpoint, ctx)
            return True
        except ChangeTrackingExpired:
            if restarted:
                raise
            restarted = True
            log.warning(
                "ingress.resync table=%s reason=change-tracking token expired (0x80044352); full read", table.name
            )
            ctx.notes.append("delta token expired: full read started")
            ctx.counts["resyncs"] += 1
            # The full read reports no deletes: synced records it does not meet (deleted in Dynamics
            # during the gap) are swept once it ends.
            checkpoint.start_full_read(replay=False, sweep_epoch=int(time.time()))
            deps.checkpoints.save(checkpoint)


def write_page(
    page: Page, writer: RecordWriter, deps: IngressDeps, ctx: RunContext, *, initial: bool, seen_epoch: int = 0
) -> dict[str, int]:
    """Write every change of a page in parallel; per-record failures go to dead letters. The index
    learns the page's writes in bulk afterwards, even when the page stops half way."""
    table = writer.table
    changes: dict[str, Mapping[str, Any] | None] = {}  # one change per record: the last one wins
    counts: collections.Counter[str] = collections.Counter(read=len(page.rows) + len(page.deleted_ids))
    for row in page.rows:
        try:
            changes[record_key(row, table)] = row
        except RecordError as exc:  # no usable id: nothing to dead-letter it under, so count and log it
            counts["rejected_without_id"] += 1
            log.warning("ingress.row_without_id table=%s reason=%s", table.name, exc)
    for record_id in page.deleted_ids:
        changes[str(record_id).lower()] = None

    entries = deps.index.get_many(table.name, changes, parallel=deps.max_parallel)
    open_letters = {d.record_id for d in deps.dead_letters.entries(FLOW, table.name)}

    def apply(record_id: str, row: Mapping[str, Any] | None) -> Applied:
        if ctx.out_of_time():
            raise OutOfTime()
        entry = entries.get(record_id)
        try:
            applied = writer.apply(record_id, row, entry, initial=initial)
        except (RecordError, ApiError) as exc:
            dead_letter(deps, table, record_id, exc)
            return Applied("dead_lettered")
        if record_id in open_letters:
            deps.dead_letters.resolve(FLOW, table.name, record_id)
        return mark_seen(applied, entry, seen_epoch) if seen_epoch else applied

    done: list[tuple[str, Applied]] = []
    error: BaseException | None = None
    with concurrent.futures.ThreadPoolExecutor(max_workers=deps.max_parallel) as pool:
        futures = {pool.submit(apply, record_id, row): record_id for record_id, row in changes.items()}
        for future in concurrent.futures.as_completed(futures):
            try:
                done.append((futures[future], future.result()))
            except BaseException as exc:  # keep what the others did, then raise the first failure
                error = error or exc
    record_in_index(deps, table, done)
    counts.update(applied.result for _, applied in done)
    if error is not None:
        # What was done stays done (and counted); the page itself is read again next time.
        ctx.counts.update({k: v for k, v in counts.items() if k != "read"})
        raise error
    return dict(counts)


def mark_seen(applied: Applied, entry: IndexEntry | None, epoch: int) -> Applied:
    """During a resync read, every synced record it meets is marked, written or not."""
    if applied.index_put is not None:
        applied.index_put.seen_epoch = epoch
        return applied
    if entry is not None and not applied.index_delete:
        return dataclasses.replace(applied, index_put=dataclasses.replace(entry, seen_epoch=epoch))
    return applied


def sweep_unseen(writer: RecordWriter, deps: IngressDeps, checkpoint: Checkpoint, ctx: RunContext) -> None:
    """After a resync read: synced records it never met were deleted in Dynamics meanwhile."""
    table = writer.table
    for entry in deps.index.iter_table(table.name):
        if entry.seen_epoch == checkpoint.sweep_epoch:
            continue
        if ctx.out_of_time():
            raise OutOfTime()  # the sweep is idempotent: the next run starts it again
        try:
            applied = writer.remove(entry.record_id, entry)
        except ApiError as exc:
            dead_letter(deps, table, entry.record_id, exc)
            ctx.counts["dead_lettered"] += 1
            continue
        record_in_index(deps, table, [(entry.record_id, applied)])
        ctx.counts[f"{applied.result}_after_resync"] += 1
    checkpoint.sweep_epoch = 0
    deps.checkpoints.save(checkpoint)


def record_in_index(deps: IngressDeps, table: TableMapping, done: list[tuple[str, Applied]]) -> None:
    deps.index.put_many(applied.index_put for _, applied in done if applied.index_put is not None)
    for record_id, applied in done:
        if applied.index_delete:
            deps.index.delete(table.name, record_id)


def dead_letter(deps: IngressDeps, table: TableMapping, record_id: str, exc: RecordError | ApiError) -> None:
    """Park a record that failed on its own account; anything else stops the run (page redone later)."""
    if isinstance(exc, ApiError) and exc.outcome is not Outcome.RECORD_ERROR:
        raise exc
    reason = str(exc) if isinstance(exc, RecordError) else exc.describe()
    deps.dead_letters.record(FLOW, table.name, record_id, reason)


def retry_dead_letters(table: TableMapping, deps: IngressDeps, writer: RecordWriter, ctx: RunContext) -> None:
    """Give failed records another go with their current Dynamics state, up to the attempt limit."""
    for letter in deps.dead_letters.due(FLOW, table.name, deps.dead_letter_max_attempts):
        if ctx.out_of_time():
            raise OutOfTime()
        row = deps.dataverse.retrieve(table.entity_set, letter.record_id, table.source_attributes())
        entry = deps.index.get(table.name, letter.record_id)
        try:
            applied = writer.apply(letter.record_id, row, entry, initial=True)
        except (RecordError, ApiError) as exc:
            dead_letter(deps, table, letter.record_id, exc)
            ctx.counts["dead_letter_retries_failed"] += 1
            continue
        record_in_index(deps, table, [(letter.record_id, applied)])
        deps.dead_letters.resolve(FLOW, table.name, letter.record_id)
        ctx.counts["dead_letter_retries_ok"] += 1
        ctx.counts[applied.result] += 1


def describe_cursor(checkpoint: Checkpoint) -> str:
    """Where a read stands, without the links themselves (they are long and opaque)."""
    if checkpoint.phase == INITIAL:
        return f"initial:gen{checkpoint.generation}:page{checkpoint.pages}"
    return f"incremental:gen{checkpoint.generation}:{_short(checkpoint.delta_link)}"


def _short(link: str | None) -> str:
    if not link:
        return "-"
    return hashlib.sha256(link.encode()).hexdigest()[:12]


def tables_to_sync(config: SyncConfig, *, contacts: bool) -> list[TableMapping]:
    return [t for t in config.tables if t.enabled and t.is_profile == contacts]

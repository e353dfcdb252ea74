"""Egress: Campaign email events (send, open, click, hard bounce) onto the Dynamics contact timeline.

One scope, `events`. Each run: check the activity tables against Dynamics (they exist, are activities, have the
columns, and their regarding navigation towards contacts) -> give dead-lettered events another go (a contact may
have arrived since) -> read Campaign's export files batch by batch -> decide per event (skip soft and ignored
bounces and types turned off; dead-letter what can never land) -> create the activities and follow-up tasks if
absent -> dead-letter what Dynamics refused, with the event beside the reason -> commit the batch (the cursor
moves; after a file's last batch the file is archived).

Idempotent: activity and task ids derive from the event, and rows are only ever created when absent, so a batch
done twice (a run cut before its commit, a file exported again) creates nothing twice and changes nothing.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from shared.clients.dataverse import Creation, DataverseClient
from shared.clients.sftp import SftpClient
from shared.config.model import EGRESS_EVENTS, EgressConfig
from shared.core.activities import (
    TASK_REGARDING,
    ActivityTable,
    EgressShape,
    NeverLands,
    Skip,
    Writes,
    columns_for,
    decide_event,
    default_activity_columns,
)
from shared.core.events import BadRow, ColumnLayout, EmailEvent
from shared.flows.counts import Count
from shared.flows.definition import Check, FlowDefinition
from shared.flows.egress_source import EventSource, FileEventSource
from shared.flows.egress_writer import BatchWriter, EventOutcome
from shared.flows.file_feed import FileFeedCursor, FileStore
from shared.flows.runner import FlowBody, RunContext
from shared.http import ApiError
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore

if TYPE_CHECKING:
    from shared.wiring import Services

log = logging.getLogger("sync.egress")

FLOW = "egress"
SCOPE = "events"
PROVISION_HINT = "create them with `python -m shared.cli provision egress`"


class EgressConfigError(Exception):
    """The activity tables do not fit the mapping: nothing is written."""


@dataclasses.dataclass
class EgressDeps:
    dataverse: DataverseClient
    checkpoints: CheckpointStore
    dead_letters: DeadLetterStore
    open_files: Callable[[], contextlib.AbstractContextManager[FileStore]]
    export_folder: str
    archive_folder: str
    batch_size: int = 1000  # operations per $batch request
    max_parallel: int = 4  # $batch requests in flight
    dead_letter_max_attempts: int = 5
    sleep: Callable[[float], None] = time.sleep


def egress_deps(services: Services) -> EgressDeps:
    sftp = services.settings.sftp
    if sftp is None:  # load_configuration refuses this; a hand-built Services may not
        raise EgressConfigError("egress reads Campaign's SFTP: set SFTP_HOST, SFTP_USERNAME, SFTP_PRIVATE_KEY and "
                                "SFTP_HOST_KEY")  # fmt: skip
    settings = sftp  # (a name the lambda below can close over, typed as set)
    return EgressDeps(
        dataverse=services.dataverse,
        checkpoints=CheckpointStore(services.state.table("checkpoints")),
        dead_letters=DeadLetterStore(services.state.table("deadletters")),
        open_files=lambda: SftpClient.from_settings(settings),
        export_folder=sftp.export_folder,
        archive_folder=sftp.archive_folder,
        batch_size=services.settings.egress.batch_size,
        max_parallel=services.settings.dataverse.max_parallel,
        dead_letter_max_attempts=services.settings.run.dead_letter_max_attempts,
    )


def _bodies(services: Services, scopes: Sequence[str]) -> list[tuple[str, FlowBody]]:
    deps = egress_deps(services)
    return [(scope, egress_body(services.config.egress, deps)) for scope in scopes]


def _preflight(services: Services, scopes: Sequence[str]) -> list[Check]:
    """The activity tables, their columns and regarding navigation, the owner, the tasks table."""
    if not scopes:
        return []
    subject = f"egress activity tables ({', '.join(sorted(active_tables(services.config.egress).values()))})"
    try:
        resolve_shape(services.config.egress, services.dataverse)
    except EgressConfigError as exc:
        return [Check(subject, tuple(str(exc).split("; ")))]
    except ApiError as exc:
        return [Check(subject, (exc.describe(),))]
    return [Check(subject)]


def _backlog(services: Services, scope: str) -> str:
    deps = egress_deps(services)
    cursor = deps.checkpoints.load(FLOW, scope, FileFeedCursor).cursor
    with deps.open_files() as files:
        return file_source(files, services.config.egress, deps).backlog(cursor)


EGRESS = FlowDefinition(
    name=FLOW,
    description="Campaign email events (SFTP exports) -> Dynamics timeline activities and follow-up tasks",
    cursor_type=FileFeedCursor,
    scopes=lambda config: [SCOPE] if config.egress.enabled else [],
    bodies=_bodies,
    blueprint="shared.entrypoints.egress",
    preflight=_preflight,
    backlog=_backlog,
)


def active_tables(config: EgressConfig) -> dict[str, str]:
    """Event type -> entity set, for the types that are on."""
    return {event: config.activity_tables[event] for event in EGRESS_EVENTS if event in config.events}


def file_source(files: FileStore, config: EgressConfig, deps: EgressDeps) -> FileEventSource:
    # One feed batch feeds every parallel $batch request at once (an event makes one or two operations).
    return FileEventSource(files, folder=deps.export_folder, archive_folder=deps.archive_folder,
                           layout=ColumnLayout(config.source_columns), pattern=config.source_pattern,
                           separator=config.source_separator,
                           batch_size=deps.batch_size * deps.max_parallel)  # fmt: skip


def egress_body(config: EgressConfig, deps: EgressDeps) -> FlowBody:
    """The runner's flow body for the one scope."""

    def body(ctx: RunContext) -> bool:
        shape = resolve_shape(config, deps.dataverse)
        checkpoint = deps.checkpoints.load(FLOW, SCOPE, FileFeedCursor)
        cursor = checkpoint.cursor
        ctx.cursor_from = ctx.cursor_to = cursor.describe()

        def save() -> None:
            ctx.cursor_to = cursor.describe()
            if not ctx.dry_run:
                deps.checkpoints.save(checkpoint)

        if checkpoint.reset_requested:
            # Archived files are gone; what a replay can do is read the unreadable ones again.
            checkpoint.begin_replay()
            cursor.failed.clear()
            save()
            ctx.note("replay requested: files left unreadable are read again")
        run = EventRun(deps, shape, ctx)
        run.retry_dead_letters()
        archived, unreadable = cursor.archived, len(cursor.failed)
        with deps.open_files() as files:
            source: EventSource = file_source(files, config, deps)
            for batch in source.batches(cursor, ctx, save=save):
                run.apply(batch.items)  # the run summary counts; the cursor has no phase to total over
                checkpoint.last_outcome, checkpoint.last_run_at = "completed", ctx.started_at
                batch.commit()  # saves the checkpoint (and archives the file after its last batch)
                ctx.heartbeat()
        ctx.counts[Count.FILES_ARCHIVED] += cursor.archived - archived
        ctx.counts[Count.FILES_UNREADABLE] += max(0, len(cursor.failed) - unreadable)
        return True

    return body


# ----------------------------------------------------------------------------------------- metadata


def activity_columns(config: EgressConfig, logical_name: str) -> dict[str, str]:
    """Column logical names of an activity table: `<its prefix>_<field>`, unless the mapping names them."""
    return {**default_activity_columns(logical_name.split("_", 1)[0]), **config.activity_columns}


def resolve_shape(config: EgressConfig, dataverse: DataverseClient) -> EgressShape:
    """Check the activity tables against Dynamics before any write; every problem is reported at once."""
    problems: list[str] = []
    if config.owner:
        owner = config.owner
        if not dataverse.exists("systemusers", owner):
            problems.append(f"egress.owner {owner}: no such systemuser")
    else:
        owner = dataverse.who_am_i()  # the application user the connector signs in as
    tables: dict[str, ActivityTable] = {}
    for event, entity_set in active_tables(config).items():
        found = _activity_table(config, dataverse, event, entity_set, problems)
        if found is not None:
            tables[event] = found
    if (config.task_on_click and "click" in tables) or (config.task_on_bounce and "bounce" in tables):
        navigation = dataverse.navigation_properties("task")
        if navigation.get(TASK_REGARDING) != "contact":
            problems.append(f"table task has no navigation {TASK_REGARDING} towards contact")
    if problems:
        raise EgressConfigError("egress does not fit the Dynamics instance: " + "; ".join(problems))
    return EgressShape(tables, owner, task_on_click=config.task_on_click, task_on_bounce=config.task_on_bounce,
                       task_due_days=config.task_due_days)  # fmt: skip


def _activity_table(
    config: EgressConfig, dataverse: DataverseClient, event: str, entity_set: str, problems: list[str]
) -> ActivityTable | None:
    logical = dataverse.logical_name_of(entity_set)
    if logical is None:
        problems.append(f"activity table '{entity_set}' ({event} events) does not exist: {PROVISION_HINT}")
        return None
    columns = activity_columns(config, logical)
    needed = [columns[field] for field in columns_for(event)]
    definition = dataverse.entity_definition(logical)
    if any(name not in definition.attributes for name in needed):
        definition = dataverse.entity_definition(logical, refresh=True)  # created since it was cached?
    if not definition.is_activity:
        problems.append(f"table '{entity_set}' ({event} events) is not an activity table")
        return None
    missing = [name for name in needed if name not in definition.attributes]
    if missing:
        problems.append(f"activity table '{entity_set}' lacks column(s) {', '.join(missing)}: {PROVISION_HINT}, "
                        "or name the columns in egress.activityColumns")  # fmt: skip
    regarding = _regarding(dataverse.navigation_properties(logical))
    if regarding is None:
        regarding = _regarding(dataverse.navigation_properties(logical, refresh=True))
    if regarding is None:
        problems.append(f"activity table '{entity_set}' has no regarding navigation towards contact")
        return None
    return ActivityTable(event, entity_set, logical, regarding, columns)


def _regarding(navigation: dict[str, str]) -> str | None:
    """The regarding lookup's navigation towards contact (regardingobjectid_contact_<table> by convention)."""
    found = sorted(name for name, target in navigation.items() if target == "contact" and
                   name.startswith("regardingobjectid_"))  # fmt: skip
    return found[0] if found else None


# ----------------------------------------------------------------------------------------- events

DEAD_LETTER_PARALLEL = 8


@dataclasses.dataclass(frozen=True)
class _Letter:
    key: str
    reason: str
    event: EmailEvent | None  # kept beside the reason when a later run may land it


class EventRun:
    """One run's events: decide, write, dead-letter, count."""

    def __init__(self, deps: EgressDeps, shape: EgressShape, ctx: RunContext) -> None:
        self.deps = deps
        self.shape = shape
        self.ctx = ctx
        self.writer = BatchWriter(deps.dataverse, batch_size=deps.batch_size, max_parallel=deps.max_parallel,
                                  sleep=deps.sleep)  # fmt: skip

    def apply(self, items: Sequence[EmailEvent | BadRow]) -> dict[str, int]:
        """One batch from the source: every item written or dead-lettered before this returns."""
        counts: collections.Counter[str] = collections.Counter({Count.READ: len(items)})
        letters: list[_Letter] = []
        events: dict[str, EmailEvent] = {}
        for item in items:
            if isinstance(item, BadRow):
                counts[Count.MALFORMED] += 1
                letters.append(_Letter(item.key, item.reason, None))
            else:
                events.setdefault(item.key, item)  # the same event twice in one batch: once is enough
        done = self._events(list(events.values()), counts, letters)
        counts[Count.DEAD_LETTERED] += len(letters)
        self._record(letters)
        if done and not self.ctx.dry_run:
            for key in self.deps.dead_letters.open_among(FLOW, SCOPE, done, parallel=DEAD_LETTER_PARALLEL):
                self.deps.dead_letters.resolve(FLOW, SCOPE, key)
        self.ctx.counts.update(counts)
        return dict(counts)

    def retry_dead_letters(self) -> None:
        """Events parked because Dynamics refused them (a contact missing, say) get another go, from the event
        kept beside the reason, up to the attempt limit. Rows that are not events have nothing to retry."""
        due = [d for d in self.deps.dead_letters.due(FLOW, SCOPE, self.deps.dead_letter_max_attempts) if d.payload]
        chunk = self.deps.batch_size * self.deps.max_parallel
        for start in range(0, len(due), chunk):
            self.ctx.check_time()
            events = []
            for letter in due[start : start + chunk]:
                try:
                    events.append(EmailEvent.from_payload(letter.payload or {}))
                except ValueError:
                    log.warning("egress.dead_letter_unreadable record=%s", letter.record_id)
            counts: collections.Counter[str] = collections.Counter()
            letters: list[_Letter] = []
            done = self._events(events, counts, letters)
            counts[Count.DEAD_LETTER_RETRIES_OK] += len(done)
            counts[Count.DEAD_LETTER_RETRIES_FAILED] += len(letters)
            self._record(letters)
            if not self.ctx.dry_run:
                for key in done:
                    self.deps.dead_letters.resolve(FLOW, SCOPE, key)
            self.ctx.counts.update(counts)

    def _events(self, events: list[EmailEvent], counts: collections.Counter[str], letters: list[_Letter]) -> list[str]:
        """Decide and write; returns the keys of the events that are through (or skipped: nothing left to do)."""
        done: list[str] = []
        to_write: list[tuple[EmailEvent, Writes]] = []
        for event in events:
            decision = decide_event(event, self.shape)
            if isinstance(decision, Skip):
                counts[decision.count] += 1
                done.append(event.key)
            elif isinstance(decision, NeverLands):
                counts[Count.NEVER_LANDS] += 1
                letters.append(_Letter(event.key, decision.reason, None))
            else:
                to_write.append((event, decision))
        if self.ctx.dry_run:
            counts[Count.WOULD_WRITE] += len(to_write)
            return done + [event.key for event, _ in to_write]
        for outcome in self.writer.write(to_write) if to_write else []:
            if outcome.ok:
                _count_written(outcome, counts)
                done.append(outcome.event.key)
            else:
                if outcome.problem is Creation.MISSING_REFERENCE:
                    counts[Count.CONTACT_MISSING] += 1
                letters.append(_Letter(outcome.event.key, outcome.reason, outcome.event))
        return done

    def _record(self, letters: list[_Letter]) -> None:
        if self.ctx.dry_run or not letters:
            return
        store = self.deps.dead_letters

        def record(letter: _Letter) -> None:
            payload = letter.event.to_payload() if letter.event is not None else None
            store.record(FLOW, SCOPE, letter.key, letter.reason, payload=payload)

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(DEAD_LETTER_PARALLEL, len(letters))) as pool:
            list(pool.map(record, letters))


def _count_written(outcome: EventOutcome, counts: collections.Counter[str]) -> None:
    counts[Count.CREATED if outcome.activity is Creation.CREATED else Count.UNCHANGED] += 1
    if outcome.task is not None:
        counts[Count.TASKS_CREATED if outcome.task is Creation.CREATED else Count.TASKS_UNCHANGED] += 1

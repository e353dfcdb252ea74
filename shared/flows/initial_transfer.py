"""Initial transfer: a large table's first load (or a replay) as files through Blob staging and Campaign's SFTP,
imported by a Campaign workflow; then ingress takes over from the export's own delta link, with no gap.

Per table, each tick moves the transfer's state machine (shared/flows/initial_transfer_cursor.py) as far as
time and Campaign allow: export the table with the change-tracking initial read itself, shaped by the same
TableShape as the API path, into parts of about INITIAL_TRANSFER_PART_ROWS rows (cut at page boundaries,
each streamed into Blob as blocks) and a manifest -> push each part to the SFTP upload folder (temporary name,
size check, rename) -> start the import workflow and trigger its External signal once -> follow the
execution until it finished (hand the delta link to ingress) or failed (a visible, retryable state). Every
step is checkpointed after the write it describes is durable, so a run cut anywhere resumes: a part cut in
Blob is written again from its first page, a part cut on SFTP is uploaded again, a trigger whose answer was
lost is looked up in the execution instead of being sent twice.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from shared.clients.campaign import SIGNAL_TOO_SOON, CampaignClient, SignalRateLimitedError, WorkflowClient
from shared.clients.dataverse import DataverseClient
from shared.clients.sftp import SftpClient
from shared.config.model import InitialLoad, InitialTransferTarget, SyncConfig, TableMapping
from shared.core.errors import RecordError
from shared.core.file_shape import FileShaper
from shared.core.shape import TableShape
from shared.flows.change_feed import ChangeFeed, ChangeFeedCursor, FeedPage
from shared.flows.counts import Count
from shared.flows.definition import Check, FlowDefinition
from shared.flows.ingress import FLOW as INGRESS
from shared.flows.ingress import tables_to_sync
from shared.flows.initial_transfer_cursor import (
    EXPORTING,
    FLOW,
    IMPORTED,
    REQUESTED,
    SIGNALLED,
    SIGNALLING,
    STAGED,
    UPLOADED,
    WORKING,
    PartRecord,
    TransferCursor,
)
from shared.flows.runner import FlowBody, RunContext
from shared.flows.table_shape import resolve_shape
from shared.flows.transfer_upload import BackgroundUploads, upload_part
from shared.http import ApiError, Outcome
from shared.settings import InitialTransferSettings
from shared.state.checkpoints import Checkpoint, CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.staging import BlobStaging, PartWriter, StagedPart

if TYPE_CHECKING:
    from shared.wiring import Services

log = logging.getLogger("sync.initial_transfer")

SIGNAL_SOURCE = "d365-connector"
MAX_FILE_NAMES_CHARS = 60_000  # a trigger's payload is at most 64 KB: beyond, the workflow's file mask finds them
TRIGGERED_STATES = frozenset({"running", "finished", "error"})  # an execution in one of these took a trigger
ENDED_STATES = frozenset({"finished", "error"})
GZIP_LEVEL = 1  # the cheapest level: the export must keep pace with Dataverse paging
PAGES_AHEAD = 2  # pages read ahead of the shaping: Dataverse's page times vary, the export should not wait


class TransferConfigError(Exception):
    """The table cannot go by file as configured (no import workflow, no SFTP settings): nothing is written."""


class TransferFailed(Exception):
    """The import failed or can no longer be handed over: the transfer is in its failed state, visible in status."""


@dataclasses.dataclass
class TransferDeps:
    dataverse: DataverseClient
    campaign: CampaignClient
    checkpoints: CheckpointStore
    dead_letters: DeadLetterStore
    staging: Callable[[], BlobStaging]  # built on first use: only a table that goes by file needs the container
    sftp: Callable[[], SftpClient] | None  # None: the SFTP settings are missing
    workflows: WorkflowClient
    options: InitialTransferSettings
    upload_folder: str
    clock: Callable[[], float] = time.time


def transfer_deps(services: Services) -> TransferDeps:
    settings = services.settings
    sftp_settings = settings.sftp
    sleep = services.campaign.http.sleep  # the process's injected sleep (instant in tests)

    def sftp() -> SftpClient:
        assert sftp_settings is not None
        return SftpClient.from_settings(sftp_settings, sleep=sleep)

    return TransferDeps(
        dataverse=services.dataverse,
        campaign=services.campaign,
        checkpoints=CheckpointStore(services.state.table("checkpoints")),
        dead_letters=DeadLetterStore(services.state.table("deadletters")),
        staging=lambda: BlobStaging(services.state.container()),
        sftp=sftp if sftp_settings is not None else None,
        # A trigger refused by the 10-minute rule is tried again on a later tick, not waited for in this run.
        workflows=services.campaign.workflows(max_waits=0),
        options=settings.initial_transfer,
        upload_folder=sftp_settings.upload_folder if sftp_settings is not None else "",
    )


def transfer_scopes(config: SyncConfig) -> list[str]:
    """Tables whose first load or replay may go by file; only those with a transfer under way get a run."""
    return [t.name for t in tables_to_sync(config) if t.may_load_by_file]


def _bodies(services: Services, scopes: Sequence[str]) -> list[tuple[str, FlowBody]]:
    deps = transfer_deps(services)
    active = []
    for name in scopes:
        stored = deps.checkpoints.stored(FLOW, name)
        if stored is not None and TransferCursor.from_state(stored.cursor).state in WORKING:
            active.append((name, transfer_body(services.config.table(name), deps)))
    return active


def _preflight(services: Services, scopes: Sequence[str]) -> list[Check]:
    """Each table that may go by file: its import workflow exists and has the External signal to trigger."""
    workflows = services.campaign.workflows()
    checks = []
    for name in scopes:
        target = services.config.table(name).initial_transfer
        if target is None:
            subject = f"table '{name}': initial transfer"
            checks.append(Check(subject) if services.config.table(name).initial_load is not InitialLoad.FILE else
                          Check(subject, ("options.initialTransfer is missing",)))  # fmt: skip
            continue
        subject = f"table '{name}': import workflow {target.workflow}, signal {target.signal}"
        try:
            execution = workflows.execution(target.workflow)
        except ApiError as exc:
            checks.append(Check(subject, (exc.describe(),)))
            continue
        if target.signal not in execution.triggers:
            found = ", ".join(execution.triggers) or "none"
            checks.append(Check(subject, (f"the workflow has no External signal '{target.signal}' (has: {found})",)))
        else:
            checks.append(Check(subject))
    return checks


INITIAL_TRANSFER = FlowDefinition(
    name=FLOW,
    description="Large Dynamics tables -> files on Campaign's SFTP -> Campaign import workflow -> ingress",
    cursor_type=TransferCursor,
    scopes=transfer_scopes,
    bodies=_bodies,
    blueprint="shared.entrypoints.initial_transfer",
    preflight=_preflight,
)


def transfer_body(table: TableMapping, deps: TransferDeps) -> FlowBody:
    def body(ctx: RunContext) -> bool:
        checkpoint = deps.checkpoints.load(FLOW, table.name, TransferCursor)
        ctx.cursor_from = ctx.cursor_to = checkpoint.cursor.describe()
        if checkpoint.cursor.state not in WORKING:
            ctx.note(f"nothing to do: the transfer is {checkpoint.cursor.state}")
            return True
        return TableTransfer(table, deps, checkpoint, ctx).run()

    return body


class TableTransfer:
    """One run of one table's transfer: each step moves the cursor and saves it once its effect is durable."""

    def __init__(
        self, table: TableMapping, deps: TransferDeps, checkpoint: Checkpoint[TransferCursor], ctx: RunContext
    ) -> None:
        self.table = table
        self.deps = deps
        self.checkpoint = checkpoint
        self.cursor = checkpoint.cursor
        self.ctx = ctx
        self.options = deps.options
        self.began = ctx.monotonic()  # when this run's current step began: its duration goes into the notes
        self.waited = 0.0  # seconds the export waited for Dataverse pages (the rest is the connector's own work)

    def run(self) -> bool:
        """True once nothing more can be done now (done, or waiting for Campaign). Running out of time raises
        OutOfTime between units of work (the runner reports `partial`)."""
        if self.ctx.dry_run:
            return self.dry_run()
        steps: dict[str, Callable[[], bool]] = {
            REQUESTED: self.start,
            EXPORTING: self.export,
            STAGED: self.upload,
            UPLOADED: self.start_workflow,
            SIGNALLING: self.trigger,
            SIGNALLED: self.follow,
            IMPORTED: self.hand_over,
        }
        while self.cursor.state in steps:
            if not steps[self.cursor.state]():
                return True  # waiting for Campaign: a later tick goes on
        return True

    def seconds(self) -> float:
        """Since the previous call (or the run's start): how long the step that just ended took."""
        now = self.ctx.monotonic()
        elapsed, self.began = now - self.began, now
        return elapsed

    def save(self, counts: Counter[str] | None = None) -> None:
        if counts:
            self.checkpoint.add_counts(counts)
            self.ctx.counts.update(counts)
        self.checkpoint.last_outcome, self.checkpoint.last_run_at = "partial", self.ctx.started_at
        self.deps.checkpoints.save(self.checkpoint)
        self.ctx.cursor_to = self.cursor.describe()
        self.ctx.heartbeat()

    # -- requested -> exporting

    def start(self) -> bool:
        self.target()  # a configuration problem stops here, before anything is written
        if self.deps.sftp is None:
            raise TransferConfigError(
                f"table '{self.table.name}' goes by file, but the SFTP settings are missing (SFTP_HOST, "
                "SFTP_USERNAME, SFTP_PRIVATE_KEY, SFTP_HOST_KEY)"
            )
        staging = self.deps.staging()
        for batch in self.cursor.abandoned:  # a replay's earlier attempt: its staged parts are void
            staging.delete_batch(batch)
        self.cursor.abandoned_removed()
        self.cursor.begin_export(batch_name(self.table.name, self.deps.clock(), self.checkpoint.generation))
        self.save()
        self.ctx.note(f"export started: batch {self.cursor.batch}, {self.cursor.counted:,} rows counted")
        return True

    # -- exporting -> staged

    def export(self) -> bool:
        staging = self.deps.staging()
        if not self.cursor.feed.full_read:  # the read ended before the last run could write the manifest
            return self.finish_export(staging)
        shape = resolve_shape(self.table, self.deps.dataverse, self.deps.campaign)
        shaper = FileShaper.for_shape(shape, self.options.separator)
        feed = ChangeFeed(self.deps.dataverse, self.table.entity_set, self.table.source_attributes(),
                          clock=self.deps.clock, prefetch=PAGES_AHEAD)  # fmt: skip
        part: PartBuilder | None = None
        at_boundary = False
        self.report_export(0)
        counts: Counter[str] = Counter()
        uploads = self.background_uploads(staging)

        def save_at_part_boundary() -> None:
            nonlocal part, uploads
            if self.cursor.feed.sweep_epoch:  # the read restarted from the top (a resync): so do the parts
                self.cursor.restart_export()
                if part is not None:
                    part.abandon()
                part = None
                if uploads is not None:  # they upload the first attempt's parts: not recorded, not wanted
                    uploads.close(cancel=True)
                    uploads = self.background_uploads(staging)
                self.save()
            elif at_boundary:
                self.save(counts)

        asked = time.perf_counter()  # where the export's time goes (a note only, never a decision)
        pages = feed.pages(self.cursor.feed, self.ctx, save=save_at_part_boundary)
        try:
            for page in pages:
                self.waited += time.perf_counter() - asked
                if part is None:
                    name = self.cursor.part_name(self.options.gzip)
                    part = PartBuilder(staging.open_part(self.cursor.batch, name), name, shaper, self.options)
                    counts = Counter()
                self.write_page(page, shape, part, counts)
                at_boundary = page.last or part.rows >= self.options.part_rows or self.ctx.out_of_time()
                if at_boundary:
                    if part.rows or (page.last and not self.cursor.parts):
                        record = part.commit()
                        self.cursor.part_staged(record)
                        counts[Count.PARTS_STAGED] += 1
                        if uploads is not None:
                            uploads.submit(record)
                    else:
                        part.abandon()  # nothing in it: no file
                    part = None
                if uploads is not None:
                    self.record_uploads(uploads.finished(), counts)
                page.commit()  # the feed moves past the page; saved with the part list at a part boundary only
                at_boundary = False
                self.report_export(part.rows if part else 0)
                asked = time.perf_counter()
        except BaseException:
            pages.close()  # no page is fetched ahead while the upload in flight ends
            if uploads is not None:
                uploads.close(cancel=True)  # not recorded: a later run uploads those parts again
            raise
        finally:
            if part is not None:  # the run stopped mid-part (time, an error): its blocks stay uncommitted
                part.abandon()
        if uploads is not None:
            last: Counter[str] = Counter()  # the counts of the parts before were saved with them
            self.record_uploads(uploads.close(), last)
            if last:
                self.save(last)
        return self.finish_export(staging)

    def background_uploads(self, staging: BlobStaging) -> BackgroundUploads | None:
        """Parts go to SFTP while the next ones are exported (an optimisation: the upload step does the rest)."""
        if self.deps.sftp is None:
            return None
        return BackgroundUploads(self.deps.sftp, staging, self.cursor.batch, self.deps.upload_folder)

    def record_uploads(self, parts: list[PartRecord], counts: Counter[str]) -> None:
        for record in parts:
            if record in self.cursor.parts:  # not a part of an export that has since started over
                self.cursor.part_uploaded(record.name)
                counts[Count.PARTS_UPLOADED] += 1

    def write_page(self, page: FeedPage, shape: TableShape, part: PartBuilder, counts: Counter[str]) -> None:
        lines: list[str] = []
        rows: list[Mapping[str, Any]] = []  # the row of each line, for a line the encoding cannot write
        line, passes, payload = part.shaper.line, shape.passes, shape.payload
        for row in page.rows:
            try:
                if not passes(row):
                    counts[Count.FILTERED_OUT] += 1
                    continue
                lines.append(line(payload(row, full=True)))
                rows.append(row)
            except RecordError as exc:
                self.reject(shape, row, exc.reason, counts)
        data, exported = self.encoded(lines, rows, shape, counts)
        part.write(data, exported)
        counts[Count.READ] += len(page.rows) + len(page.deleted_ids)
        counts[Count.EXPORTED] += exported
        counts[Count.DELETES_IGNORED] += len(page.deleted_ids)  # a full read reports none

    def encoded(
        self, lines: list[str], rows: list[Mapping[str, Any]], shape: TableShape, counts: Counter[str]
    ) -> tuple[bytes, int]:
        """The page's lines in the file's encoding, and how many: encoded in one call, or line by line when one
        cannot be written in it (that row is parked, as a row the shaping refuses)."""
        encoding = self.options.encoding
        try:
            return "".join(lines).encode(encoding), len(lines)
        except UnicodeEncodeError:
            pass
        kept: list[bytes] = []
        for text, row in zip(lines, rows, strict=True):
            try:
                kept.append(text.encode(encoding))
            except UnicodeEncodeError:
                self.reject(shape, row, f"a value cannot be written in {encoding}", counts)
        return b"".join(kept), len(kept)

    def reject(self, shape: TableShape, row: Mapping[str, Any], reason: str, counts: Counter[str]) -> None:
        """A row that cannot go into the file: parked under ingress, which retries it through the API once the
        table is handed over; a row without a usable id has nothing to be parked under, so it is counted."""
        try:
            record_id = shape.record_key(row)
        except RecordError as exc:
            counts[Count.REJECTED_WITHOUT_ID] += 1
            log.warning("initial_transfer.row_without_id table=%s reason=%s", self.table.name, exc)
            return
        if self.deps.dead_letters.get(INGRESS, self.table.name, record_id) is None:  # a part written again
            self.deps.dead_letters.record(INGRESS, self.table.name, record_id, f"initial transfer: {reason}")
        counts[Count.DEAD_LETTERED] += 1

    def finish_export(self, staging: BlobStaging) -> bool:
        self.ctx.check_time()
        staging.write_manifest(
            self.cursor.batch,
            [StagedPart(name=p.name, size=p.size, sha256=p.sha256, rows=p.rows) for p in self.cursor.parts],
            table=self.table.name,
            generation=self.checkpoint.generation,
            rowCount=self.cursor.exported,
            separator=self.options.separator,
            encoding=self.options.encoding,
            gzip=self.options.gzip,
        )
        self.cursor.export_done()
        self.save()
        self.ctx.note(f"export done: {self.cursor.exported:,} rows in {len(self.cursor.parts)} part(s), "
                      f"{self.seconds():.1f} s in this run, {self.waited:.1f} s of it waiting for pages")  # fmt: skip
        return True

    def report_export(self, in_progress: int) -> None:
        total = self.cursor.counted or None
        self.ctx.report("export", self.cursor.exported + in_progress, total, parts=len(self.cursor.parts))

    # -- staged -> uploaded

    def upload(self) -> bool:
        assert self.deps.sftp is not None
        staging = self.deps.staging()
        folder = self.deps.upload_folder
        parts = len(self.cursor.parts)
        with self.deps.sftp() as sftp:
            sftp.makedirs(folder)
            for part in self.cursor.pending_uploads():
                self.ctx.check_time()
                self.ctx.report("upload", len(self.cursor.uploaded), parts, unit="parts")
                upload_part(sftp, staging, self.cursor.batch, folder, part)
                self.cursor.part_uploaded(part.name)
                self.save(Counter({Count.PARTS_UPLOADED: 1}))
        self.ctx.report("upload", len(self.cursor.uploaded), parts, unit="parts")
        self.cursor.upload_done()
        self.save()
        self.ctx.note(f"upload done: {parts} part(s), {sum(p.size for p in self.cursor.parts):,} bytes, "
                      f"{self.seconds():.1f} s in this run")  # fmt: skip
        return True

    # -- uploaded -> signalling -> signalled

    def target(self) -> InitialTransferTarget:
        target = self.table.initial_transfer
        if target is None:
            raise TransferConfigError(
                f"table '{self.table.name}' goes by file, but its mapping has no options.initialTransfer "
                '(the Campaign import workflow to signal: {"workflow": "<ID>", "signal": "signal1"})'
            )
        return target

    def start_workflow(self) -> bool:
        """The workflow must wait on its signal (`started`): one that finished or failed is started again."""
        workflow = self.target().workflow
        status = self.deps.workflows.execution(workflow).status
        if status == "running":
            self.ctx.note(f"workflow {workflow} is running (another import): the signal waits for a later tick")
            return False
        if status in ENDED_STATES:
            self.deps.workflows.command(workflow, "start")
            status = self.deps.workflows.execution(workflow).status
            if status in ENDED_STATES:  # Campaign starts workflows asynchronously
                self.ctx.note(f"workflow {workflow} is being started: the signal waits for a later tick")
                return False
        if status != "started":
            raise TransferConfigError(f"workflow {workflow} is '{status}', not started: start it in Campaign")
        self.cursor.signalling()  # from here on, an execution that took a trigger took ours
        self.save()
        return True

    def trigger(self) -> bool:
        target = self.target()
        workflows = self.deps.workflows
        if workflows.execution(target.workflow).status in TRIGGERED_STATES:
            self.ctx.note("the trigger of an earlier run went through")
        else:
            names = ",".join(self.cursor.file_names())
            parameters = {
                "batch": self.cursor.batch,
                "fileNames": names if len(names) <= MAX_FILE_NAMES_CHARS else "",
                "rowCount": self.cursor.exported,
            }
            try:
                workflows.trigger_signal(target.workflow, target.signal, SIGNAL_SOURCE, parameters)
            except SignalRateLimitedError:
                self.ctx.note("Campaign refused the signal (one trigger per 10 minutes): a later tick sends it")
                return False
            except ApiError as exc:
                if exc.code == SIGNAL_TOO_SOON or exc.outcome is not Outcome.RETRY:
                    raise
                # The answer was lost (or a 5xx): the execution says whether Campaign took it.
                if workflows.execution(target.workflow).status not in TRIGGERED_STATES:
                    raise
                self.ctx.note("the trigger's answer was lost; the execution shows Campaign took it")
        self.cursor.signalled(self.deps.clock())
        self.save(Counter({Count.SIGNALS: 1}))
        self.ctx.note(f"import workflow {target.workflow} signalled: {len(self.cursor.parts)} file(s), "
                      f"{self.cursor.exported:,} rows")  # fmt: skip
        return True

    # -- signalled -> imported | failed

    def follow(self) -> bool:
        workflow = self.target().workflow
        status = self.deps.workflows.execution(workflow).status
        if status == "finished":
            self.cursor.imported()
            self.save()
            self.ctx.note(f"import workflow {workflow} finished")
            return True
        if status == "error":
            self.failed(f"import workflow {workflow} ended in error (its log in Campaign says why)")
        waited_hours = (self.deps.clock() - self.cursor.signalled_at) / 3600
        if waited_hours > self.options.import_timeout_hours:
            self.failed(f"import workflow {workflow} still '{status}' after {waited_hours:.1f} h "
                        "(INITIAL_TRANSFER_IMPORT_TIMEOUT_HOURS)")  # fmt: skip
        self.ctx.note(f"import workflow {workflow} is {status}: a later tick looks again")
        return False

    def failed(self, reason: str) -> NoReturn:
        self.cursor.fail(reason)
        self.save()
        raise TransferFailed(f"{reason}; retry: python -m shared.cli transfer retry {self.table.name}")

    # -- imported -> handed over

    def hand_over(self) -> bool:
        generation, delta_link = self.checkpoint.generation, self.cursor.delta_link
        superseded: list[str] = []

        def give_delta_link(ingress: Checkpoint[ChangeFeedCursor]) -> None:
            superseded.clear()
            if ingress.generation != generation:
                superseded.append(f"ingress is at generation {ingress.generation}, this transfer served {generation}")
            elif ingress.cursor.waiting_for_file:
                ingress.cursor.hand_over(delta_link)
            # Same generation and no longer waiting: an earlier run of ours handed over already.

        self.deps.checkpoints.update(INGRESS, self.table.name, ChangeFeedCursor, give_delta_link)
        if superseded:
            self.failed(f"cannot hand over: {superseded[0]} (a replay started over)")
        staging = self.deps.staging()
        for batch in (*self.cursor.abandoned, self.cursor.batch):  # an export started over: its first parts are void
            staging.delete_batch(batch)  # ... and this batch's parts are on SFTP and imported
        self.cursor.abandoned_removed()
        self.cursor.handed_over()
        self.checkpoint.last_outcome = "completed"
        self.deps.checkpoints.save(self.checkpoint)
        self.ctx.cursor_to = self.cursor.describe()
        self.ctx.note("handed over: ingress goes on with increments from the export's delta link")
        return True

    # -- dry run

    def dry_run(self) -> bool:
        self.target()
        if self.cursor.state in (REQUESTED, EXPORTING):
            shape = resolve_shape(self.table, self.deps.dataverse, self.deps.campaign)
            header = FileShaper.for_shape(shape, self.options.separator).header().rstrip("\n")
            self.ctx.note(f"dry run: would export {self.cursor.counted:,} rows with the header {header}")
        else:
            self.ctx.note(f"dry run: the transfer is {self.cursor.state}; nothing written")
        return True


class PartBuilder:
    """One part being written: header, then lines, gzip-compressed and streamed into Blob as blocks.

    Compressing, hashing and staging blocks run on a thread of their own (zlib, hashlib and the socket release
    the GIL), so they overlap with the shaping of the next page; the queue between them holds two pages at most.
    `commit` waits for that thread and raises what it met; `abandon` (a run cut mid-part) stops it.
    """

    def __init__(self, writer: PartWriter, name: str, shaper: FileShaper, options: InitialTransferSettings) -> None:
        self.writer = writer
        self.name = name
        self.shaper = shaper
        self.rows = 0
        self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if options.gzip else None  # 31: gzip framing
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"part-writer-{name}", daemon=True)
        self._thread.start()
        self._put(shaper.header().encode(options.encoding))

    def write(self, data: bytes, rows: int) -> None:
        """`rows` lines, already encoded."""
        if rows:
            self._put(data)
            self.rows += rows

    def commit(self) -> PartRecord:
        self._finish()
        if self._failure is not None:
            raise self._failure
        staged = self.writer.commit(self.rows)
        return PartRecord(name=self.name, rows=self.rows, size=staged.size, sha256=staged.sha256)

    def abandon(self) -> None:
        """The part will not be committed (the run stops): what was staged stays uncommitted, and is replaced."""
        self._finish()

    def _put(self, data: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        self._chunks.put(data)

    def _finish(self) -> None:
        if self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()

    def _drain(self) -> None:
        try:
            while (data := self._chunks.get()) is not None:
                self.writer.write(self._gzip.compress(data) if self._gzip is not None else data)
            if self._gzip is not None:
                self.writer.write(self._gzip.flush())
        except BaseException as exc:  # raised in the flow's thread by the next write or the commit
            self._failure = exc
            while self._chunks.get() is not None:  # let the producer finish instead of blocking on a full queue
                pass


def batch_name(table: str, now: float, generation: int) -> str:
    """`<table>-<UTC time>-g<generation>`: letters, digits and '-' only, as the workflow's file mask needs."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{table.replace('_', '-')}-{stamp}-g{generation}"

"""Campaign -> Dynamics: the opt-out export file (docs/campaign-optout-export.md) into the contacts.

Per run: resolve the pairs -> retry dead letters -> for each new `campaign_optouts_*.csv` in name order, batch by
batch: parse rows -> read the batch's contacts in bulk (the In function) and their newest-applied records ->
decide per attribute (toDynamics: Campaign's value; bidirectional: the conflict rule) -> PATCH the contact with
If-Match: * (never creating one) -> save the record, audit -> commit the batch (file and row) -> archive the file
after its last batch. Rows of profiles without an externalId, or whose contact no longer exists, are counted and
reported, not dead-lettered (nothing would ever make them succeed).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from shared.clients.sftp import SftpClient
from shared.config.model import OptOutMode
from shared.core.delimited import Malformed, Record
from shared.core.errors import RecordError
from shared.core.optout import FILE, Decision, Side, decide_to_dynamics, file_boolean, file_seconds, row_mark
from shared.core.parse import parse_guid
from shared.flows.counts import Count
from shared.flows.executor import Applied, RecordExecutor
from shared.flows.file_feed import FileFeed
from shared.flows.optout_apply import OptOutWriter, Pairs, campaign_side
from shared.flows.optout_deps import CAMPAIGN_FILE, FLOW, OptOutCursor, OptOutDeps
from shared.flows.runner import FlowBody, RunContext
from shared.state.optout_applied import AppliedRecord

FILE_PATTERN = "campaign_optouts_*.csv"
EXTERNAL_ID, LAST_MODIFIED = "externalId", "lastModified"


class OptOutSftpMissing(Exception):
    """toDynamics and bidirectional read Campaign's export from its SFTP: the SFTP_* settings are needed."""


@dataclasses.dataclass(frozen=True)
class FileRow:
    contact: str
    time: float  # the profile's lastModified
    values: dict[str, bool]  # attribute (denyList*) -> Campaign's value


def parse_row(record: Record, pairs: Pairs) -> FileRow | None:
    """A file row, None for a profile that did not come from Dynamics (no or a non-GUID externalId)."""
    contact = parse_guid(record.values.get(EXTERNAL_ID, "").strip())
    if contact is None:
        return None
    time = file_seconds(record.values.get(LAST_MODIFIED, ""))
    if time is None:
        raise RecordError(f"line {record.line}: {LAST_MODIFIED} is not YYYY/MM/DD HH:MM:SS", field=LAST_MODIFIED)
    values: dict[str, bool] = {}
    for pair in pairs.items:
        value = file_boolean(record.values.get(pair.campaign, ""))
        if value is None:
            raise RecordError(f"line {record.line}: {pair.campaign} is not 1 or 0", field=pair.campaign)
        values[pair.attribute] = value
    return FileRow(contact, time, values)


def file_body(deps: OptOutDeps, sftp_factory: Callable[[], Any] | None = None) -> FlowBody:
    def body(ctx: RunContext) -> bool:
        pairs = deps.pairs()
        settings = deps.settings.sftp
        if settings is None and sftp_factory is None:
            raise OptOutSftpMissing(f"optOut.mode {deps.mode.value} reads Campaign's opt-out export from its SFTP: "
                                    "set SFTP_HOST, SFTP_USERNAME, SFTP_PRIVATE_KEY and SFTP_HOST_KEY")  # fmt: skip
        checkpoint = deps.checkpoints.load(FLOW, CAMPAIGN_FILE, OptOutCursor)
        checkpoint.cursor.scope = CAMPAIGN_FILE
        ctx.cursor_from = ctx.cursor_to = checkpoint.cursor.describe()

        def save() -> None:
            ctx.cursor_to = checkpoint.cursor.describe()
            if not ctx.dry_run:
                deps.checkpoints.save(checkpoint)

        if checkpoint.reset_requested:
            checkpoint.begin_replay()
            checkpoint.cursor.files.failed.clear()  # unreadable files get another go
            checkpoint.cursor.files.records = 0  # the file in progress is read again from its first row
            save()
            ctx.note("replay requested: unreadable files retried, the current file read from its start")
        writer = deps.writer(dry_run=ctx.dry_run)
        apply = FileApply(deps, writer, pairs, ctx)
        apply.retry_dead_letters()
        folder = settings.export_folder if settings else "exports"
        archive = settings.archive_folder if settings else "archive"
        store = sftp_factory() if sftp_factory is not None else SftpClient.from_settings(settings)  # type: ignore[arg-type]
        try:
            feed = FileFeed(store, folder=folder, archive_folder=archive, pattern=FILE_PATTERN,
                            required=[EXTERNAL_ID, LAST_MODIFIED, *(p.campaign for p in pairs.items)])  # fmt: skip
            for batch in feed.batches(checkpoint.cursor.files, ctx, save=save):
                checkpoint.add_counts(apply.batch(batch.items, batch.file))
                checkpoint.last_outcome, checkpoint.last_run_at = "partial", ctx.started_at
                batch.commit()
                ctx.heartbeat()
            checkpoint.last_outcome = "completed"
            save()
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()
        return True

    return body


class FileApply:
    def __init__(self, deps: OptOutDeps, writer: OptOutWriter, pairs: Pairs, ctx: RunContext) -> None:
        self.deps = deps
        self.writer = writer
        self.pairs = pairs
        self.ctx = ctx
        self.bidirectional = deps.mode is OptOutMode.BIDIRECTIONAL
        self.executor = RecordExecutor(FLOW, CAMPAIGN_FILE, deps.dead_letters, ctx, max_parallel=deps.max_parallel)
        self._lock = threading.Lock()

    def batch(self, items: list[Record | Malformed], file: str) -> dict[str, int]:
        counts: collections.Counter[str] = collections.Counter({Count.READ: len(items)})
        rows: dict[str, FileRow] = {}
        for item in items:
            if isinstance(item, Malformed):
                self._dead_letter(f"{file}#{item.line}", f"malformed line: {item.reason}")
                counts[Count.DEAD_LETTERED] += 1
                continue
            try:
                row = parse_row(item, self.pairs)
            except RecordError as exc:
                contact = parse_guid(item.values.get(EXTERNAL_ID, "").strip()) or f"{file}#{item.line}"
                self._dead_letter(contact, f"{file}: {exc}")
                counts[Count.DEAD_LETTERED] += 1
                continue
            if row is None:
                counts[Count.OPTOUT_WITHOUT_EXTERNAL_ID] += 1
                continue
            rows[row.contact] = row  # a profile listed twice: the later row is the newer one
        self.ctx.counts.update(counts)
        counts.update(self.apply_rows(rows))
        return dict(counts)

    def apply_rows(self, rows: dict[str, FileRow]) -> collections.Counter[str]:
        if not rows:
            return collections.Counter()
        self.ctx.check_time()
        found = self.deps.services.dataverse.retrieve_many(self.writer.contacts_set, "contactid", list(rows),
                                                           self.writer.contact_columns)  # fmt: skip
        contacts = {str(r["contactid"]).lower(): r for r in found}
        missing = [c for c in rows if c not in contacts]
        counts: collections.Counter[str] = collections.Counter()
        if missing:
            counts[Count.OPTOUT_CONTACT_MISSING] += len(missing)
            self.ctx.counts[Count.OPTOUT_CONTACT_MISSING] += len(missing)
        known = self.deps.applied.get_many(contacts, parallel=self.deps.max_parallel)
        done = self.executor.run(
            [(c, rows[c]) for c in sorted(contacts)],
            lambda contact, row: self.apply_one(contact, row, contacts[contact], known[contact]),
        )
        counts.update(done)
        return counts

    def apply_one(self, contact: str, row: FileRow, dynamics: dict[str, Any], record: AppliedRecord | None
                  ) -> Applied[None]:  # fmt: skip
        mark = row_mark(dynamics)
        if mark is None:
            raise RecordError("contact read without modifiedon/versionnumber")

        def decide(current: AppliedRecord) -> list[Decision]:
            return [decide_to_dynamics(pair.attribute, Side(row.values[pair.attribute], row.time),
                                       bool(dynamics.get(pair.dynamics)), mark, current.get(pair.attribute),
                                       bidirectional=self.bidirectional)
                    for pair in self.pairs.items]  # fmt: skip

        result = self.writer.carry_out(contact, decide, source=FILE, record=record, audit_all=False)
        with self._lock:
            self.ctx.counts.update(result.counts)
        return Applied(Count.UPDATED if any(d.writes for d in result.decisions) else Count.UNCHANGED)

    def retry_dead_letters(self) -> None:
        """Failed rows get another go from the profile's current state in Campaign (what a new export would say)."""
        due = self.deps.dead_letters.due(FLOW, CAMPAIGN_FILE, self.deps.dead_letter_max_attempts)
        contacts = [d.record_id for d in due if parse_guid(d.record_id) == d.record_id]
        if not contacts:
            return
        self.ctx.check_time()

        def retry(contact: str, _: None) -> Applied[None]:
            profile = self.writer.profiles.read(contact)
            if profile is None:
                return Applied(Count.OPTOUT_NO_PROFILE)
            sides = {p.attribute: campaign_side(profile.body, p) for p in self.pairs.items}
            time = max(s.time for s in sides.values()) if sides else 0.0
            row = FileRow(contact, time, {a: s.value for a, s in sides.items()})
            found = self.writer.read_contact(contact)
            if found is None:
                return Applied(Count.OPTOUT_CONTACT_MISSING)
            return self.apply_one(contact, row, found, None)

        self.executor.run([(c, None) for c in contacts], retry, known_letters=contacts,
                          failed_count=Count.DEAD_LETTER_RETRIES_FAILED,
                          succeeded_count=Count.DEAD_LETTER_RETRIES_OK)  # fmt: skip

    def _dead_letter(self, record_id: str, reason: str) -> None:
        if not self.ctx.dry_run:
            self.deps.dead_letters.record(FLOW, CAMPAIGN_FILE, record_id, reason)

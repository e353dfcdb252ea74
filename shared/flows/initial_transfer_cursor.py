"""Where one table's initial transfer stands: a state machine stored in the flow's checkpoint.

    idle -> requested -> exporting -> staged -> uploaded -> signalling -> signalled -> imported -> handed-over
                                                                  (any of the last three) -> failed

- requested: ingress chose the file path for its generation `generation` (a typed call, `request`).
- exporting: the change-tracking read of the table (the embedded feed cursor) is written as parts; the
  feed cursor is stored only at part boundaries, so it always says where the part in progress began: a
  part cut by a crash or a timeout is written again from there, never appended to.
- staged: every part is committed in Blob and the manifest written; `delta_link` is the hand-over point.
- uploaded: every part is on SFTP under its final name (`uploaded` lists them as they land, from the export
  on: a part goes up as soon as it is staged, while the next ones are exported).
- signalling: the workflow was started and the trigger is about to be sent; a run that finds this state
  reads the execution to learn whether its trigger went through before sending another.
- signalled: the import runs; each tick follows the execution until it has finished or failed.
- imported -> handed-over: ingress got the delta link and goes on with increments.
- failed: visible in status with the reason; `retry()` uploads and signals the same parts again, a replay
  of ingress starts the whole transfer over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from shared.flows.change_feed import ChangeFeedCursor
from shared.state.checkpoints import Checkpoint, CheckpointStore

FLOW = "initial_transfer"

IDLE = "idle"
REQUESTED = "requested"
EXPORTING = "exporting"
STAGED = "staged"
UPLOADED = "uploaded"
SIGNALLING = "signalling"
SIGNALLED = "signalled"
IMPORTED = "imported"
HANDED_OVER = "handed-over"
FAILED = "failed"

WORKING = frozenset({REQUESTED, EXPORTING, STAGED, UPLOADED, SIGNALLING, SIGNALLED, IMPORTED})


class NotRetryable(Exception):
    """`retry` asked of a transfer that has not failed."""


@dataclasses.dataclass(frozen=True)
class PartRecord:
    name: str
    rows: int
    size: int
    sha256: str


@dataclasses.dataclass
class TransferCursor:
    KIND: ClassVar[str] = "initial-transfer"

    state: str = IDLE
    generation: int = -1  # the ingress generation this transfer serves
    counted: int = 0  # rows RetrieveTotalRecordCount reported when the transfer was asked for (0: not counted)
    batch: str = ""  # names the files: <batch>_part0001.csv.gz ...
    abandoned: list[str] = dataclasses.field(default_factory=list)  # earlier batches whose blobs are to be removed
    feed: ChangeFeedCursor = dataclasses.field(default_factory=ChangeFeedCursor)
    parts: list[PartRecord] = dataclasses.field(default_factory=list)
    uploaded: list[str] = dataclasses.field(default_factory=list)
    delta_link: str = ""
    signalled_at: float = 0.0
    failure: str = ""
    failed_in: str = ""

    # -- asked for by ingress

    def serves(self, generation: int) -> bool:
        return self.state != IDLE and self.generation == generation

    def request(self, generation: int, counted: int) -> bool:
        """Ingress hands the table over for `generation`; a repeat of the same request changes nothing.
        A request for a newer generation (a replay) starts over: the earlier batch is abandoned."""
        if self.serves(generation):
            return False
        abandoned = [*self.abandoned, self.batch] if self.batch and self.state != HANDED_OVER else self.abandoned
        fresh = TransferCursor(state=REQUESTED, generation=generation, counted=counted, abandoned=abandoned)
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(fresh, field.name))
        return True

    @property
    def active(self) -> bool:
        """There is work for the flow's timer (a failed transfer waits for an operator)."""
        return self.state in WORKING

    # -- export

    def begin_export(self, batch: str) -> None:
        self._expect(REQUESTED)
        self.state, self.batch, self.feed, self.parts = EXPORTING, batch, ChangeFeedCursor(), []
        self.feed.read_through_api()  # the export is itself the read: no path to choose

    def abandoned_removed(self) -> None:
        self.abandoned = []

    def restart_export(self) -> None:
        """The read had to start over (its position became invalid): so do the parts, under a new batch name.

        The import workflow finds a batch's files by the mask `<batch>_part*`: parts of the first attempt already
        on SFTP (uploads run during the export) must not match the new attempt's mask, or a part the new
        attempt does not write again (it may have fewer) would be imported with its stale rows. The first
        attempt's staged blobs are abandoned (removed at hand-over). The feed cursor, already back at the top of
        the read, is kept (the feed reads through it); its sweep mark, which the export has no use for, is what
        said "started over", and is cleared once that is done."""
        self.abandoned = [*self.abandoned, self.batch]
        self.batch = restarted_batch(self.batch)
        self.parts, self.uploaded = [], []
        self.feed.sweep_done()

    def part_name(self, gzip: bool) -> str:
        return f"{self.batch}_part{len(self.parts) + 1:04d}.csv" + (".gz" if gzip else "")

    def part_staged(self, part: PartRecord) -> None:
        """The part is committed in Blob; saved together with the feed position after its last page."""
        self._expect(EXPORTING)
        self.parts.append(part)

    def export_done(self) -> None:
        self._expect(EXPORTING)
        if not self.feed.delta_link:
            raise RuntimeError("the export's read has not reached its delta link")
        self.state, self.delta_link = STAGED, self.feed.delta_link

    @property
    def exported(self) -> int:
        return sum(p.rows for p in self.parts)

    # -- upload, signal, follow

    def part_uploaded(self, name: str) -> None:
        """On SFTP under its final name: during the export (parts go up as they are staged) or after it."""
        self._expect(EXPORTING, STAGED)
        if name not in self.uploaded:
            self.uploaded.append(name)

    def pending_uploads(self) -> list[PartRecord]:
        return [p for p in self.parts if p.name not in self.uploaded]

    def upload_done(self) -> None:
        self._expect(STAGED)
        if self.pending_uploads():
            raise RuntimeError("parts are still to be uploaded")
        self.state = UPLOADED

    def signalling(self) -> None:
        self._expect(UPLOADED)
        self.state = SIGNALLING

    def signalled(self, at: float) -> None:
        self._expect(SIGNALLING)
        self.state, self.signalled_at = SIGNALLED, at

    def imported(self) -> None:
        self._expect(SIGNALLED)
        self.state = IMPORTED

    def handed_over(self) -> None:
        self._expect(IMPORTED)
        self.state = HANDED_OVER

    def fail(self, reason: str) -> None:
        self.failed_in, self.state, self.failure = self.state, FAILED, reason

    def retry(self) -> None:
        """Upload the staged parts again and signal once more, without exporting again."""
        if self.state != FAILED:
            raise NotRetryable(f"the transfer is {self.state}, not failed: nothing to retry")
        if not self.delta_link:
            raise NotRetryable("the transfer failed before its export ended: replay ingress to start over")
        self.state, self.uploaded, self.failure, self.failed_in, self.signalled_at = STAGED, [], "", "", 0.0

    def file_names(self) -> list[str]:
        return [p.name for p in self.parts]

    def _expect(self, *states: str) -> None:
        if self.state not in states:
            raise RuntimeError(f"initial transfer is {self.state}, expected {' or '.join(states)}")

    # -- storage

    def to_state(self) -> dict[str, Any]:
        state = dataclasses.asdict(self)
        state["feed"] = self.feed.to_state()
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TransferCursor:
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: v for k, v in state.items() if k in names}
        values["feed"] = ChangeFeedCursor.from_state(dict(state.get("feed") or {}) or {"path_pending": False})
        values["parts"] = [PartRecord(**p) for p in state.get("parts") or []]
        values["uploaded"] = list(state.get("uploaded") or [])
        values["abandoned"] = list(state.get("abandoned") or [])
        return cls(**values)

    def describe(self) -> str:
        if self.state == IDLE:
            return IDLE  # nothing asked: the table loads through the API, or has not started
        text = f"{self.state}:{self.exported:,}/{self.counted:,} rows:{len(self.parts)} parts"
        if self.state in (STAGED, UPLOADED, SIGNALLING) or (self.state == EXPORTING and self.uploaded):
            text += f":{len(self.uploaded)} uploaded"
        if self.state == FAILED:
            text += f":in {self.failed_in}: {self.failure}"
        return text


def request_transfer(checkpoints: CheckpointStore, table: str, generation: int, counted: int) -> TransferCursor:
    """Ingress's typed call: load `table` by file for its generation `generation` (idempotent)."""

    def change(checkpoint: Checkpoint[TransferCursor]) -> None:
        checkpoint.cursor.request(generation, counted)

    return checkpoints.update(FLOW, table, TransferCursor, change).cursor


def restarted_batch(batch: str) -> str:
    """The batch name of an export started over: `<batch>-r1`, then `-r2`... (letters, digits and '-' only)."""
    base, _, attempt = batch.rpartition("-r")
    if base and attempt.isdigit():
        return f"{base}-r{int(attempt) + 1}"
    return f"{batch}-r1"

"""Reading the files Campaign exports to its SFTP (email events, opt-outs), resumable by file and record.

New files are read in name order (Campaign names them with a timestamp, so name order is time order).
The cursor remembers the file being read and how many of its records are durable; the reader yields
batches of records, each with a `commit` step the caller calls once the batch's effects are durable (or
dead-lettered). A file is archived (moved to the archive folder) only after its last batch is committed.
A file that cannot be read at all (no header, a missing column...) stays where it is, is recorded in the
cursor with the reason, and does not block the files after it; it is tried again once it changes.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from shared.clients.sftp import RemoteFile
from shared.core.delimited import DEFAULT_DIALECT, DelimitedError, Dialect, Malformed, Record, read_records
from shared.flows.runner import RunContext

log = logging.getLogger("sync.file_feed")

CHUNK = 1024 * 1024


class FileStore(Protocol):
    """What the feed needs of an SFTP client (shared.clients.sftp.SftpClient has it)."""

    def list_ready(self, folder: str, pattern: str | None = None, *, min_age: float = 0.0) -> list[RemoteFile]: ...

    def download(self, remote_path: str, target: Any) -> int: ...

    def archive(self, remote_path: str, archive_folder: str) -> str: ...


@dataclasses.dataclass
class FileFeedCursor:
    KIND: ClassVar[str] = "file-feed"

    file: str = ""  # the file being read; "" between files
    records: int = 0  # records of it already durable (data records, header not counted)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # "name|size|mtime" -> why it is unreadable
    archived: int = 0  # files done since the cursor was created

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FileFeedCursor:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in state.items() if name in fields})

    def describe(self) -> str:
        where = f"{self.file}:{self.records}" if self.file else "between-files"
        return where + (f":unreadable={len(self.failed)}" if self.failed else "")


@dataclasses.dataclass
class FileBatch:
    """Records of one file (Record or Malformed, in file order) and the step past them."""

    file: str
    items: list[Record | Malformed]
    last_in_file: bool
    _commit: Callable[[], None] = dataclasses.field(repr=False)
    committed: bool = False

    def commit(self) -> None:
        if self.committed:
            raise RuntimeError("batch committed twice")
        self._commit()
        self.committed = True


class FileFeed:
    def __init__(
        self,
        store: FileStore,
        *,
        folder: str,
        archive_folder: str,
        pattern: str,
        dialect: Dialect = DEFAULT_DIALECT,
        required: Sequence[str] = (),
        batch_size: int = 500,
    ) -> None:
        self.store = store
        self.folder = folder
        self.archive_folder = archive_folder
        self.pattern = pattern
        self.dialect = dialect
        self.required = tuple(required)
        self.batch_size = batch_size

    def pending(self, cursor: FileFeedCursor) -> list[RemoteFile]:
        """Files waiting, in name order, without the unreadable ones that have not changed since."""
        files = sorted(self.store.list_ready(self.folder, self.pattern), key=lambda f: f.name)
        return [f for f in files if _signature(f) not in cursor.failed]

    def batches(self, cursor: FileFeedCursor, ctx: RunContext, *, save: Callable[[], None]) -> Iterator[FileBatch]:
        """Batches from the cursor on, file after file, until no file is waiting."""
        files = self.pending(cursor)
        names = {f.name for f in files}
        if cursor.file and cursor.file not in names:
            # Archived after its last batch, before the cursor said so (or removed by someone): move on.
            cursor.file, cursor.records = "", 0
            save()
        for remote in files:
            ctx.check_time()
            if cursor.file and remote.name != cursor.file:
                continue  # the file in progress comes first; later names follow it
            yield from self._file(remote, cursor, ctx, save)

    def _file(
        self, remote: RemoteFile, cursor: FileFeedCursor, ctx: RunContext, save: Callable[[], None]
    ) -> Iterator[FileBatch]:
        skip = cursor.records if cursor.file == remote.name else 0
        cursor.file, cursor.records = remote.name, skip
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            self.store.download(remote.path, spool)
            spool.seek(0)
            chunks = iter(lambda: spool.read(CHUNK), b"")
            try:
                items = read_records(chunks, self.dialect, required=self.required)
                batch: list[Record | Malformed] = []
                seen = 0
                for item in items:
                    seen += 1
                    if seen <= skip:
                        continue  # durable already
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        yield from self._handed(self._batch(remote, batch, cursor, ctx, save, last=False))
                        batch = []
                        ctx.check_time()
            except DelimitedError as exc:
                self._unreadable(remote, str(exc), cursor, ctx, save)
                return
        yield from self._handed(self._batch(remote, batch, cursor, ctx, save, last=True))

    @staticmethod
    def _handed(batch: FileBatch) -> Iterator[FileBatch]:
        yield batch
        if not batch.committed:
            raise RuntimeError("a batch must be committed before the next one is read")

    def _batch(
        self,
        remote: RemoteFile,
        items: list[Record | Malformed],
        cursor: FileFeedCursor,
        ctx: RunContext,
        save: Callable[[], None],
        *,
        last: bool,
    ) -> FileBatch:
        def commit() -> None:
            cursor.records += len(items)
            save()
            if last and ctx.dry_run:  # a dry run moves nothing (and saves nothing): go on to the next file
                cursor.file, cursor.records = "", 0
            elif last:
                self.store.archive(remote.path, self.archive_folder)
                cursor.file, cursor.records = "", 0
                cursor.archived += 1
                save()

        return FileBatch(remote.name, items, last, commit)

    def _unreadable(
        self, remote: RemoteFile, reason: str, cursor: FileFeedCursor, ctx: RunContext, save: Callable[[], None]
    ) -> None:
        log.error("file_feed.unreadable file=%s reason=%s", remote.name, reason)
        ctx.note(f"{remote.name}: cannot be read ({reason}); left in place, later files go on")
        cursor.failed[_signature(remote)] = reason
        cursor.file, cursor.records = "", 0
        save()


def _signature(remote: RemoteFile) -> str:
    """A file replaced under the same name (fixed by an operator) is tried again."""
    return f"{remote.name}|{remote.size}|{remote.mtime}"

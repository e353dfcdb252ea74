"""Pushing staged parts to Campaign's SFTP: one part at a time, or in the background while the export goes on.

A part goes up from its committed blob under a temporary name, is size-checked and renamed (SftpClient), so a
file under its final name is always whole. Uploading while exporting is an optimisation only: the export hands
each part over as soon as it is committed in Blob; the flow records a part as uploaded (in its own thread,
with its next checkpoint) only when the upload has finished and the part is still the one staged under that
name. The first failure stops the background uploads; what is left goes up in the upload step, which raises
the failure if it is still there, so an outage costs one attempt here, not one per part.
"""

from __future__ import annotations

import logging
import posixpath
import queue
import threading
from collections.abc import Callable
from types import TracebackType

from shared.clients.sftp import SftpClient
from shared.flows.initial_transfer_cursor import PartRecord
from shared.state.staging import BlobStaging

log = logging.getLogger("sync.initial_transfer")


class IntegrityError(Exception):
    """What landed on SFTP is not what was staged."""


def upload_part(sftp: SftpClient, staging: BlobStaging, batch: str, folder: str, part: PartRecord) -> None:
    with staging.open_reader(batch, part.name) as source:
        size = sftp.upload(source, posixpath.join(folder, part.name))
    if size != part.size:
        raise IntegrityError(f"{part.name}: {size} bytes on SFTP, {part.size} staged")


class BackgroundUploads:
    """Uploads parts in submission order on one thread with its own SFTP session."""

    def __init__(self, sftp: Callable[[], SftpClient], staging: BlobStaging, batch: str, folder: str) -> None:
        self._sftp = sftp
        self._staging = staging
        self._batch = batch
        self._folder = folder
        self._parts: queue.Queue[PartRecord | None] = queue.Queue()
        self._lock = threading.Lock()
        self._finished: list[PartRecord] = []
        self._cancelled = threading.Event()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"part-uploads-{batch}", daemon=True)
        self._thread.start()

    def submit(self, part: PartRecord) -> None:
        self._parts.put(part)

    def finished(self) -> list[PartRecord]:
        """Parts uploaded since the last call."""
        with self._lock:
            done, self._finished = self._finished, []
        return done

    def close(self, *, cancel: bool = False) -> list[PartRecord]:
        """Wait for the queued parts (or, with `cancel`, only for the one in flight); the parts not yet taken."""
        if cancel:
            self._cancelled.set()
        self._parts.put(None)
        self._thread.join()
        return self.finished()

    def __enter__(self) -> BackgroundUploads:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread.is_alive():
            self.close(cancel=exc is not None)

    def _work(self) -> None:
        try:
            with self._sftp() as sftp:
                sftp.makedirs(self._folder)
                while (part := self._parts.get()) is not None:
                    if self._cancelled.is_set():
                        continue
                    upload_part(sftp, self._staging, self._batch, self._folder, part)
                    with self._lock:
                        self._finished.append(part)
        except Exception as exc:  # the upload step goes over the rest and raises it if it is still there
            self.failure = exc
            log.warning("initial_transfer.background_upload_stopped batch=%s error=%s", self._batch,
                        type(exc).__name__)  # fmt: skip
            while self._parts.get() is not None:
                pass

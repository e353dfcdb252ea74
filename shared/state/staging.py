"""Blob staging for file transfers: parts uploaded as blocks, then a manifest that names them.

A part becomes visible only when its block list is committed, and the manifest is written last, so a
reader that finds a manifest finds every part it lists, whole, with the size and hash it records.

Block ids are the block's number, so writing a part again (after a crash cut it) stages the same ids
afresh and commits only the new list: blocks staged by the cut attempt and never committed are dropped
by that commit, and a part committed before the crash is replaced whole. Nothing is ever appended.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient

BLOCK_SIZE = 4 * 1024 * 1024
READ_BUFFER = 1024 * 1024
MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class StagedPart:
    name: str
    size: int
    sha256: str
    rows: int = 0


class BlobStaging:
    def __init__(self, container: ContainerClient, block_size: int = BLOCK_SIZE) -> None:
        self._container = container
        self._block_size = block_size

    def write_part(self, batch: str, name: str, chunks: Iterable[bytes], rows: int = 0) -> StagedPart:
        """Upload a stream as blocks of `block_size` and commit them; memory stays at one block."""
        part = self.open_part(batch, name)
        for chunk in chunks:
            part.write(chunk)
        return part.commit(rows)

    def open_part(self, batch: str, name: str) -> PartWriter:
        """A part written as it is produced: `write()` bytes, then `commit()`; memory stays at one block."""
        return PartWriter(self._container.get_blob_client(f"{batch}/{name}"), name, self._block_size)

    def open_reader(self, batch: str, name: str, *, window: int | None = None) -> io.BufferedReader:
        """A committed part as a seekable binary stream, read by ranges (an SFTP upload can resume in it)."""
        raw = BlobReader(self._container.get_blob_client(f"{batch}/{name}"), window or self._block_size)
        return io.BufferedReader(raw, buffer_size=READ_BUFFER)

    def write_manifest(self, batch: str, parts: list[StagedPart], **extra: Any) -> None:
        body = {"batch": batch, "parts": [dataclasses.asdict(p) for p in parts], **extra}
        self._container.upload_blob(f"{batch}/{MANIFEST}", json.dumps(body, sort_keys=True), overwrite=True)

    def read_manifest(self, batch: str) -> dict[str, Any] | None:
        try:
            data = self._container.download_blob(f"{batch}/{MANIFEST}").readall()
        except ResourceNotFoundError:
            return None
        return dict(json.loads(data))

    def read_part(self, batch: str, name: str) -> Iterator[bytes]:
        yield from self._container.download_blob(f"{batch}/{name}").chunks()

    def delete_batch(self, batch: str) -> None:
        for blob in self._container.list_blobs(name_starts_with=f"{batch}/"):
            self._container.delete_blob(blob.name)


class PartWriter:
    """Stages full blocks as bytes arrive and commits the block list at the end (the SHA-256 on the way)."""

    def __init__(self, blob: BlobClient, name: str, block_size: int) -> None:
        self._blob = blob
        self._name = name
        self._block_size = block_size
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._digest = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size + len(self._buffer)

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= self._block_size:
            self._stage(bytes(self._buffer[: self._block_size]))
            del self._buffer[: self._block_size]

    def commit(self, rows: int = 0) -> StagedPart:
        if self._buffer:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        self._blob.commit_block_list(self._blocks)
        return StagedPart(name=self._name, size=self._size, sha256=self._digest.hexdigest(), rows=rows)

    def _stage(self, block: bytes) -> None:
        block_id = base64.b64encode(f"{len(self._blocks):08d}".encode()).decode()
        self._blob.stage_block(block_id, block)
        self._blocks.append(BlobBlock(block_id=block_id))
        self._digest.update(block)
        self._size += len(block)


class BlobReader(io.RawIOBase):
    """Read-only, seekable view of a blob, fetched one window at a time (memory stays at one window)."""

    def __init__(self, blob: BlobClient, window: int) -> None:
        super().__init__()
        self._blob = blob
        self._window = window
        self._length = int(blob.get_blob_properties().size)
        self._position = 0
        self._cached_at = 0
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._position >= self._length or not len(view):
            return 0
        start = self._position - self._cached_at
        if not 0 <= start < len(self._cached):
            length = min(self._window, self._length - self._position)
            self._cached = self._blob.download_blob(offset=self._position, length=length).readall()
            self._cached_at, start = self._position, 0
        count = min(len(view), len(self._cached) - start)
        view[:count] = self._cached[start : start + count]
        self._position += count
        return count

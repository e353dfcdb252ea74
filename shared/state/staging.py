"""Blob staging for file transfers: parts uploaded as blocks, then a manifest that names them.

A part becomes visible only when its block list is committed, and the manifest is written last, so a
reader that finds a manifest finds every part it lists, whole, with the size and hash it records.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContainerClient

BLOCK_SIZE = 4 * 1024 * 1024
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
        blob = self._container.get_blob_client(f"{batch}/{name}")
        digest = hashlib.sha256()
        blocks: list[BlobBlock] = []
        size = 0
        for block in _rechunk(chunks, self._block_size):
            block_id = base64.b64encode(f"{len(blocks):08d}".encode()).decode()
            blob.stage_block(block_id, block)
            blocks.append(BlobBlock(block_id=block_id))
            digest.update(block)
            size += len(block)
        blob.commit_block_list(blocks)
        return StagedPart(name=name, size=size, sha256=digest.hexdigest(), rows=rows)

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


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    buffer = bytearray()
    for chunk in chunks:
        buffer.extend(chunk)
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)

"""A part being written: compressed and staged on a thread of its own, its failures raised in the flow's thread."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from shared.core.file_shape import FileShaper
from shared.flows.initial_transfer import PartBuilder
from shared.settings import InitialTransferSettings
from shared.state.staging import StagedPart

OPTIONS = InitialTransferSettings(separator=";", encoding="utf-8", gzip=True, part_rows=10, schedule="x",
                                  import_timeout_hours=1.0)  # fmt: skip


class MemoryWriter:
    def __init__(self, fail_after: int | None = None) -> None:
        self.data = b""
        self.writes = 0
        self.fail_after = fail_after
        self.committed = False

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.fail_after is not None and self.writes > self.fail_after:
            raise OSError("blob service unreachable")
        self.data += data

    def commit(self, rows: int = 0) -> StagedPart:
        self.committed = True
        return StagedPart(name="p", size=len(self.data), sha256="h", rows=rows)


def builder(writer: Any) -> PartBuilder:
    return PartBuilder(writer, "p.csv.gz", FileShaper(("a", "externalId"), {}, ";"), OPTIONS)


def test_lines_arrive_compressed_in_order_and_counted() -> None:
    writer = MemoryWriter()
    part = builder(writer)
    for n in range(50):
        part.write(f"v{n};k{n}\n".encode(), 1)
    record = part.commit()
    text = gzip.decompress(writer.data).decode()
    assert text.splitlines() == ["a;externalId", *(f"v{n};k{n}" for n in range(50))]
    assert (record.rows, record.size, writer.committed) == (50, len(writer.data), True)


def test_a_staging_failure_is_raised_in_the_flow_and_nothing_is_committed() -> None:
    writer = MemoryWriter(fail_after=0)
    part = builder(writer)
    with pytest.raises(OSError, match="unreachable"):
        for _ in range(20):  # the failure surfaces at a later write or at the commit, never lost
            part.write(b"x;y\n" * 1000, 1000)
        part.commit()
    assert not writer.committed
    part.abandon()  # and stopping it does not hang


def test_an_abandoned_part_stops_its_thread_uncommitted() -> None:
    writer = MemoryWriter()
    part = builder(writer)
    part.write(b"x;y\n", 1)
    part.abandon()
    assert not part._thread.is_alive() and not writer.committed

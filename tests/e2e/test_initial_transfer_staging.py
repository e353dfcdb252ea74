"""Blob staging as the initial transfer uses it, on a real Azurite: a part written again after a crash replaces
what the cut attempt staged (never appended to), and a committed part reads back as a seekable ranged stream."""

from __future__ import annotations

import hashlib
import io

import pytest

from shared.state.staging import BlobStaging
from shared.state.store import StateStore


@pytest.fixture
def staging(storage_connection_string: str, table_prefix: str) -> BlobStaging:
    store = StateStore.from_connection_string(storage_connection_string, prefix=table_prefix, container=table_prefix)
    return BlobStaging(store.container(), block_size=1000)


def test_a_part_cut_before_its_commit_is_replaced_by_the_rewrite(staging: BlobStaging) -> None:
    cut = staging.open_part("b1", "t_part0001.csv")
    cut.write(b"A" * 3500)  # three blocks staged, never committed: the process died here
    assert cut.size == 3500
    rewrite = staging.open_part("b1", "t_part0001.csv")
    rewrite.write(b"B" * 1200)  # fewer blocks this time, under the same ids
    part = rewrite.commit(rows=12)
    assert (part.size, part.rows, part.sha256) == (1200, 12, hashlib.sha256(b"B" * 1200).hexdigest())
    assert b"".join(staging.read_part("b1", "t_part0001.csv")) == b"B" * 1200
    blob = staging._container.get_blob_client("b1/t_part0001.csv")
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 2 and uncommitted == []  # the cut attempt's third block is gone


def test_a_committed_part_written_again_is_replaced_whole(staging: BlobStaging) -> None:
    staging.write_part("b2", "t_part0001.csv", [b"old" * 1000])
    staging.write_part("b2", "t_part0001.csv", [b"new"])
    assert b"".join(staging.read_part("b2", "t_part0001.csv")) == b"new"


def test_reader_seeks_and_reads_by_windows(staging: BlobStaging) -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes
    staging.write_part("b3", "p.csv", [data])
    reader = staging.open_reader("b3", "p.csv", window=1500)
    assert reader.read(10) == data[:10]
    reader.seek(7000)
    assert reader.tell() == 7000 and reader.read(3000) == data[7000:10000]
    reader.seek(-40, io.SEEK_END)
    assert reader.read() == data[-40:] and reader.read(5) == b""
    reader.seek(0)
    assert reader.read() == data

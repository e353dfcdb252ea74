"""Uploads against the real sshd: temporary name, size check, atomic rename, dropped connections, retries."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.sshd import SshdServer
from shared.clients.sftp import (
    PART_SUFFIX,
    RemoteFileNotFound,
    SftpClient,
    SftpConnectionLost,
    SftpError,
)
from shared.http.retry import RetryPolicy
from tests.fixtures.ports import free_port
from tests.fixtures.sftp import RecordingSleep

MakeClient = Callable[..., SftpClient]
MiB = 1024 * 1024
NO_RETRY = RetryPolicy(max_attempts=1)
RETRY = RetryPolicy(max_attempts=3, base_delay=2.0, jitter=0.5)


def _random_file(path: Path, size: int) -> str:
    """Write `size` random bytes in pieces (no big buffer in memory); return their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            piece = os.urandom(min(left, 4 * MiB))
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(4 * MiB):
            digest.update(piece)
    return digest.hexdigest()


class FaultySource:
    """A seekable source that runs `fault` once, after `after` bytes were read, and records its seeks."""

    def __init__(self, path: Path, after: int, fault: Callable[[], object]) -> None:
        self._file = path.open("rb")
        self._after = after
        self._fault: Callable[[], object] | None = fault
        self.read_bytes = 0
        self.seeks: list[int] = []

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.read_bytes += len(data)
        if self._fault is not None and self.read_bytes >= self._after:
            fault, self._fault = self._fault, None
            fault()
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        self.seeks.append(offset)
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()


class Stream(FaultySource):
    """The same, but not seekable (like a network stream)."""

    def seekable(self) -> bool:
        return False


# -- plain uploads -----------------------------------------------------------------------------------------------


def test_upload_of_a_path_publishes_the_file_under_its_final_name_only(
    sftp_client: SftpClient, sftp_folder: Path, tmp_path: Path
) -> None:
    local = tmp_path / "contacts.csv"
    local.write_bytes(b"id;email\n1;a@example.com\n")
    remote = sftp_folder / "contacts.csv"

    assert sftp_client.upload(local, str(remote)) == local.stat().st_size

    assert remote.read_bytes() == local.read_bytes()
    assert sorted(p.name for p in sftp_folder.iterdir()) == ["contacts.csv"]  # no .part left behind


def test_upload_of_a_file_object_sends_the_rest_from_its_position(sftp_client: SftpClient, sftp_folder: Path) -> None:
    source = io.BytesIO(b"HEADER|payload")
    source.seek(len(b"HEADER|"))
    assert sftp_client.upload(source, str(sftp_folder / "x.bin")) == len(b"payload")
    assert (sftp_folder / "x.bin").read_bytes() == b"payload"


def test_upload_of_an_empty_file(sftp_client: SftpClient, sftp_folder: Path) -> None:
    assert sftp_client.upload(io.BytesIO(b""), str(sftp_folder / "empty.csv")) == 0
    assert (sftp_folder / "empty.csv").read_bytes() == b""


def test_upload_replaces_an_existing_file(sftp_client: SftpClient, sftp_folder: Path) -> None:
    remote = sftp_folder / "daily.csv"
    remote.write_bytes(b"old content that is longer than the new one")
    sftp_client.upload(io.BytesIO(b"new"), str(remote))
    assert remote.read_bytes() == b"new"


def test_upload_into_a_missing_folder_is_a_remote_error_not_retried(
    sftp_client: SftpClient, sftp_folder: Path, sftp_sleep: RecordingSleep
) -> None:
    with pytest.raises(RemoteFileNotFound) as caught:
        sftp_client.upload(io.BytesIO(b"x"), str(sftp_folder / "missing" / "x.csv"))
    assert not caught.value.retryable
    assert sftp_sleep.calls == []


def test_upload_of_100_mb(sftp_client: SftpClient, sftp_folder: Path, tmp_path: Path) -> None:
    size = 100 * MiB
    local = tmp_path / "big.bin"
    expected = _random_file(local, size)
    remote = sftp_folder / "big.bin"

    assert sftp_client.upload(local, str(remote)) == size

    assert remote.stat().st_size == size
    assert _sha256(remote) == expected
    assert not (sftp_folder / ("big.bin" + PART_SUFFIX)).exists()


# -- dropped connections -----------------------------------------------------------------------------------------


def test_drop_mid_upload_leaves_no_file_under_the_final_name_and_a_retry_completes(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, tmp_path: Path
) -> None:
    size = 24 * MiB
    local = tmp_path / "export.csv"
    expected = _random_file(local, size)
    remote = sftp_folder / "export.csv"
    part = sftp_folder / ("export.csv" + PART_SUFFIX)
    client = make_sftp_client(retry=NO_RETRY)
    source = FaultySource(local, after=8 * MiB, fault=sshd_server.drop_connections)

    with pytest.raises(SftpConnectionLost) as caught:
        client.upload(source, str(remote))
    source.close()

    assert caught.value.retryable
    assert f"{sshd_server.host}:{sshd_server.port}" in str(caught.value)
    assert not remote.exists()  # nothing incomplete under the final name...
    assert 0 < part.stat().st_size < size  # ...only the partial file under the temporary name
    assert client.list_ready(str(sftp_folder)) == []  # and readers do not see it
    with pytest.raises(RemoteFileNotFound):
        client.stat(str(remote))

    assert client.upload(local, str(remote)) == size  # a later call starts afresh and completes

    assert _sha256(remote) == expected
    assert not part.exists()
    assert [f.name for f in client.list_ready(str(sftp_folder))] == ["export.csv"]


def test_drop_mid_upload_keeps_the_previous_version_readable(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, tmp_path: Path
) -> None:
    remote = sftp_folder / "daily.csv"
    remote.write_bytes(b"yesterday's complete file\n")
    local = tmp_path / "daily.csv"
    expected = _random_file(local, 16 * MiB)
    source = FaultySource(local, after=4 * MiB, fault=sshd_server.drop_connections)

    with pytest.raises(SftpConnectionLost):
        make_sftp_client(retry=NO_RETRY).upload(source, str(remote))
    source.close()
    assert remote.read_bytes() == b"yesterday's complete file\n"

    make_sftp_client().upload(local, str(remote))
    assert _sha256(remote) == expected


def test_drop_mid_upload_resumes_within_the_same_call(
    make_sftp_client: MakeClient,
    sshd_server: SshdServer,
    sftp_folder: Path,
    tmp_path: Path,
    sftp_sleep: RecordingSleep,
) -> None:
    size = 24 * MiB
    local = tmp_path / "export.csv"
    expected = _random_file(local, size)
    remote = sftp_folder / "export.csv"
    source = FaultySource(local, after=8 * MiB, fault=sshd_server.drop_connections)

    assert make_sftp_client(retry=RETRY).upload(source, str(remote)) == size
    source.close()

    assert _sha256(remote) == expected
    assert sftp_sleep.calls == [2.0]  # one backoff of base_delay (rand is 0 in tests)
    resumed_at = source.seeks[-1]
    assert 0 < resumed_at <= 8 * MiB  # continued from what the server held...
    assert source.read_bytes < 2 * size  # ...instead of sending everything again
    assert not (sftp_folder / ("export.csv" + PART_SUFFIX)).exists()


def test_resume_restarts_from_zero_when_the_partial_file_was_changed(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, tmp_path: Path
) -> None:
    local = tmp_path / "export.csv"
    expected = _random_file(local, 16 * MiB)
    remote = sftp_folder / "export.csv"
    part = sftp_folder / ("export.csv" + PART_SUFFIX)

    def drop_and_tamper() -> None:
        sshd_server.drop_connections()
        held = part.stat().st_size
        with part.open("r+b") as f:  # someone else scribbles over the tail of the partial file
            f.seek(max(0, held - 100))
            f.write(b"\0" * 100)

    source = FaultySource(local, after=8 * MiB, fault=drop_and_tamper)
    assert make_sftp_client(retry=RETRY).upload(source, str(remote)) == 16 * MiB
    source.close()

    assert _sha256(remote) == expected
    assert source.seeks[-1] == 0  # the resume check failed, so the upload started over


def test_a_stale_partial_file_from_an_earlier_call_is_never_reused(
    sftp_client: SftpClient, sftp_folder: Path, tmp_path: Path
) -> None:
    local = tmp_path / "export.csv"
    local.write_bytes(b"B" * 300_000)
    part = sftp_folder / ("export.csv" + PART_SUFFIX)
    part.write_bytes(b"A" * 200_000)  # left over by a crashed run, from an older version of the file

    sftp_client.upload(local, str(sftp_folder / "export.csv"))

    assert (sftp_folder / "export.csv").read_bytes() == b"B" * 300_000


def test_drop_while_uploading_a_stream_fails_at_once_and_publishes_nothing(
    make_sftp_client: MakeClient,
    sshd_server: SshdServer,
    sftp_folder: Path,
    tmp_path: Path,
    sftp_sleep: RecordingSleep,
) -> None:
    local = tmp_path / "stream.bin"
    _random_file(local, 16 * MiB)
    source = Stream(local, after=4 * MiB, fault=sshd_server.drop_connections)
    with pytest.raises(SftpConnectionLost, match="cannot be rewound"):
        make_sftp_client(retry=RETRY).upload(source, str(sftp_folder / "stream.bin"))
    source.close()
    assert not (sftp_folder / "stream.bin").exists()
    assert sftp_sleep.calls == []  # no pointless wait and reconnect: the data read so far is gone


def test_unreachable_server_is_retried_within_the_policy_then_reported(
    make_sftp_client: MakeClient, sftp_sleep: RecordingSleep
) -> None:
    port = free_port()  # nothing listens there
    client = make_sftp_client(port=port, retry=RetryPolicy(max_attempts=3, base_delay=1.0, jitter=0.0))
    with pytest.raises(SftpConnectionLost) as caught:
        client.upload(io.BytesIO(b"x"), "/tmp/never.csv")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "after 3 attempt(s)" in str(caught.value)
    assert sftp_sleep.calls == [1.0, 2.0]
    assert isinstance(caught.value, SftpError) and caught.value.retryable


def test_total_wait_is_capped(make_sftp_client: MakeClient, sftp_sleep: RecordingSleep) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, jitter=0.0, max_total_wait=3.5)
    with pytest.raises(SftpConnectionLost):
        make_sftp_client(port=free_port(), retry=policy).connect()
    assert sftp_sleep.calls == [1.0, 2.0]  # the next wait (4 s) would pass the 3.5 s cap

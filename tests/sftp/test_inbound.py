"""Inbound exports against the real sshd: listing ready files, download (with drops), archive, folders."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from sandbox.sshd import SshdServer
from shared.clients.sftp import (
    RemoteFile,
    RemoteFileNotFound,
    SftpClient,
    SftpConnectionLost,
    SftpRemoteError,
    is_temporary_name,
)
from shared.http.retry import RetryPolicy
from tests.fixtures.sftp import RecordingSleep

MakeClient = Callable[..., SftpClient]
MiB = 1024 * 1024
RETRY = RetryPolicy(max_attempts=3, base_delay=2.0)


def _put(folder: Path, name: str, data: bytes, mtime: int | None = None) -> Path:
    path = folder / name
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


class FaultySink(io.BytesIO):
    """A target that runs `fault` once, after `after` bytes were written."""

    def __init__(self, after: int, fault: Callable[[], object], seekable: bool = True) -> None:
        super().__init__()
        self._after = after
        self._fault: Callable[[], object] | None = fault
        self._seekable = seekable

    def write(self, data: bytes) -> int:  # type: ignore[override]
        written = super().write(data)
        if self._fault is not None and self.tell() >= self._after:
            fault, self._fault = self._fault, None
            fault()
        return written

    def seekable(self) -> bool:
        return self._seekable


# -- listing -----------------------------------------------------------------------------------------------------


def test_list_ready_skips_files_still_being_written_and_sorts_oldest_first(
    sftp_client: SftpClient, sftp_folder: Path
) -> None:
    _put(sftp_folder, "events_2.csv", b"22", mtime=1_700_000_200)
    _put(sftp_folder, "events_1.csv", b"1", mtime=1_700_000_100)
    _put(sftp_folder, "events_3.csv.part", b"partial")  # our own uploads in progress
    _put(sftp_folder, "events_4.csv.PART", b"partial")
    _put(sftp_folder, "events_5.csv.filepart", b"partial")  # WinSCP
    _put(sftp_folder, "events_6.tmp", b"partial")
    _put(sftp_folder, ".events_7.csv.Xy12", b"partial")  # rsync-style hidden temporary name
    (sftp_folder / "sub").mkdir()  # folders are not files
    os.symlink(sftp_folder / "events_1.csv", sftp_folder / "link.csv")  # nor are links

    ready = sftp_client.list_ready(str(sftp_folder))

    assert ready == [
        RemoteFile("events_1.csv", str(sftp_folder / "events_1.csv"), 1, 1_700_000_100),
        RemoteFile("events_2.csv", str(sftp_folder / "events_2.csv"), 2, 1_700_000_200),
    ]


def test_list_ready_filters_by_pattern(sftp_client: SftpClient, sftp_folder: Path) -> None:
    for name in ("optout_1.csv", "optout_2.csv.gz", "events_1.csv", "OPTOUT_3.csv"):
        _put(sftp_folder, name, b"x")
    names = [f.name for f in sftp_client.list_ready(str(sftp_folder), "optout_*")]
    assert sorted(names) == ["optout_1.csv", "optout_2.csv.gz"]


def test_list_ready_min_age_skips_files_modified_too_recently(make_sftp_client: MakeClient, sftp_folder: Path) -> None:
    now = 1_800_000_000.0
    _put(sftp_folder, "settled.csv", b"x", mtime=int(now) - 120)
    _put(sftp_folder, "fresh.csv", b"x", mtime=int(now) - 10)  # a writer without temporary names may be busy
    with make_sftp_client(clock=lambda: now) as client:
        assert [f.name for f in client.list_ready(str(sftp_folder), min_age=60)] == ["settled.csv"]
        assert len(client.list_ready(str(sftp_folder))) == 2


def test_list_of_a_missing_folder_is_not_found(sftp_client: SftpClient, sftp_folder: Path) -> None:
    with pytest.raises(RemoteFileNotFound, match="missing"):
        sftp_client.list_ready(str(sftp_folder / "missing"))


@pytest.mark.parametrize(
    ("name", "temporary"),
    [("a.csv", False), ("a.csv.part", True), ("a.partial", True), (".a.csv", True), ("a.TMP", True), ("part", False)],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert is_temporary_name(name) is temporary


# -- download ----------------------------------------------------------------------------------------------------


def test_download_to_a_path_writes_it_whole_under_its_name(
    sftp_client: SftpClient, sftp_folder: Path, tmp_path: Path
) -> None:
    data = os.urandom(3 * MiB + 17)
    _put(sftp_folder, "events.csv", data)
    local = tmp_path / "events.csv"

    assert sftp_client.download(str(sftp_folder / "events.csv"), local) == len(data)

    assert local.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]  # no local .part left


def test_download_into_a_file_object(sftp_client: SftpClient, sftp_folder: Path) -> None:
    _put(sftp_folder, "empty.csv", b"")
    content = b"id;optout\n1;true\n"
    _put(sftp_folder, "small.csv", content)
    sink = io.BytesIO(b"kept:")
    sink.seek(0, io.SEEK_END)
    assert sftp_client.download(str(sftp_folder / "empty.csv"), sink) == 0
    assert sftp_client.download(str(sftp_folder / "small.csv"), sink) == len(content)
    assert sink.getvalue() == b"kept:" + content  # written from the sink's position


def test_download_of_a_missing_file_creates_nothing_locally(
    sftp_client: SftpClient, sftp_folder: Path, tmp_path: Path, sftp_sleep: RecordingSleep
) -> None:
    with pytest.raises(RemoteFileNotFound):
        sftp_client.download(str(sftp_folder / "missing.csv"), tmp_path / "missing.csv")
    assert list(tmp_path.iterdir()) == []
    assert sftp_sleep.calls == []


def test_drop_mid_download_resumes_where_it_stopped(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, sftp_sleep: RecordingSleep
) -> None:
    data = os.urandom(16 * MiB)
    _put(sftp_folder, "events.csv", data)
    sink = FaultySink(after=2 * MiB, fault=sshd_server.drop_connections, seekable=False)

    assert make_sftp_client(retry=RETRY).download(str(sftp_folder / "events.csv"), sink) == len(data)

    assert sink.getvalue() == data  # no gap, no duplicate: resumed at the exact byte
    assert sftp_sleep.calls == [2.0]


def test_drop_mid_download_restarts_when_the_remote_file_changed(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path
) -> None:
    remote = _put(sftp_folder, "events.csv", os.urandom(16 * MiB), mtime=1_700_000_000)
    replacement = os.urandom(12 * MiB)

    def drop_and_replace() -> None:
        sshd_server.drop_connections()
        _put(sftp_folder, "events.csv", replacement, mtime=1_700_000_500)

    sink = FaultySink(after=2 * MiB, fault=drop_and_replace)
    assert make_sftp_client(retry=RETRY).download(str(remote), sink) == len(replacement)
    assert sink.getvalue() == replacement


def test_download_that_keeps_dropping_gives_up_and_leaves_no_local_file(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, tmp_path: Path
) -> None:
    _put(sftp_folder, "events.csv", os.urandom(8 * MiB))
    client = make_sftp_client(retry=RetryPolicy(max_attempts=1))
    local = tmp_path / "events.csv"

    # Drop the session once the first block has been read (and written to the local .part file).
    real_readv = paramiko.SFTPFile.readv
    dropped: list[int] = []

    def dropping_readv(self: paramiko.SFTPFile, chunks: list[tuple[int, int]], *args: object) -> Iterator[bytes]:
        for number, block in enumerate(real_readv(self, chunks, *args)):
            if number == 1 and not dropped:
                dropped.append(sshd_server.drop_connections())
            yield block

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paramiko.SFTPFile, "readv", dropping_readv)
        with pytest.raises(SftpConnectionLost):
            client.download(str(sftp_folder / "events.csv"), local)
    assert dropped
    assert list(tmp_path.iterdir()) == []


# -- archive -----------------------------------------------------------------------------------------------------


def test_archive_moves_the_file_into_a_new_archive_folder(sftp_client: SftpClient, sftp_folder: Path) -> None:
    _put(sftp_folder, "events_1.csv", b"done")
    archive = sftp_folder / "archive" / "2026"

    moved = sftp_client.archive(str(sftp_folder / "events_1.csv"), str(archive))

    assert moved == str(archive / "events_1.csv")
    assert (archive / "events_1.csv").read_bytes() == b"done"
    assert not (sftp_folder / "events_1.csv").exists()
    assert sftp_client.list_ready(str(sftp_folder)) == []


def test_archive_never_overwrites_an_archived_file_of_the_same_name(sftp_client: SftpClient, sftp_folder: Path) -> None:
    archive = sftp_folder / "archive"
    archive.mkdir()
    _put(archive, "events.csv.gz", b"first")
    _put(archive, "events-1.csv.gz", b"second")
    _put(sftp_folder, "events.csv.gz", b"third")

    moved = sftp_client.archive(str(sftp_folder / "events.csv.gz"), str(archive))

    assert moved == str(archive / "events-2.csv.gz")
    assert [(archive / n).read_bytes() for n in ("events.csv.gz", "events-1.csv.gz", "events-2.csv.gz")] == [
        b"first",
        b"second",
        b"third",
    ]


def test_archive_of_a_missing_file_is_not_found(sftp_client: SftpClient, sftp_folder: Path) -> None:
    with pytest.raises(RemoteFileNotFound):
        sftp_client.archive(str(sftp_folder / "gone.csv"), str(sftp_folder / "archive"))


def test_archive_survives_a_drop_right_before_it(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, sftp_sleep: RecordingSleep
) -> None:
    _put(sftp_folder, "events.csv", b"done")
    client = make_sftp_client(retry=RETRY)
    client.connect()
    sshd_server.drop_connections()

    assert client.archive(str(sftp_folder / "events.csv"), str(sftp_folder / "archive")).endswith("/events.csv")
    assert (sftp_folder / "archive" / "events.csv").read_bytes() == b"done"


# -- folders and stat --------------------------------------------------------------------------------------------


def test_makedirs_creates_missing_parents_and_accepts_existing(sftp_client: SftpClient, sftp_folder: Path) -> None:
    target = sftp_folder / "d365_loads" / "imports" / "contacts"
    sftp_client.makedirs(str(target))
    sftp_client.makedirs(str(target))  # again: fine
    assert target.is_dir()


def test_makedirs_through_a_file_is_a_remote_error(sftp_client: SftpClient, sftp_folder: Path) -> None:
    _put(sftp_folder, "file", b"x")
    with pytest.raises(SftpRemoteError, match="not a folder"):
        sftp_client.makedirs(str(sftp_folder / "file" / "sub"))


def test_stat(sftp_client: SftpClient, sftp_folder: Path) -> None:
    _put(sftp_folder, "a.csv", b"12345", mtime=1_700_000_000)
    assert sftp_client.stat(str(sftp_folder / "a.csv")) == RemoteFile(
        "a.csv", str(sftp_folder / "a.csv"), 5, 1_700_000_000
    )

"""Hostile file names on Campaign's SFTP: a name that is not one safe file of the configured folder (a way out
of it, a control character that would forge a log line, a length no file system has) is skipped with a logged
reason and never read, moved or written; the safe files beside it go on. Against the real sshd: names a file
system can hold are real files; names only a broken or hostile server would list are put into the real
session's listing."""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Callable
from typing import Any

import paramiko
import pytest

from shared.clients.sftp import MAX_NAME, SftpClient, unsafe_name
from shared.core.delimited import Record
from shared.flows.file_feed import FileFeedCursor
from tests.flows.test_file_feed import context, feed

GOOD = "events_good.csv"
CONTENT = b"id;v\n1;a\n"

# (name, a file name a real file system holds, why it is refused or None when it is safe)
ON_DISK: list[tuple[str, str, str | None]] = [
    ("a line feed", "events_\n1.csv", "control character"),
    ("a carriage return", "events_\r2.csv", "control character"),
    ("an escape sequence", "events_\x1b[2J3.csv", "control character"),
    ("a DEL", "events_\x7f4.csv", "control character"),
    ("a tab", "events_\t5.csv", "control character"),
    ("the longest name a file system holds", "events_" + "x" * (MAX_NAME - 11) + ".csv", None),
    ("spaces and unicode", "events_Zoë ñ 漢.csv", None),
]

# (name, a name only a hostile server lists, why it is refused)
LISTED: list[tuple[str, str, str]] = [
    ("a parent path", "../events_outside.csv", "path separator"),
    ("an absolute path", "/etc/events_passwd.csv", "path separator"),
    ("a nested path", "sub/events_x.csv", "path separator"),
    ("a Windows separator", "..\\events_outside.csv", "path separator"),
    ("dot-dot", "..", "not a file name"),
    ("an empty name", "", "not a file name"),
    ("far too long", "events_" + "y" * 5000 + ".csv", "longer than"),
]


def exports(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "exports"
    path.mkdir(exist_ok=True)
    return path


def put(folder: pathlib.Path, name: str) -> pathlib.Path:
    path = exports(folder) / name
    path.write_bytes(CONTENT)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path


def read_all(client: SftpClient, folder: pathlib.Path) -> list[str]:
    got: list[str] = []
    for batch in feed(client, folder).batches(FileFeedCursor(), context(), save=lambda: None):
        got += [f"{batch.file}:{i.values['id']}" for i in batch.items if isinstance(i, Record)]
        batch.commit()
    return got


@pytest.mark.parametrize(("name", "why"), [c[1:] for c in ON_DISK], ids=[c[0] for c in ON_DISK])
def test_a_real_file_with_a_hostile_name_is_skipped_with_a_reason(
    sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient], caplog: pytest.LogCaptureFixture,
    name: str, why: str | None,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="shared.clients.sftp")
    hostile, good = put(sftp_folder, name), put(sftp_folder, GOOD)
    got = read_all(make_sftp_client(), sftp_folder)
    if why is None:  # safe: read and archived like any other
        assert sorted(got) == sorted([f"{GOOD}:1", f"{name}:1"]) and not hostile.exists() and not good.exists()
        return
    assert got == [f"{GOOD}:1"] and hostile.read_bytes() == CONTENT  # left in place, unread
    [message] = [r.getMessage() for r in caplog.records if "sftp.unsafe_name" in r.getMessage()]
    assert why in message and not any(c in message for c in "\n\r\x1b\x7f\t")  # no forged log line


@pytest.mark.parametrize(("name", "why"), [c[1:] for c in LISTED], ids=[c[0] for c in LISTED])
def test_a_listed_name_leading_out_of_the_folder_is_never_followed(
    sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, name: str, why: str,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="shared.clients.sftp")
    put(sftp_folder, GOOD)
    outside = sftp_folder / "events_outside.csv"  # what "../events_outside.csv" names from the exports folder
    outside.write_bytes(CONTENT)
    client = make_sftp_client()
    client.connect()
    session: Any = client._sftp
    real_listing = session.listdir_attr

    def hostile_listing(path: str = ".") -> list[paramiko.SFTPAttributes]:
        listed = real_listing(path)
        return [*listed, paramiko.SFTPAttributes.from_stat(os.stat(outside), filename=name)]

    monkeypatch.setattr(session, "listdir_attr", hostile_listing)
    downloads: list[str] = []
    real_download = client.download
    monkeypatch.setattr(client, "download", lambda path, target: downloads.append(path) or real_download(path, target))

    assert [f.name for f in client.list_ready(str(exports(sftp_folder)))] == [GOOD]
    assert read_all(client, sftp_folder) == [f"{GOOD}:1"]
    assert downloads == [str(exports(sftp_folder) / GOOD)]
    assert outside.read_bytes() == CONTENT and sorted(p.name for p in sftp_folder.iterdir()) == [
        "archive", "events_outside.csv", "exports"]  # fmt: skip
    assert any(why in r.getMessage() for r in caplog.records if "sftp.unsafe_name" in r.getMessage())


def test_unsafe_name_accepts_ordinary_names() -> None:
    assert [unsafe_name(n) for n in ("campaign_optouts_20261202.csv", "a.b.c", "...csv", "-x")] == [None] * 4

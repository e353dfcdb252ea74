"""The file feed against a real sshd: name order, resume by record, archive after the last commit,
an unreadable file left in place without blocking the others, retried once replaced."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import cast

from shared.clients.sftp import SftpClient
from shared.core.delimited import Malformed, Record
from shared.flows.file_feed import FileFeed, FileFeedCursor
from shared.flows.runner import RunContext
from shared.state.lease import RunLease


def context(dry_run: bool = False) -> RunContext:
    return RunContext("egress", "events", "run1", 1e18, cast(RunLease, None), lambda: 0.0, dry_run=dry_run)


def write(folder: pathlib.Path, name: str, text: str, mtime: int = 1_700_000_000) -> None:
    path = folder / "exports" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def feed(client: SftpClient, folder: pathlib.Path) -> FileFeed:
    return FileFeed(client, folder=str(folder / "exports"), archive_folder=str(folder / "archive"),
                    pattern="events_*.csv", required=("id",), batch_size=2)  # fmt: skip


def ids(items: list[Record | Malformed]) -> list[str]:
    return [i.values["id"] if isinstance(i, Record) else f"bad@{i.line}" for i in items]


def test_files_in_name_order_resumed_by_record_and_archived_after_the_last_commit(
    sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient]
) -> None:
    write(sftp_folder, "events_2.csv", "id;v\n4;d\n5;e\n", mtime=1_700_000_000)  # older file, later name
    write(sftp_folder, "events_1.csv", "id;v\n1;a\n2;b\nbroken\n3;c\n", mtime=1_700_000_100)
    write(sftp_folder, "events_3.csv.part", "id;v\n9;z\n")  # still being written: not yet
    client = make_sftp_client()
    cursor, saves = FileFeedCursor(), []
    seen: list[list[str]] = []
    for batch in feed(client, sftp_folder).batches(cursor, context(), save=lambda: saves.append(1)):
        seen.append(ids(batch.items))
        if seen == [["1", "2"]]:
            batch.commit()
            break  # the run dies here: the second batch of events_1 is not durable
    assert (cursor.file, cursor.records) == ("events_1.csv", 2)

    for batch in feed(client, sftp_folder).batches(cursor, context(), save=lambda: saves.append(1)):
        seen.append(ids(batch.items))
        batch.commit()
    assert seen == [["1", "2"], ["bad@4", "3"], [], ["4", "5"], []]  # resumed at record 3; last batches may be empty
    assert sorted(p.name for p in (sftp_folder / "archive").iterdir()) == ["events_1.csv", "events_2.csv"]
    assert sorted(p.name for p in (sftp_folder / "exports").iterdir()) == ["events_3.csv.part"]
    assert (cursor.file, cursor.records, cursor.archived) == ("", 0, 2)


def test_an_unreadable_file_stays_put_does_not_block_and_is_retried_once_replaced(
    sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient]
) -> None:
    write(sftp_folder, "events_1.csv", "identifier;v\n1;a\n")  # no id column: nothing in it can be read
    write(sftp_folder, "events_2.csv", "id;v\n2;b\n")
    client = make_sftp_client()
    cursor, ctx = FileFeedCursor(), context()
    got = []
    for batch in feed(client, sftp_folder).batches(cursor, ctx, save=lambda: None):
        got += ids(batch.items)
        batch.commit()
    assert got == ["2"] and [p.name for p in (sftp_folder / "exports").iterdir()] == ["events_1.csv"]
    assert list(cursor.failed.values()) == ["the header lacks column(s) id (has identifier, v)"]
    assert any("events_1.csv: cannot be read" in note for note in ctx.notes)
    assert list(feed(client, sftp_folder).batches(cursor, context(), save=lambda: None)) == []  # not again as is

    write(sftp_folder, "events_1.csv", "id;v\n1;a\n", mtime=1_700_000_500)  # an operator fixed it
    got = []
    for batch in feed(client, sftp_folder).batches(cursor, context(), save=lambda: None):
        got += ids(batch.items)
        batch.commit()
    assert got == ["1"] and not (sftp_folder / "exports" / "events_1.csv").exists()


def test_a_dry_run_archives_nothing(sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient]) -> None:
    write(sftp_folder, "events_1.csv", "id;v\n1;a\n")
    write(sftp_folder, "events_2.csv", "id;v\n2;b\n")
    cursor = FileFeedCursor()
    seen = []
    for batch in feed(make_sftp_client(), sftp_folder).batches(cursor, context(dry_run=True), save=lambda: None):
        seen += ids(batch.items)
        batch.commit()
    assert seen == ["1", "2"]  # every waiting file is read
    assert (sftp_folder / "exports" / "events_1.csv").exists() and (sftp_folder / "exports" / "events_2.csv").exists()

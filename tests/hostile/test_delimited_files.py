"""Hostile delimited files from Campaign's SFTP, through the real flows.

Rows: one opt-out export file (the toDynamics flow, real sshd, Dataverse and Campaign sandboxes) holding one row
per hostile case between good rows: each bad row is dead-lettered with a reason naming its line and problem (or,
without a Dynamics id, counted and left alone), no bad row changes Dynamics, the good rows go through and the file
is archived. Files: a file nothing can be read of is recorded with its reason (never its content) and left in
place, and the files after it are still read (the file feed shared by egress and opt-out)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest

from shared.clients.sftp import SftpClient
from shared.core.delimited import MAX_FIELD_CHARS, Record
from shared.flows.counts import Count
from shared.flows.file_feed import FileFeedCursor
from shared.flows.optout_deps import CAMPAIGN_FILE, FLOW
from shared.state.deadletters import DeadLetterStore
from tests.e2e import optout_harness
from tests.e2e.optout_harness import OptOutStack
from tests.flows.test_file_feed import context as file_feed_context
from tests.flows.test_file_feed import feed as file_feed

optout_sftp_stack_factory = optout_harness.optout_sftp_stack_factory  # the fixture
CONTACTS = 6
GOOD = (0, 5)  # contacts whose rows are good: their opt-out flips in Dynamics

Row = Callable[[list[str], int], bytes]  # (the exported row's fields, denyListEmail's index) -> the line instead


def fields(row: list[str], changes: dict[int, str]) -> list[str]:
    out = list(row)
    for index, value in changes.items():
        out[index] = value
    return out


def line(values: list[str]) -> bytes:
    return ";".join(values).encode()


# (name, which contact's exported row it damages, damage, dead-letter gist or None when no Dynamics id is read)
ROWS: list[tuple[str, int, Row, str | None]] = [
    ("an extra column", 1, lambda r, e: line([*r, "surplus"]), "fields where the header has"),
    ("a missing column", 1, lambda r, e: line(r[:-1]), "fields where the header has"),
    ("invalid UTF-8", 2, lambda r, e: line(r[:-1]) + b";\xff\xfe", "not valid utf-8"),
    ("CR-only line end joining two rows", 2, lambda r, e: line(r) + b"\r" + line(r), "badly quoted field"),
    ("a quote closed too early", 3, lambda r, e: line(fields(r, {e: '"1"x'})), "badly quoted field"),
    ("a huge line", 3, lambda r, e: line(fields(r, {e: "1" * (MAX_FIELD_CHARS + 10)})), "longer than"),
    ("a boolean that is not 1 or 0", 2, lambda r, e: line(fields(r, {e: "yes"})), "is not 1 or 0"),
    ("a quoted line break in a boolean", 3, lambda r, e: line(fields(r, {e: '"1\n0"'})), "is not 1 or 0"),
    ("a date in another format", 4, lambda r, e: line(fields(r, {1: "2026-12-02T10:00:00Z"})), "lastModified is not"),
    ("an OData quote in the id", 1, lambda r, e: line(fields(r, {0: r[0] + "') or ('1'='1", e: "1"})), None),
    ("a path in the id", 2, lambda r, e: line(fields(r, {0: r[0] + "/../accounts", e: "1"})), None),
    ("a NUL in the id", 3, lambda r, e: line(fields(r, {0: r[0][:8] + "\x00" + r[0][9:], e: "1"})), None),
]

LAST_ROW = ("an unclosed quote", 1, lambda r, e: b'"' + line(r), "not closed before the end of the file")  # swallows
# the rest of the file, so it comes last


def test_each_hostile_row_is_dead_lettered_or_left_alone_and_the_rest_goes_through(
    optout_sftp_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_sftp_stack_factory("toDynamics")
    stack.dv.seed_contacts(CONTACTS)
    stack.ingress()
    stack.export()
    assert stack.sftp_root is not None
    [path] = (pathlib.Path(stack.sftp_root) / "d365_loads" / "exports").glob("campaign_optouts_*.csv")
    header, *exported = path.read_text(encoding="utf-8").splitlines()
    columns = header.split(";")
    assert columns[:2] == ["externalId", "lastModified"]
    email = columns.index("denyListEmail")
    rows = {r.split(";")[0]: r.split(";") for r in exported}
    contacts = sorted(rows)[:CONTACTS]
    before = {c: stack.dv.get("contacts", c) for c in contacts}
    flipped = {c: "0" if before[c]["donotbulkemail"] else "1" for c in contacts}  # type: ignore[index]

    def good(i: int) -> bytes:
        return line(fields(rows[contacts[i]], {email: flipped[contacts[i]]}))

    body = [header.encode(), good(GOOD[0])]
    body += [damage(rows[contacts[i]], email) for _, i, damage, _ in ROWS]
    body += [good(GOOD[1]), b'"' + contacts[1].encode() + b";an unclosed quote at the end"]
    path.write_bytes(b"\n".join(body) + b"\n")

    [summary] = stack.run(CAMPAIGN_FILE)

    assert summary.outcome == "completed", summary.reason
    for i in GOOD:  # the rows around the hostile ones went through
        assert stack.dv.get("contacts", contacts[i])["donotbulkemail"] is (flipped[contacts[i]] == "1")  # type: ignore[index]
    for i in range(CONTACTS):
        if i not in GOOD:  # no hostile row changed its contact
            assert stack.dv.get("contacts", contacts[i])["donotbulkemail"] is before[contacts[i]]["donotbulkemail"]  # type: ignore[index]
    letters = DeadLetterStore(stack.stack.svc.state.table("deadletters")).entries(FLOW, CAMPAIGN_FILE)
    reasons = sorted(letter.reason for letter in letters)
    gists = [gist for _, _, _, gist in [*ROWS, LAST_ROW] if gist]
    assert len(reasons) == len(gists), reasons
    for gist in gists:
        assert any(gist in reason for reason in reasons), (gist, reasons)
    for letter in letters:  # a malformed line is parked by file and line, a bad value by its contact
        assert letter.record_id.startswith(path.name + "#") if "malformed" in letter.reason else (
            letter.record_id in contacts and f"{path.name}: line " in letter.reason)  # fmt: skip
    assert summary.counts[Count.OPTOUT_WITHOUT_EXTERNAL_ID] == sum(1 for *_, gist in ROWS if gist is None)
    odd = [r for r in stack.dv.requests() if "accounts" in str(r) or "or ('1'" in str(r) or "%27%20or" in str(r)]
    assert odd == []  # a crafted id never reached a Dataverse URL
    archive = pathlib.Path(stack.sftp_root) / "d365_loads" / "archive"
    assert not path.exists() and [p.name for p in archive.iterdir()] == [path.name]


# (name, file bytes, the reason recorded for it); the file feed requires the column "id"
UNREADABLE: list[tuple[str, bytes, str]] = [
    ("empty file", b"", "empty file"),
    ("blank lines only", b"\n\n\n", "lacks column(s) id"),
    ("CR-only line ends", b"id;v\r1;a\r2;b\r", "unreadable header: badly quoted field"),
    ("UTF-16", "id;v\n1;a\n".encode("utf-16"), "not valid text"),
    ("invalid UTF-8 in the header", b"i\xffd;v\n1;a\n", "not valid text"),
    ("a huge header line", b"id;" + b"v" * (MAX_FIELD_CHARS + 10) + b"\n1;a\n", "longer than"),
    ("the header lost: a data row in its place", b"0f8fad5b-d9cb-469f-a165-70867728950e;jane.roe@example.org\n",
     "not all column names"),
    ("a column named twice", b"id;id\n1;2\n", "twice"),
    ("an unclosed quote in the header", b'"id;v\n1;a\n', "not closed"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "reason"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE])
def test_an_unreadable_file_is_recorded_left_in_place_and_the_next_is_read(
    sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient], content: bytes, reason: str
) -> None:
    exports = sftp_folder / "exports"
    exports.mkdir()
    (exports / "events_1.csv").write_bytes(content)
    (exports / "events_2.csv").write_bytes(b"id;v\n2;b\n")
    for name in ("events_1.csv", "events_2.csv"):
        os.utime(exports / name, (1_700_000_000, 1_700_000_000))
    cursor, ctx, got = FileFeedCursor(), file_feed_context(), []
    for batch in file_feed(make_sftp_client(), sftp_folder).batches(cursor, ctx, save=lambda: None):
        got += [item.values["id"] for item in batch.items if isinstance(item, Record)]
        batch.commit()
    assert got == ["2"]
    assert sorted(p.name for p in exports.iterdir()) == ["events_1.csv"]  # left in place, byte for byte
    assert (exports / "events_1.csv").read_bytes() == content
    [recorded] = cursor.failed.values()
    assert reason in recorded and "jane" not in recorded and "0f8fad5b" not in recorded
    assert any("events_1.csv: cannot be read" in note and "jane" not in note for note in ctx.notes)


def test_a_header_only_file_is_read_as_no_records_and_archived(
    sftp_folder: pathlib.Path, make_sftp_client: Callable[..., SftpClient]
) -> None:
    exports = sftp_folder / "exports"
    exports.mkdir()
    (exports / "events_1.csv").write_bytes(b"\xef\xbb\xbfid;v\r\n")  # a BOM and CRLF, as Windows tools write
    cursor, items = FileFeedCursor(), []
    for batch in file_feed(make_sftp_client(), sftp_folder).batches(cursor, file_feed_context(), save=lambda: None):
        items += batch.items
        batch.commit()
    assert items == [] and cursor.failed == {} and list(exports.iterdir()) == []
    assert [p.name for p in (sftp_folder / "archive").iterdir()] == ["events_1.csv"]

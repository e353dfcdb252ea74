"""The initial transfer's state machine and the ingress cursor's hand-off hooks, without I/O."""

from __future__ import annotations

import json

import pytest

from shared.clients.dataverse import Page
from shared.flows.change_feed import ChangeFeedCursor
from shared.flows.initial_transfer_cursor import NotRetryable, PartRecord, TransferCursor


def exported(cursor: TransferCursor, parts: int = 2) -> TransferCursor:
    cursor.request(generation=3, counted=1000)
    cursor.begin_export("contacts-20260101T000000Z-g3")
    for n in range(parts):
        cursor.feed.advance(Page([], [], f"https://dv/next{n}", None))
        cursor.part_staged(PartRecord(cursor.part_name(gzip=True), rows=500, size=100 + n, sha256=f"h{n}"))
    cursor.feed.advance(Page([], [], None, "https://dv/delta"))
    cursor.export_done()
    return cursor


def round_trip(cursor: TransferCursor) -> TransferCursor:
    return TransferCursor.from_state(json.loads(json.dumps(cursor.to_state())))


def test_a_fresh_cursor_is_idle_and_asks_for_nothing() -> None:
    cursor = TransferCursor.from_state({})
    assert cursor.state == "idle" and not cursor.active and not cursor.serves(0)


def test_a_request_is_idempotent_per_generation_and_a_newer_one_starts_over() -> None:
    cursor = TransferCursor()
    assert cursor.request(generation=1, counted=600_000)
    assert not cursor.request(generation=1, counted=0)  # the same hand-over asked twice
    cursor.begin_export("contacts-a-g1")
    assert not cursor.request(generation=1, counted=0) and cursor.state == "exporting"
    assert cursor.request(generation=2, counted=700_000)  # a replay: the earlier batch is abandoned
    assert (cursor.state, cursor.generation, cursor.counted, cursor.batch) == ("requested", 2, 700_000, "")
    assert cursor.abandoned == ["contacts-a-g1"] and cursor.parts == []


def test_the_states_in_order_and_parts_named_in_sequence() -> None:
    cursor = exported(TransferCursor())
    assert cursor.state == "staged" and cursor.delta_link == "https://dv/delta"
    assert cursor.file_names() == ["contacts-20260101T000000Z-g3_part0001.csv.gz",
                                   "contacts-20260101T000000Z-g3_part0002.csv.gz"]  # fmt: skip
    assert cursor.exported == 1000
    with pytest.raises(RuntimeError):
        cursor.upload_done()  # parts still to upload
    for name in cursor.file_names():
        cursor.part_uploaded(name)
        cursor.part_uploaded(name)  # said twice (a run cut after the rename): counted once
    assert cursor.uploaded == cursor.file_names() and cursor.pending_uploads() == []
    cursor.upload_done()
    cursor.signalling()
    cursor.signalled(at=1234.0)
    cursor.imported()
    cursor.handed_over()
    assert cursor.state == "handed-over" and not cursor.active


def test_a_step_out_of_order_is_refused() -> None:
    cursor = TransferCursor()
    with pytest.raises(RuntimeError):
        cursor.begin_export("b")
    cursor.request(0, 0)
    cursor.begin_export("b")
    with pytest.raises(RuntimeError):
        cursor.export_done()  # the read has not reached its delta link
    with pytest.raises(RuntimeError):
        cursor.signalling()


def test_the_stored_cursor_says_where_the_part_in_progress_began() -> None:
    cursor = TransferCursor()
    cursor.request(5, 42)
    cursor.begin_export("b-g5")
    cursor.feed.advance(Page([], [], "https://dv/next-after-part-1", None))
    cursor.part_staged(PartRecord("b-g5_part0001.csv", rows=300, size=9000, sha256="x"))
    stored = round_trip(cursor)
    assert stored == cursor
    assert stored.feed.read_from() == "https://dv/next-after-part-1" and stored.feed.full_read
    assert stored.part_name(gzip=False) == "b-g5_part0002.csv"  # the next part, written from its first page
    stored.feed.start_full_read(sweep_epoch=7)  # the feed's resync: back to the top, marked
    stored.restart_export()
    assert stored.parts == [] and stored.feed.read_from() is None and stored.feed.sweep_epoch == 0
    # A new batch name: the workflow's mask <batch>_part* no longer matches the first attempt's files on SFTP.
    assert stored.batch == "b-g5-r1" and stored.abandoned == ["b-g5"]
    assert stored.part_name(gzip=False) == "b-g5-r1_part0001.csv"
    stored.restart_export()
    assert stored.batch == "b-g5-r2" and stored.abandoned == ["b-g5", "b-g5-r1"]


def test_failed_is_retryable_by_uploading_and_signalling_again() -> None:
    cursor = exported(TransferCursor())
    for name in cursor.file_names():
        cursor.part_uploaded(name)
    cursor.upload_done()
    cursor.signalling()
    cursor.signalled(at=1.0)
    cursor.fail("import workflow W ended in error")
    assert (cursor.state, cursor.failed_in, cursor.active) == ("failed", "signalled", False)
    assert "ended in error" in round_trip(cursor).describe()
    cursor.retry()
    assert (cursor.state, cursor.uploaded, cursor.failure, cursor.exported) == ("staged", [], "", 1000)
    with pytest.raises(NotRetryable):
        cursor.retry()


def test_a_transfer_that_failed_before_its_export_ended_is_not_retryable() -> None:
    cursor = TransferCursor()
    cursor.request(0, 0)
    cursor.fail("cannot hand over")
    with pytest.raises(NotRetryable, match="replay"):
        cursor.retry()


def test_ingress_chooses_a_path_at_the_start_of_a_first_read_or_a_replay_only() -> None:
    fresh = ChangeFeedCursor.from_state({})
    assert fresh.path_due
    fresh.read_through_api()
    assert not fresh.path_due and fresh.full_read

    legacy = ChangeFeedCursor.from_state({"phase": "initial", "pages": 0})  # stored before the file path existed
    assert not legacy.path_due

    resync = ChangeFeedCursor(phase="incremental", delta_link="d", path_pending=False)
    resync.start_full_read(sweep_epoch=7)  # an expired token never changes path
    assert not resync.path_due
    resync.start_full_read(sweep_epoch=8, choose_path=True)  # a replay does
    assert resync.path_due

    resync.load_by_file()
    assert resync.waiting_for_file and not resync.full_read and not resync.path_due
    assert resync.describe() == "file-transfer:waiting" and resync.sweep_epoch == 0
    resync.hand_over("https://dv/delta-of-the-export")
    assert not resync.waiting_for_file and resync.read_from() == "https://dv/delta-of-the-export"
    assert ChangeFeedCursor.from_state(resync.to_state()) == resync

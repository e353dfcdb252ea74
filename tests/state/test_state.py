"""State store against a real Azurite: concurrency, leases, dead letters, index, staging."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from shared.flows.change_feed import ChangeFeedCursor
from shared.state.checkpoints import CheckpointConflict, CheckpointStore, CursorKindMismatch
from shared.state.deadletters import DeadLetterStore
from shared.state.index import IndexEntry, RecordIndex
from shared.state.keys import safe_key
from shared.state.lease import LeaseHeld, LeaseLost, RunLease
from shared.state.runs import RunLog
from shared.state.staging import BlobStaging
from shared.state.store import StateStore


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(storage_connection_string: str, table_prefix: str) -> StateStore:
    return StateStore.from_connection_string(storage_connection_string, prefix=table_prefix, container=table_prefix)


def test_checkpoint_round_trip_and_etag_conflict(store: StateStore) -> None:
    checkpoints = CheckpointStore(store.table("checkpoints"), clock=FakeClock(1_700_000_500.0))
    fresh = checkpoints.load("ingress", "contacts", ChangeFeedCursor)
    assert fresh.etag is None and fresh.cursor.phase == "initial" and fresh.saved_at == 0.0

    fresh.cursor.next_link = "https://org/api/data/v9.2/contacts?$skiptoken=x"
    fresh.add_counts({"read": 5000})
    checkpoints.save(fresh)

    mine = checkpoints.load("ingress", "contacts", ChangeFeedCursor)
    theirs = checkpoints.load("ingress", "contacts", ChangeFeedCursor)
    assert mine.cursor.next_link == fresh.cursor.next_link and mine.counters == {"read": 5000}
    assert mine.saved_at == 1_700_000_500.0  # the cursor's age is known

    theirs.cursor.phase = "incremental"
    checkpoints.save(theirs)
    mine.cursor.pages = 2
    with pytest.raises(CheckpointConflict):
        checkpoints.save(mine)
    assert checkpoints.load("ingress", "contacts", ChangeFeedCursor).cursor.phase == "incremental"


def test_two_first_writers_conflict(store: StateStore) -> None:
    checkpoints = CheckpointStore(store.table("checkpoints"))
    a = checkpoints.load("ingress", "t1", ChangeFeedCursor)
    b = checkpoints.load("ingress", "t1", ChangeFeedCursor)
    checkpoints.save(a)
    with pytest.raises(CheckpointConflict):
        checkpoints.save(b)


@dataclasses.dataclass
class FileCursor:
    """Another flow's cursor: the envelope stores it without knowing its fields."""

    KIND: ClassVar[str] = "file-test"
    file: str = ""
    row: int = 0

    def to_state(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FileCursor:
        return cls(file=str(state.get("file", "")), row=int(state.get("row", 0)))

    def describe(self) -> str:
        return f"{self.file}:{self.row}"


def test_cursors_of_different_flows_live_in_one_envelope_and_never_mix(store: StateStore) -> None:
    checkpoints = CheckpointStore(store.table("checkpoints"))
    egress = checkpoints.load("egress", "events", FileCursor)
    egress.cursor.file, egress.cursor.row = "campaign_events_1.csv", 42
    checkpoints.save(egress)
    assert checkpoints.load("egress", "events", FileCursor).cursor == FileCursor("campaign_events_1.csv", 42)
    with pytest.raises(CursorKindMismatch):
        checkpoints.load("egress", "events", ChangeFeedCursor)
    [stored] = checkpoints.entries("egress")
    assert (stored.cursor_kind, stored.cursor) == ("file-test", {"file": "campaign_events_1.csv", "row": 42})


def test_update_retries_on_conflict_and_hands_over_a_delta_link(store: StateStore) -> None:
    checkpoints = CheckpointStore(store.table("checkpoints"))
    stale = checkpoints.load("ingress", "contacts", ChangeFeedCursor)
    checkpoints.save(checkpoints.load("ingress", "contacts", ChangeFeedCursor))  # someone wrote meanwhile
    with pytest.raises(CheckpointConflict):
        checkpoints.save(stale)
    checkpoints.update("ingress", "contacts", ChangeFeedCursor, lambda cp: cp.cursor.hand_over("delta-1"))
    cursor = checkpoints.load("ingress", "contacts", ChangeFeedCursor).cursor
    assert (cursor.phase, cursor.delta_link, cursor.read_from()) == ("incremental", "delta-1", "delta-1")


def test_reset_request_starts_a_new_generation(store: StateStore) -> None:
    checkpoints = CheckpointStore(store.table("checkpoints"))
    checkpoints.request_reset("ingress", "never-ran")  # no row yet: one is made, asking for the replay
    assert checkpoints.load("ingress", "never-ran", ChangeFeedCursor).reset_requested
    cp = checkpoints.load("ingress", "contacts", ChangeFeedCursor)
    cp.cursor.phase, cp.cursor.delta_link = "incremental", "delta"
    checkpoints.save(cp)
    checkpoints.request_reset("ingress", "contacts")
    cp = checkpoints.load("ingress", "contacts", ChangeFeedCursor)
    assert cp.reset_requested and cp.cursor.delta_link == "delta"  # the cursor is the flow's to move
    cp.begin_replay()
    cp.cursor.start_full_read(sweep_epoch=5)
    assert (cp.cursor.phase, cp.cursor.delta_link, cp.reset_requested, cp.generation) == ("initial", None, False, 1)
    cp.cursor.start_full_read(sweep_epoch=6)  # a resync keeps the generation: unchanged records stay
    assert cp.generation == 1 and cp.cursor.sweep_epoch == 6


def test_lease_contention_from_two_threads(store: StateStore) -> None:
    table = store.table("leases")
    barrier = threading.Barrier(8)
    winners: list[str] = []
    losers: list[str] = []

    def contend(owner: str) -> None:
        lease = RunLease(table, "ingress~contacts", owner, duration=60)
        barrier.wait()
        try:
            lease.acquire()
            winners.append(owner)
        except LeaseHeld:
            losers.append(owner)

    threads = [threading.Thread(target=contend, args=(f"run{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 7


def test_keep_writes_the_lease_only_when_due_and_then_notices_a_cleared_lease(store: StateStore) -> None:
    clock = FakeClock()
    table = store.table("leases")
    lease = RunLease(table, "flow", "a", duration=600, clock=clock, renew_every=15)
    lease.acquire()
    written = table.get_entity("lease", "flow")["expires_at"]
    clock.now += 14
    lease.keep()
    assert table.get_entity("lease", "flow")["expires_at"] == written  # not due: no write
    clock.now += 1
    lease.keep()
    assert table.get_entity("lease", "flow")["expires_at"] == written + 15  # due: extended
    table.delete_entity("lease", "flow")  # an operator's `leases clear`, then another run
    RunLease(table, "flow", "b", duration=600, clock=clock).acquire()
    lease.keep()  # written just now: not looked at
    clock.now += 15
    with pytest.raises(LeaseLost):
        lease.keep()


def test_expired_lease_is_taken_over_and_old_holder_notices(store: StateStore) -> None:
    clock = FakeClock()
    table = store.table("leases")
    first = RunLease(table, "flow", "a", duration=60, clock=clock)
    first.acquire()
    second = RunLease(table, "flow", "b", duration=60, clock=clock)
    with pytest.raises(LeaseHeld):
        second.acquire()
    clock.now += 61
    second.acquire()
    with pytest.raises(LeaseLost):
        first.renew()
    first.release()  # must not remove the new holder's lease
    third = RunLease(table, "flow", "c", duration=60, clock=clock)
    with pytest.raises(LeaseHeld):
        third.acquire()
    second.release()
    third.acquire()


def test_dead_letter_round_trip(store: StateStore) -> None:
    clock = FakeClock()
    letters = DeadLetterStore(store.table("deadletters"), clock=clock)
    letters.record("ingress", "contacts", "id-1", "birthdate: not a date")
    clock.now += 10
    second = letters.record("ingress", "contacts", "id-1", "400 RST-1234")
    assert (second.attempts, second.reason, second.last_seen - second.first_seen) == (2, "400 RST-1234", 10)
    letters.record("ingress", "contacts", "id-2", "x")
    letters.record("ingress", "loyalty", "id-3", "y")
    assert [d.record_id for d in letters.due("ingress", "contacts", max_attempts=2)] == ["id-2"]
    assert {d.record_id for d in letters.entries("ingress")} == {"id-1", "id-2", "id-3"}
    letters.resolve("ingress", "contacts", "id-1")
    assert letters.get("ingress", "contacts", "id-1") is None


def test_dead_letter_concurrent_attempts_all_counted(store: StateStore) -> None:
    letters = DeadLetterStore(store.table("deadletters"))
    threads = [threading.Thread(target=letters.record, args=("f", "t", "rec", "boom")) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    letter = letters.get("f", "t", "rec")
    assert letter is not None and letter.attempts == 6


def test_record_index_round_trip(store: StateStore) -> None:
    index = RecordIndex(store.table("index"))
    assert index.get("contacts", "abc") is None
    href = "https://x/profile/@k1"
    index.put(IndexEntry("contacts", "abc", href, hash_full="h1", hash_updates="u1", generation=3))
    entry = index.get("contacts", "abc")
    assert entry is not None
    assert (entry.href, entry.hash_full, entry.hash_updates, entry.generation) == (href, "h1", "u1", 3)
    assert [e.record_id for e in index.iter_table("contacts")] == ["abc"]
    index.delete("contacts", "abc")
    assert index.get("contacts", "abc") is None


def test_run_log_newest_first(store: StateStore) -> None:
    runs = RunLog(store.table("runs"))
    for i in range(3):
        runs.append({"flow": "ingress", "scope": "contacts", "run_id": f"run{i}xxxxxxxx", "n": i}, now=1000.0 + i)
    assert [r["n"] for r in runs.latest("ingress", "contacts", limit=2)] == [2, 1]


def test_blob_staging_parts_and_manifest(store: StateStore) -> None:
    staging = BlobStaging(store.container(), block_size=1024)
    data = bytes(range(256)) * 41  # 10,496 bytes: 11 blocks, the last one short
    part = staging.write_part("batch1", "contacts-0001.csv", [data[:3000], data[3000:]], rows=7)
    assert part.size == len(data) and part.sha256 == hashlib.sha256(data).hexdigest()
    assert staging.read_manifest("batch1") is None  # parts are invisible to readers until the manifest lands
    staging.write_manifest("batch1", [part], table="contacts")
    manifest = staging.read_manifest("batch1")
    assert manifest is not None and manifest["parts"][0]["sha256"] == part.sha256 and manifest["table"] == "contacts"
    assert b"".join(staging.read_part("batch1", "contacts-0001.csv")) == data
    staging.delete_batch("batch1")
    assert staging.read_manifest("batch1") is None


@pytest.mark.parametrize(("raw", "expected"), [("abc-123", "abc-123"), ("a/b", "a%2Fb"), ("x#y?z\\", "x%23y%3Fz%5C")])
def test_safe_key_escapes_forbidden_characters(raw: str, expected: str) -> None:
    assert safe_key(raw) == expected


def test_record_index_bulk_read_and_write(store: StateStore) -> None:
    index = RecordIndex(store.table("index"))
    entries = [IndexEntry("contacts", f"id-{i:03d}", f"href{i}", hash_full=f"h{i}") for i in range(250)]
    entries.append(IndexEntry("loyalty", "id-000", "other-table"))
    index.put_many(entries)
    wanted = [f"id-{i:03d}" for i in range(0, 260, 3)]  # includes ids that do not exist
    found = index.get_many("contacts", wanted)
    assert set(found) == {f"id-{i:03d}" for i in range(0, 250, 3)}
    assert found["id-003"].href == "href3" and found["id-003"].hash_full == "h3"
    assert index.get_many("loyalty", ["id-000"])["id-000"].href == "other-table"
    assert index.get_many("contacts", []) == {}


def test_index_entries_spread_over_shards_and_are_found_in_bulk(store: StateStore) -> None:
    from shared.state.index import SHARDS, partition_of

    assert partition_of("contacts", "6d81597f-0f9f-e711-8122-000d3aa2331c") == "contacts~01"  # stable: crc32
    index = RecordIndex(store.table("index"))
    ids = [f"{n:08d}-0000-0000-0000-000000000000" for n in range(600)]
    index.put_many(IndexEntry("contacts", record_id, f"href-{record_id}") for record_id in ids)
    partitions = {e["PartitionKey"] for e in store.table("index").list_entities()}
    assert len(partitions) == SHARDS  # 600 ids reach every shard
    found = index.get_many("contacts", [*ids[::7], "not-synced"])  # a few: point reads
    assert sorted(found) == ids[::7] and found[ids[7]].href == f"href-{ids[7]}"
    found = index.get_many("contacts", [*ids[::2], "not-synced"])  # many: OR queries per shard
    assert sorted(found) == ids[::2] and found[ids[2]].href == f"href-{ids[2]}"
    assert sorted(e.record_id for e in index.iter_table("contacts")) == ids
    index.delete("contacts", ids[0])
    assert index.get("contacts", ids[0]) is None and index.get("contacts", ids[1]) is not None

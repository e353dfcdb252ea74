"""The newest-applied store against a real Azurite: rows spread over shards, conflicts by ETag, and rows an
earlier version left in the single `optout` partition still read, then moved on their first save."""

from __future__ import annotations

import urllib.parse

import pytest
from azure.data.tables import TableClient

from shared.core.optout import AppliedState, Mark
from shared.state.optout_applied import AppliedConflict, AppliedStore
from shared.state.store import StateStore

ON = AppliedState(True, Mark(100.0, 7), 99.0, "webhook")
OFF = AppliedState(False, Mark(200.0, 9), 199.0, "ingress")
LEGACY_COLUMN = '{"modifiedon": 50.0, "origin": 49.0, "source": "webhook", "value": true, "version": 3}'


@pytest.fixture
def table(storage_connection_string: str, table_prefix: str) -> TableClient:
    return StateStore.from_connection_string(storage_connection_string, prefix=table_prefix).table("optoutapplied")


def partitions(table: TableClient) -> set[str]:
    return {e["PartitionKey"] for e in table.list_entities(select=["PartitionKey"])}


def test_rows_spread_over_shards_and_are_found_one_by_one_and_in_bulk(table: TableClient) -> None:
    store = AppliedStore(table)
    contacts = [f"c{n:03d}" for n in range(60)]
    assert store.save_many([(store.get(c), {"denyListEmail": ON}) for c in contacts]) == []
    assert len(partitions(table)) == 16 and "optout" not in partitions(table)
    assert store.get("c007").states == {"denyListEmail": ON}
    found = store.get_many([*contacts, "never"])
    assert {c: r.states for c, r in found.items()} == {**{c: {"denyListEmail": ON} for c in contacts}, "never": {}}
    assert found["never"].etag is None and all(found[c].etag for c in contacts)


def test_a_stale_etag_conflicts(table: TableClient) -> None:
    store = AppliedStore(table)
    first = store.save(store.get("c1"), {"denyListEmail": ON})
    store.save(first, {"denyListEmail": OFF})
    with pytest.raises(AppliedConflict):
        store.save(first, {"denyListEmail": ON})
    assert store.save_many([(first, {"denyListEmail": ON})]) == ["c1"]
    assert store.get("c1").states == {"denyListEmail": OFF}


def test_a_legacy_row_is_read_then_moved_to_its_shard_on_save(table: TableClient) -> None:
    table.create_entity({"PartitionKey": "optout", "RowKey": "old", "contact": "old", "denyListEmail": LEGACY_COLUMN})
    legacy = AppliedState(True, Mark(50.0, 3), 49.0, "webhook")
    store = AppliedStore(table)
    read = store.get("old")
    assert read.states == {"denyListEmail": legacy} and read.etag is None  # its save creates the sharded row
    assert store.get_many(["old", "new"])["old"].states == {"denyListEmail": legacy}
    saved = store.save(read, {"denyListSms": OFF})
    assert AppliedStore(table).get("old").states == {"denyListEmail": legacy, "denyListSms": OFF}
    assert saved.etag is not None
    with pytest.raises(AppliedConflict):  # a second writer that read the legacy row too: the first one won
        store.save(read, {"denyListEmail": OFF})


def test_without_legacy_rows_a_missing_contact_costs_no_second_read(
    table: TableClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AppliedStore(table)
    store.get_many(["a", "b"])  # sees the legacy partition empty
    urls: list[str] = []
    send = table._client.send_request
    monkeypatch.setattr(
        table._client, "send_request", lambda request, **kw: urls.append(request.url) or send(request, **kw)
    )
    monkeypatch.setattr(table, "query_entities", lambda *a, **k: urls.append("query_entities") or iter(()))
    assert store.get_many(["c"])["c"].etag is None
    assert len(urls) == 1 and "optout~" in urllib.parse.unquote(urls[0])  # its shard only


def test_legacy_rows_are_looked_for_only_for_contacts_not_in_their_shard(table: TableClient) -> None:
    table.create_entity({"PartitionKey": "optout", "RowKey": "old", "contact": "old", "denyListEmail": LEGACY_COLUMN})
    store = AppliedStore(table)
    store.save(store.get("moved"), {"denyListEmail": ON})
    table.create_entity(
        {"PartitionKey": "optout", "RowKey": "moved", "contact": "moved", "denyListEmail": LEGACY_COLUMN}
    )
    found = store.get_many(["old", "moved"])
    assert found["moved"].states == {"denyListEmail": ON} and found["moved"].etag  # the shard's row wins
    assert found["old"].etag is None and found["old"].states["denyListEmail"].mark == Mark(50.0, 3)

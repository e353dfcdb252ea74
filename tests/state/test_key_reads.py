"""Entities by RowKeys (shared/state/key_reads.py): against a real Azurite, the same entities and types the
SDK's query returns; continuation followed; the decoding on literal OData answers."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient

from shared.state.key_reads import Entity, decode_page, entity, read_by_keys
from shared.state.store import StateStore


@pytest.fixture
def table(storage_connection_string: str, table_prefix: str) -> TableClient:
    return StateStore.from_connection_string(storage_connection_string, prefix=table_prefix).table("index")


def test_finds_the_asked_keys_of_the_partition_with_their_types_and_etags(table: TableClient) -> None:
    table.create_entity({"PartitionKey": "p", "RowKey": "it's", "s": "é", "n": 3, "f": 1.25, "b": False})
    table.create_entity({"PartitionKey": "p", "RowKey": "other", "s": "x"})
    table.create_entity({"PartitionKey": "q", "RowKey": "it's", "s": "wrong partition"})
    found = read_by_keys(table, "p", ["it's", "missing"])
    assert found == [{"PartitionKey": "p", "RowKey": "it's", "s": "é", "n": 3, "f": 1.25, "b": False,
                      "Timestamp": found[0]["Timestamp"]}]  # fmt: skip
    assert found[0].metadata["etag"] == table.get_entity("p", "it's").metadata["etag"]  # the SDK's etag, unchanged


def test_continuation_headers_are_followed(table: TableClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service may cut a query's answer anywhere; the next page is asked for with the continuation."""
    for key in "abc":
        table.create_entity({"PartitionKey": "p", "RowKey": key})
    send = table._client.send_request
    asked: list[str] = []

    def cut_after_one(request: Any, **kwargs: Any) -> Any:
        asked.append(request.url)
        response = send(request, **kwargs)
        if "NextRowKey" not in request.url:
            response.headers["x-ms-continuation-NextPartitionKey"] = "p"
            response.headers["x-ms-continuation-NextRowKey"] = "b"
        return response

    monkeypatch.setattr(table._client, "send_request", cut_after_one)
    found = read_by_keys(table, "p", ["a", "b", "c"])
    assert len(asked) == 2 and "NextPartitionKey=p" in asked[1] and "NextRowKey=b" in asked[1]
    assert sorted(e["RowKey"] for e in found) == ["a", "a", "b", "b", "c", "c"]  # the page again, then from b


def test_more_keys_than_one_filter_holds_is_refused(table: TableClient) -> None:
    with pytest.raises(ValueError, match="between 1 and 14"):
        read_by_keys(table, "p", [str(n) for n in range(15)])


def test_a_missing_table_is_not_found(storage_connection_string: str) -> None:
    client = TableClient.from_connection_string(storage_connection_string, "nosuchtable")
    with pytest.raises(ResourceNotFoundError):
        read_by_keys(client, "p", ["a"])


def test_typed_values_are_decoded() -> None:
    decoded = entity({"odata.etag": 'W/"1"', "RowKey": "r", "big@odata.type": "Edm.Int64", "big": "1099511627776",
                      "nan@odata.type": "Edm.Double", "nan": "Infinity", "d@odata.type": "Edm.Double", "d": 2,
                      "when@odata.type": "Edm.DateTime", "when": "2026-12-02T00:00:00Z"})  # fmt: skip
    assert decoded == {"RowKey": "r", "big": 1099511627776, "nan": float("inf"), "d": 2.0,
                       "when": "2026-12-02T00:00:00Z"}  # fmt: skip
    assert isinstance(decoded, Entity) and decoded.metadata == {"etag": 'W/"1"'}


def test_an_answer_that_is_not_an_entity_list_is_an_error() -> None:
    with pytest.raises(HttpResponseError, match="not an OData entity list"):
        decode_page(200, b'{"odata.metadata": "x"}', None)
    with pytest.raises(HttpResponseError, match="answered 403"):
        decode_page(403, b"", None)

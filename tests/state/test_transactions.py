"""Entity-group transactions encoded by shared/state/transactions.py: against a real Azurite, the same outcome
as the SDK's `submit_transaction` (written entities, the same exceptions with index and code); the encoding
and the answer parsing on literal bodies (the format of the Table service REST reference)."""

from __future__ import annotations

import email.parser
import email.policy
import threading
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.state import transactions
from shared.state.store import StateStore
from shared.state.transactions import encode, parse_parts, raise_for_answer, submit_transaction

REPLACE = {"mode": UpdateMode.REPLACE}


@pytest.fixture
def table(storage_connection_string: str, table_prefix: str) -> TableClient:
    return StateStore.from_connection_string(storage_connection_string, prefix=table_prefix).table("index")


@pytest.fixture
def sdk_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Transactions the codec handed to the SDK instead of encoding them."""
    calls: list[Any] = []
    original = TableClient.submit_transaction

    def recording(self: TableClient, operations: Any, **kwargs: Any) -> Any:
        calls.append(operations)
        return original(self, operations, **kwargs)

    monkeypatch.setattr(TableClient, "submit_transaction", recording)
    return calls


def rows(table: TableClient) -> dict[str, dict[str, Any]]:
    return {e["RowKey"]: dict(e) for e in table.query_entities("PartitionKey eq 'p'")}


def test_upserts_creates_updates_and_deletes_land_as_written(table: TableClient, sdk_calls: list[Any]) -> None:
    submit_transaction(table, [
        ("upsert", {"PartitionKey": "p", "RowKey": "it's", "s": "é ü", "n": 7, "f": 2.5, "b": True, "gone": None},
         REPLACE),
        ("create", {"PartitionKey": "p", "RowKey": "b", "n": -(2**31)}),
    ])  # fmt: skip
    assert rows(table) == {
        "it's": {"PartitionKey": "p", "RowKey": "it's", "s": "é ü", "n": 7, "f": 2.5, "b": True},
        "b": {"PartitionKey": "p", "RowKey": "b", "n": -(2**31)},
    }
    etag = table.get_entity("p", "b").metadata["etag"]
    submit_transaction(table, [
        ("update", {"PartitionKey": "p", "RowKey": "b", "n": 1}, {**REPLACE, "etag": etag,
                                                                  "match_condition": MatchConditions.IfNotModified}),
        ("delete", {"PartitionKey": "p", "RowKey": "it's"}),
    ])  # fmt: skip
    assert rows(table) == {"b": {"PartitionKey": "p", "RowKey": "b", "n": 1}}
    assert sdk_calls == []  # every one encoded here


def test_a_failed_operation_raises_the_sdks_error_with_its_index_and_nothing_is_written(table: TableClient) -> None:
    submit_transaction(table, [("create", {"PartitionKey": "p", "RowKey": "a"})])
    with pytest.raises(TableTransactionError) as failed:
        submit_transaction(table, [("create", {"PartitionKey": "p", "RowKey": "new"}),
                                   ("create", {"PartitionKey": "p", "RowKey": "a"})])  # fmt: skip
    assert (failed.value.index, failed.value.status_code, failed.value.error_code) == (1, 409, "EntityAlreadyExists")
    stale = {
        **REPLACE,
        "etag": "W/\"datetime'2020-01-01T00%3A00%3A00Z'\"",
        "match_condition": MatchConditions.IfNotModified,
    }
    with pytest.raises(TableTransactionError) as modified:
        submit_transaction(table, [("update", {"PartitionKey": "p", "RowKey": "a", "v": 1}, stale)])
    assert (modified.value.index, modified.value.status_code) == (0, 412)
    assert modified.value.error_code == "UpdateConditionNotSatisfied"
    assert rows(table) == {"a": {"PartitionKey": "p", "RowKey": "a"}}  # all or nothing


def test_the_same_failure_through_the_sdk_gives_the_same_index_and_code(table: TableClient) -> None:
    """The independent model: the SDK's own submit_transaction on the same failing transaction."""
    table.create_entity({"PartitionKey": "p", "RowKey": "a"})
    operations = [("create", {"PartitionKey": "p", "RowKey": "x"}), ("create", {"PartitionKey": "p", "RowKey": "a"})]
    with pytest.raises(TableTransactionError) as sdk:
        table.submit_transaction(operations)
    with pytest.raises(TableTransactionError) as ours:
        submit_transaction(table, operations)
    assert (ours.value.index, ours.value.status_code) == (sdk.value.index, sdk.value.status_code)


@pytest.mark.parametrize("operation", [
    ("upsert", {"PartitionKey": "p", "RowKey": "m", "v": 1}, {"mode": UpdateMode.MERGE}),
    ("upsert", {"PartitionKey": "p", "RowKey": "m", "v": 2**40}, REPLACE),  # beyond int32: the SDK's TypeError
    ("upsert", {"PartitionKey": "p", "RowKey": "m", "v": b"bytes"}, REPLACE),
])  # fmt: skip
def test_what_the_codec_does_not_encode_goes_to_the_sdk_unchanged(
    table: TableClient, sdk_calls: list[Any], operation: tuple[Any, ...]
) -> None:
    try:
        submit_transaction(table, [operation])
    except (TypeError, HttpResponseError):
        pass  # the SDK's own answer to it
    assert sdk_calls == [[operation]]


def test_the_body_is_one_changeset_of_http_sub_requests_in_order() -> None:
    """Read back with the stdlib email parser (a multipart reader independent of the encoder)."""
    body = encode("http://h/acct", "tbl", [
        ("upsert", {"PartitionKey": "p/1", "RowKey": "o'k", "v": 1}, REPLACE),
        ("create", {"PartitionKey": "p", "RowKey": "r"}),
        ("delete", {"PartitionKey": "p", "RowKey": "r"},
         {"etag": "W/\"1\"", "match_condition": MatchConditions.IfNotModified}),
    ], "batch_B", "changeset_C", "2019-02-02")  # fmt: skip
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: multipart/mixed; boundary=batch_B\r\n\r\n" + body
    )
    [changeset] = message.get_payload()
    assert changeset.get_content_type() == "multipart/mixed"
    parts = changeset.get_payload()
    heads = [part.get_payload(decode=True).split(b"\r\n")[0] for part in parts]
    assert heads == [
        b"PUT http://h/acct/tbl(PartitionKey='p%2F1',RowKey='o%27%27k') HTTP/1.1",
        b"POST http://h/acct/tbl HTTP/1.1",
        b"DELETE http://h/acct/tbl(PartitionKey='p',RowKey='r') HTTP/1.1",
    ]
    assert [p["Content-ID"] for p in parts] == ["0", "1", "2"]
    first = parts[0].get_payload(decode=True)
    assert first.endswith(b'{"PartitionKey":"p/1","PartitionKey@odata.type":"Edm.String","RowKey":"o\'k",'
                          b'"RowKey@odata.type":"Edm.String","v":1}')  # fmt: skip
    assert b'If-Match: W/"1"' in parts[2].get_payload(decode=True)


ANSWER = (
    b"--batchresponse_X\r\nContent-Type: multipart/mixed; boundary=changesetresponse_Y\r\n\r\n"
    b"--changesetresponse_Y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b'HTTP/1.1 204 No Content\r\nETag: W/"a"\r\n\r\n\r\n'
    b"--changesetresponse_Y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nLocation: x\r\n\r\n\r\n"
    b"--changesetresponse_Y--\r\n--batchresponse_X--\r\n"
)
FAILED = (
    b"--batchresponse_X\r\nContent-Type: multipart/mixed; boundary=changesetresponse_Y\r\n\r\n"
    b"--changesetresponse_Y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json;odata=minimalmetadata\r\n\r\n"
    b'{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"3:The update '
    b'condition specified in the request was not satisfied."}}}\r\n'
    b"--changesetresponse_Y--\r\n--batchresponse_X--\r\n"
)


def test_an_answer_is_read_part_by_part() -> None:
    assert parse_parts(b"multipart/mixed; boundary=batchresponse_X", ANSWER) == [(204, b""), (201, b"")]
    raise_for_answer(202, "multipart/mixed; boundary=batchresponse_X", ANSWER, 2, None)


def test_a_failed_part_names_its_operation() -> None:
    with pytest.raises(TableTransactionError) as failed:
        raise_for_answer(202, 'multipart/mixed; boundary="batchresponse_X"', FAILED, 5, None)
    assert (failed.value.index, failed.value.status_code) == (3, 412)
    assert failed.value.error_code == "UpdateConditionNotSatisfied"  # type: ignore[attr-defined]


def test_an_answer_with_fewer_parts_than_operations_is_an_error_not_a_success() -> None:
    with pytest.raises(HttpResponseError, match="2 parts for 3 operations"):
        raise_for_answer(202, "multipart/mixed; boundary=batchresponse_X", ANSWER, 3, None)


def test_a_refused_transaction_raises_with_its_status() -> None:
    body = b'{"odata.error":{"code":"InvalidInput","message":{"value":"bad"}}}'
    with pytest.raises(HttpResponseError, match=r"400 \(InvalidInput\): bad"):
        raise_for_answer(400, "application/json", body, 1, None)
    with pytest.raises(HttpResponseError, match="not multipart"):
        raise_for_answer(202, "application/json", b"{}", 1, None)


def test_no_pipeline_client_means_the_sdk_sends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    class Bare:
        url, table_name, api_version = "http://h/acct", "t", "2019-02-02"

        def submit_transaction(self, operations: Any) -> None:
            sent.append(operations)

    operations = [("create", {"PartitionKey": "p", "RowKey": "r"})]
    transactions.submit_transaction(Bare(), operations)  # type: ignore[arg-type]
    assert sent == [operations]


# -- bulk writes: groups of one partition, at most 100 each, sent in parallel


def test_bulk_items_go_in_groups_of_one_partition_and_at_most_100() -> None:
    items = [("a", n) for n in range(210)] + [("b", n) for n in range(30)] + [("c", n) for n in range(10)]

    def save(group: Any) -> tuple[list[str], int]:
        return sorted({p for p, _ in group}), len(group)

    sizes = transactions.in_transactions(items, lambda item: item[0], save, parallel=1)
    assert sizes == [(["a"], 100), (["a"], 100), (["a"], 10), (["b"], 30), (["c"], 10)]


def test_bulk_groups_are_sent_at_the_same_time() -> None:
    both_in_flight = threading.Barrier(2, timeout=5)  # one group at a time would break this barrier

    def save(group: Any) -> str:
        both_in_flight.wait()
        return group[0]

    assert transactions.in_transactions(["x", "y"], str, save, parallel=4) == ["x", "y"]

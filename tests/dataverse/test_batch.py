"""$batch: many operations, per-operation results, continue-on-error, change sets, limits."""

from __future__ import annotations

import json
import uuid

import pytest

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import DataverseClient, Operation, build_verified_session, odata_bind
from shared.http import Outcome


def test_batch_of_300_operations_with_failures_under_continue_on_error(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    contact = dataverse_sandbox.create("contacts", {"lastname": "Target"})
    existing = [dataverse_sandbox.create("new_loyaltycards", {"new_name": f"card {i}"}) for i in range(50)]
    operations: list[Operation] = []
    expected: dict[int, tuple[int, str]] = {}
    for i in range(300):
        if i % 50 == 7:  # subject too long: documented validation error
            expected[len(operations)] = (400, "0x80044331")
            operations.append(Operation.create("tasks", {"subject": "x" * 250}))
        elif i % 50 == 13:  # update of a row that does not exist
            expected[len(operations)] = (404, "0x80040217")
            operations.append(Operation.update("contacts", str(uuid.uuid4()), {"lastname": "Ghost"}))
        elif i % 3 == 0:
            operations.append(
                Operation.create(
                    "tasks",
                    {
                        "subject": f"task {i}",
                        "regardingobjectid_contact_task@odata.bind": odata_bind("contacts", contact),
                    },
                    id=str(uuid.UUID(int=i + 1)),
                )
            )
        elif i % 3 == 1:
            operations.append(Operation.update("new_loyaltycards", existing[i % 50], {"new_points": i}))
        else:
            operations.append(Operation.upsert("new_loyaltycards", str(uuid.UUID(int=10_000 + i)), {"new_name": "u"}))

    results = dataverse_client.batch(operations, continue_on_error=True)

    assert [r.index for r in results] == list(range(300))
    failures = {r.index: (r.status, r.code) for r in results if not r.ok}
    assert failures == expected
    assert all(r.outcome is Outcome.RECORD_ERROR for r in results if not r.ok)
    created = [r for r, op in zip(results, operations, strict=True) if op.new_id and r.ok]
    assert created and all(r.entity_id == op.new_id for r, op in zip(results, operations, strict=True) if op.new_id)
    assert dataverse_sandbox.count("tasks") == len(created)
    batch_request = next(r for r in dataverse_sandbox.requests() if r["path"].endswith("$batch"))
    assert batch_request["headers"]["prefer"] == "odata.continue-on-error"


def test_without_continue_on_error_the_batch_stops_at_the_first_failure(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    operations = [
        Operation.create("tasks", {"subject": "one"}),
        Operation.create("tasks", {"subject": "y" * 201}),
        Operation.create("tasks", {"subject": "three"}),
    ]

    results = dataverse_client.batch(operations, continue_on_error=False)

    assert [(r.status, r.outcome) for r in results] == [
        (204, Outcome.OK),
        (400, Outcome.RECORD_ERROR),
        (0, Outcome.RETRY),  # never processed: send it again
    ]
    assert dataverse_sandbox.count("tasks") == 1


def test_a_change_set_is_atomic(dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient) -> None:
    keep = dataverse_sandbox.create("contacts", {"lastname": "Keep"})
    operations = [
        Operation.create("contacts", {"lastname": "A"}),
        Operation.update("contacts", keep, {"lastname": "Changed"}),
        Operation.delete("contacts", str(uuid.uuid4())),  # fails: the whole change set rolls back
    ]

    results = dataverse_client.batch(operations, changeset=True)

    assert [(r.status, r.outcome) for r in results] == [
        (0, Outcome.RETRY),
        (0, Outcome.RETRY),
        (404, Outcome.RECORD_ERROR),
    ]
    assert dataverse_sandbox.count("contacts") == 1
    assert dataverse_sandbox.get("contacts", keep)["lastname"] == "Keep"  # type: ignore[index]

    ok = dataverse_client.batch(operations[:2], changeset=True)
    assert [r.status for r in ok] == [204, 204] and ok[0].entity_id
    assert dataverse_sandbox.count("contacts") == 2


def test_rolled_back_changes_do_not_reach_the_delta(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    link = list(dataverse_client.iter_changes("contacts", ["lastname"]))[-1].delta_link
    dataverse_client.batch(
        [Operation.create("contacts", {"lastname": "Never"}), Operation.delete("contacts", str(uuid.uuid4()))],
        changeset=True,
    )
    assert [(p.rows, p.deleted_ids) for p in dataverse_client.iter_changes("contacts", ["lastname"], link)] == [
        ([], [])
    ]


def test_client_refuses_more_than_1000_operations(dataverse_client: DataverseClient) -> None:
    with pytest.raises(ValueError, match="1000"):
        dataverse_client.batch([Operation.delete("contacts", str(uuid.uuid4()))] * 1001)


def _raw_batch(sandbox: DataverseSandbox, body: str, boundary: str = "batch_x") -> tuple[int, str]:
    session = build_verified_session(str(sandbox.ca_path))
    response = session.post(
        f"{sandbox.api_url}$batch",
        data=body.encode(),
        headers={
            "Authorization": f"Bearer {sandbox.issue_token()}",
            "Content-Type": f'multipart/mixed; boundary="{boundary}"',
            "Accept": "application/json",
            "OData-Version": "4.0",
        },
        timeout=30,
    )
    return response.status_code, response.text


def _part(request_line: str, body: str = "", content_id: str | None = None) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        head += f"Content-ID: {content_id}\r\n"
    return f"{head}\r\n{request_line}\r\nContent-Type: application/json; type=entry\r\n\r\n{body}\r\n"


def test_sandbox_rejects_a_batch_over_1000_requests(dataverse_sandbox: DataverseSandbox) -> None:
    parts = "".join(f"--batch_x\r\n{_part('POST /api/data/v9.2/tasks HTTP/1.1', '{}')}" for _ in range(1001))
    status, text = _raw_batch(dataverse_sandbox, parts + "--batch_x--\r\n")
    assert status == 400 and "1000" in text
    assert dataverse_sandbox.count("tasks") == 0


def test_sandbox_resolves_content_id_references_and_rejects_undeclared_ones(
    dataverse_sandbox: DataverseSandbox,
) -> None:
    # Documented example shape: LF line endings, absolute URLs, a later part referencing $1.
    contact = _part(f"POST {dataverse_sandbox.api_url}contacts HTTP/1.1", json.dumps({"lastname": "R"}), "1")
    task_body = json.dumps({"subject": "s", "regardingobjectid_contact_task@odata.bind": "$1"})
    task = _part("POST /api/data/v9.2/tasks HTTP/1.1", task_body, "2")
    body = (
        "--batch_x\r\nContent-Type: multipart/mixed; boundary=changeset_y\r\n\r\n"
        f"--changeset_y\r\n{contact}--changeset_y\r\n{task}--changeset_y--\r\n--batch_x--\r\n"
    ).replace("\r\n", "\n")
    status, text = _raw_batch(dataverse_sandbox, body)
    assert status == 200 and "changesetresponse_" in text and text.count("HTTP/1.1 204") == 2
    created = dataverse_sandbox.rows("tasks")[0]
    assert created["_regardingobjectid_value"] == dataverse_sandbox.rows("contacts")[0]["contactid"]

    undeclared = (
        "--batch_x\r\nContent-Type: multipart/mixed; boundary=changeset_y\r\n\r\n"
        f"--changeset_y\r\n{_part('PATCH $9 HTTP/1.1', json.dumps({'lastname': 'R'}), '1')}"
        "--changeset_y--\r\n--batch_x--\r\n"
    )
    status, text = _raw_batch(dataverse_sandbox, undeclared)
    assert status == 400 and "Content-ID Reference: '$9' does not exist in the batch context." in text

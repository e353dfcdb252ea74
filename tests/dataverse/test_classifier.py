"""The Dataverse classifier maps error bodies to outcomes once; callers act on the outcome."""

from __future__ import annotations

import json

import pytest

from shared.clients.dataverse import classify_parts, parse_batch_response
from shared.http import Outcome

JSON = "application/json; odata.metadata=minimal"


def _error(code: str, message: str = "m") -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (200, "", Outcome.OK),
        (204, "", Outcome.OK),
        (429, "0x80072322", Outcome.RATE_LIMITED),
        (429, "0x80072321", Outcome.RATE_LIMITED),
        (429, "0x80072326", Outcome.RATE_LIMITED),
        (503, "0x80072322", Outcome.RATE_LIMITED),  # a throttling code wins over the status
        (400, "0x80044352", Outcome.FATAL),  # expired delta token: its own exception in the client
        (400, "0x80044331", Outcome.RECORD_ERROR),
        (404, "0x80040217", Outcome.RECORD_ERROR),
        (412, "0x80040237", Outcome.RECORD_ERROR),
        (401, "", Outcome.AUTH_EXPIRED),
        (403, "0x80072560", Outcome.FATAL),
        (500, "0x80040216", Outcome.RETRY),
        (503, "", Outcome.RETRY),
    ],
)
def test_outcomes(status: int, code: str, outcome: Outcome) -> None:
    assert classify_parts(status, _error(code), JSON) == (outcome, code, "m")


def test_messages_mask_email_addresses_and_are_capped() -> None:
    body = _error("0x80040237", "Duplicate: jane.doe+news@example.co.uk already exists " + "x" * 1000)
    _, _, message = classify_parts(412, body, JSON)
    assert "jane.doe" not in message and "<email>" in message
    assert len(message) <= 300


def test_non_json_bodies_fall_back_to_the_reason() -> None:
    assert classify_parts(502, b"<html>bad gateway</html>", "text/html", "Bad Gateway") == (
        Outcome.RETRY,
        "",
        "Bad Gateway",
    )


def test_batch_response_parsing_with_a_change_set_and_lf_line_endings() -> None:
    text = (
        "--batchresponse_1\n"
        "Content-Type: multipart/mixed; boundary=changesetresponse_2\n\n"
        "--changesetresponse_2\nContent-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 1\n\n"
        "HTTP/1.1 204 No Content\nOData-EntityId: https://x/api/data/v9.2/tasks(11111111-1111-1111-1111-111111111111)\n\n\n"
        "--changesetresponse_2--\n"
        "--batchresponse_1\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        'HTTP/1.1 400 Bad Request\nContent-Type: application/json\n\n{"error":{"code":"0x80044331","message":"long"}}\n'
        "--batchresponse_1--\n"
    )
    parts = parse_batch_response(text.encode(), "multipart/mixed; boundary=batchresponse_1")

    assert isinstance(parts[0], list) and parts[0][0].status == 204 and parts[0][0].content_id == "1"
    assert not isinstance(parts[1], list) and parts[1].status == 400
    assert json.loads(parts[1].body)["error"]["code"] == "0x80044331"

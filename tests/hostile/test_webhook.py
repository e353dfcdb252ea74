"""Hostile webhook requests to the opt-out HTTP function: each gets a 4xx naming what is wrong (never a stack
trace, never the body echoed), and nothing is queued. tests/optout/test_webhook_requests.py has the requests
Dataverse really sends; these are what it never sends (wrong types, nesting, encodings, headers)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.config.model import OptOutMode
from shared.core.webhook import MessageError, decode_message
from shared.flows.optout_webhook import MAX_BODY_BYTES, SECRET_HEADER, WebhookReceiver, WebhookRequest

COLUMNS = frozenset({"donotbulkemail"})
CONTACT = "6c0b5a12-3e4f-4a5b-8c9d-0e1f2a3b4c5d"
USER = "1a2b3c4d-0000-4000-8000-000000000001"
SECRET = "the-shared-header-secret"
CONTEXT: dict[str, Any] = {  # the shape of a Dataverse RemoteExecutionContext (docs/optout.md)
    "MessageName": "Update",
    "PrimaryEntityName": "contact",
    "PrimaryEntityId": CONTACT,
    "InitiatingUserId": USER,
    "InputParameters": [{"key": "Target", "value": {
        "LogicalName": "contact", "Id": CONTACT, "RowVersion": "90210",
        "Attributes": [{"key": "donotbulkemail", "value": True},
                       {"key": "modifiedon", "value": "/Date(1764633600000)/"}],
    }}],
}  # fmt: skip
JSON = {"content-type": "application/json"}


class Queue:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str) -> str:
        self.sent.append(text)
        return "m1"


def edited(change: Callable[[dict[str, Any]], Any]) -> bytes:
    body = copy.deepcopy(CONTEXT)
    change(body)
    return json.dumps(body).encode()


def target(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["InputParameters"][0]["value"])


def set_target(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["InputParameters"][0]["value"].update(values)


def set_optout(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["InputParameters"][0]["value"]["Attributes"][0].update(value=value)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_in_context(body: dict[str, Any]) -> None:
    body["InputParameters"][0]["value"]["Attributes"].append({"key": "x", "value": None})


def deep_body() -> bytes:
    text = edited(deep_in_context).decode()
    return text.replace('"value": null', '"value": ' + "[" * 200_000 + "]" * 200_000).encode()


# (name, method, body, headers, receiver secret, status, gist of the reason)
CASES: list[tuple[str, str, bytes, dict[str, str], str | None, int, str]] = [
    ("deeply nested array", "POST", nested(200_000), JSON, None, 400, "nested too deeply"),
    ("deep nesting inside a real context", "POST", deep_body(), JSON, None, 400, "nested too deeply"),
    ("empty body", "POST", b"", JSON, None, 400, "not JSON"),
    ("JSON null", "POST", b"null", JSON, None, 400, "not a JSON object"),
    ("a JSON string", "POST", b'"Update"', JSON, None, 400, "not a JSON object"),
    ("UTF-16 body", "POST", json.dumps(CONTEXT).encode("utf-16"), JSON, None, 400, "not JSON"),
    ("MessageName a list", "POST", edited(lambda b: b.update(MessageName=["Update"])), JSON, None, 400,
     "MessageName"),
    ("MessageName a number", "POST", edited(lambda b: b.update(MessageName=7)), JSON, None, 400, "MessageName"),
    ("PrimaryEntityName a list", "POST", edited(lambda b: b.update(PrimaryEntityName=["contact"])), JSON, None,
     422, "contact"),
    ("PrimaryEntityId a number", "POST", edited(lambda b: b.update(PrimaryEntityId=42)), JSON, None, 400,
     "PrimaryEntityId"),
    ("PrimaryEntityId with a path", "POST", edited(lambda b: b.update(PrimaryEntityId=CONTACT + "/../accounts")),
     JSON, None, 400, "PrimaryEntityId"),
    ("PrimaryEntityId with an OData quote", "POST", edited(lambda b: b.update(PrimaryEntityId=f"{CONTACT}') or ('1")),
     JSON, None, 400, "PrimaryEntityId"),
    ("InputParameters an object", "POST", edited(lambda b: b.update(InputParameters={"Target": {}})), JSON, None,
     400, "InputParameters"),
    ("Target a string", "POST", edited(lambda b: b["InputParameters"][0].update(value="contact")), JSON, None, 400,
     "Target is not an Entity"),
    ("Target of another table", "POST", edited(set_target(LogicalName="account")), JSON, None, 422,
     "Target is not a contact"),
    ("attribute entry a bare string", "POST", edited(lambda b: b["InputParameters"][0]["value"].update(
        Attributes=["donotbulkemail"])), JSON, None, 400, "key/value"),
    ("attribute key a number", "POST", edited(lambda b: b["InputParameters"][0]["value"].update(
        Attributes=[{"key": 1, "value": True}])), JSON, None, 400, "key/value"),
    ("opt-out as 1", "POST", edited(set_optout(1)), JSON, None, 422, "'donotbulkemail' is not a boolean"),
    ("opt-out as null", "POST", edited(set_optout(None)), JSON, None, 422, "'donotbulkemail' is not a boolean"),
    ("opt-out as a nested object", "POST", edited(set_optout({"value": True})), JSON, None, 422,
     "'donotbulkemail' is not a boolean"),
    ("plain text content type", "POST", json.dumps(CONTEXT).encode(), {"content-type": "text/plain"}, None, 415,
     "Content-Type"),
    ("form content type", "POST", json.dumps(CONTEXT).encode(),
     {"content-type": "application/x-www-form-urlencoded"}, None, 415, "Content-Type"),
    ("valid JSON far over the size limit", "POST",
     edited(lambda b: b.update(CorrelationId="x" * (MAX_BODY_BYTES + 1))), JSON, None, 413, "bytes"),
    ("secret in the wrong header", "POST", json.dumps(CONTEXT).encode(),
     {**JSON, "authorization": SECRET}, SECRET, 401, SECRET_HEADER),
    ("secret in another case", "POST", json.dumps(CONTEXT).encode(),
     {**JSON, SECRET_HEADER: SECRET.upper()}, SECRET, 401, SECRET_HEADER),
    ("secret with a trailing space", "POST", json.dumps(CONTEXT).encode(),
     {**JSON, SECRET_HEADER: SECRET + " "}, SECRET, 401, SECRET_HEADER),
    ("right secret, wrong method", "PUT", json.dumps(CONTEXT).encode(), {**JSON, SECRET_HEADER: SECRET}, SECRET,
     405, "POST"),
]  # fmt: skip


def receiver(queue: Queue, secret: str | None) -> WebhookReceiver:
    return WebhookReceiver(mode=OptOutMode.TO_CAMPAIGN, columns=COLUMNS, send=queue.send, secret=secret)


def test_the_well_formed_context_is_queued() -> None:
    """The cases below differ from this one request by their hostile part only."""
    queue = Queue()
    answer = receiver(queue, SECRET).handle(
        WebhookRequest("POST", {**JSON, SECRET_HEADER: SECRET}, json.dumps(CONTEXT).encode())
    )
    assert answer.status == 202 and len(queue.sent) == 1


@pytest.mark.parametrize(("method", "body", "headers", "secret", "status", "gist"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_hostile_request_gets_a_precise_4xx_and_queues_nothing(
    method: str, body: bytes, headers: dict[str, str], secret: str | None, status: int, gist: str
) -> None:
    queue = Queue()
    answer = receiver(queue, secret).handle(WebhookRequest(method, headers, body))
    assert (answer.status, answer.body["status"]) == (status, "refused"), answer
    reason = answer.body["reason"]
    assert gist in reason and "Traceback" not in reason and len(reason) < 300
    assert CONTACT not in reason and SECRET not in reason  # nothing of the request is echoed
    assert queue.sent == []


def test_a_deeply_nested_queue_message_is_not_applicable_rather_than_a_crash() -> None:
    with pytest.raises(MessageError, match="not JSON"):
        decode_message(nested(200_000).decode())

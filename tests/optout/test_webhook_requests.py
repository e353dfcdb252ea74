"""The webhook receiver: what Dataverse really sends becomes one queue message; every malformed or
unauthenticated request gets a precise 4xx and nothing is queued."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.config.model import OptOutMode
from shared.core.webhook import CHANGE, FETCH, decode_message, parse_ms_date
from shared.flows.optout_webhook import SECRET_HEADER, WebhookReceiver, WebhookRequest
from tests.optout.conftest import Captured, Deliveries

COLUMNS = frozenset({"donotbulkemail", "donotphone"})
SECRET = "s3cret-shared-header"


class Queue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def send(self, text: str) -> str:
        if self.fail:
            raise ConnectionError("queue down")
        self.sent.append(text)
        return f"m{len(self.sent)}"


def receiver(queue: Queue, *, secret: str | None = None, mode: OptOutMode = OptOutMode.TO_CAMPAIGN) -> WebhookReceiver:
    return WebhookReceiver(mode=mode, columns=COLUMNS, send=queue.send, secret=secret)


def request(captured: Captured, *, body: bytes | None = None, **headers: str) -> WebhookRequest:
    merged = {**captured.headers, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return WebhookRequest("POST", merged, captured.raw if body is None else body)


def test_an_opt_out_update_becomes_one_change_message(deliveries: Deliveries) -> None:
    queue = Queue()
    answer = receiver(queue).handle(request(deliveries.update_optout))
    assert answer.status == 202 and answer.body["status"] == "queued"
    [text] = queue.sent
    message = decode_message(text)
    body = deliveries.update_optout.body
    target = body["InputParameters"][0]["value"]
    attributes = {a["key"]: a["value"] for a in target["Attributes"]}
    assert message.kind == CHANGE and message.contact == deliveries.contact
    assert dict(message.values) == {"donotbulkemail": True}
    assert message.modifiedon == parse_ms_date(attributes["modifiedon"]) and message.version == int(
        target["RowVersion"]
    )
    assert message.user == body["InitiatingUserId"] and message.message == "Update"
    assert message.correlation == deliveries.update_optout.headers["x-ms-correlation-request-id"]
    assert "Ada" not in text and "Stone" not in text  # ids, booleans and times only


def test_a_create_carries_its_opt_outs(deliveries: Deliveries) -> None:
    queue = Queue()
    assert receiver(queue).handle(request(deliveries.create)).status == 202
    message = decode_message(queue.sent[0])
    assert message.message == "Create" and dict(message.values) == {"donotbulkemail": False, "donotphone": False}


def test_the_connector_own_write_is_queued_with_its_user_for_the_processor_to_recognise(deliveries: Deliveries) -> None:
    queue = Queue()
    assert receiver(queue).handle(request(deliveries.app_update)).status == 202
    assert decode_message(queue.sent[0]).user == deliveries.app_user


def test_a_post_image_supplies_the_version(deliveries: Deliveries) -> None:
    body = json.loads(deliveries.post_image.raw)
    body["InputParameters"][0]["value"]["RowVersion"] = None  # as the Dataverse docs' example shows it [U]
    queue = Queue()
    answer = receiver(queue).handle(request(deliveries.post_image, body=json.dumps(body).encode()))
    assert answer.status == 202
    message = decode_message(queue.sent[0])
    post = {a["key"]: a["value"] for a in body["PostEntityImages"][0]["value"]["Attributes"]}
    assert message.kind == CHANGE and message.version == int(post["versionnumber"])


def test_without_a_version_the_processor_reads_the_contact(deliveries: Deliveries) -> None:
    body = json.loads(deliveries.update_optout.raw)
    body["InputParameters"][0]["value"]["RowVersion"] = None
    queue = Queue()
    assert receiver(queue).handle(request(deliveries.update_optout, body=json.dumps(body).encode())).status == 202
    message = decode_message(queue.sent[0])
    assert (message.kind, message.contact, dict(message.values)) == (FETCH, deliveries.contact, {})


def test_an_oversized_body_is_queued_as_fetch_this_contact(deliveries: Deliveries) -> None:
    assert "x-ms-dynamics-msg-size-exceeded" in deliveries.oversized.headers
    queue = Queue()
    answer = receiver(queue).handle(request(deliveries.oversized))
    assert answer.status == 202 and answer.body["kind"] == FETCH
    assert decode_message(queue.sent[0]).contact == deliveries.contact


@pytest.mark.parametrize("which", ["update_other", "delete"])
def test_notifications_with_nothing_to_carry_are_ignored_with_2xx(deliveries: Deliveries, which: str) -> None:
    queue = Queue()
    answer = receiver(queue).handle(request(getattr(deliveries, which)))
    assert answer.status == 200 and answer.body["status"] == "ignored" and queue.sent == []


@pytest.mark.parametrize("mode", [OptOutMode.DISABLED, OptOutMode.TO_DYNAMICS])
def test_modes_without_dynamics_to_campaign_queue_nothing(deliveries: Deliveries, mode: OptOutMode) -> None:
    queue = Queue()
    answer = receiver(queue, mode=mode).handle(request(deliveries.update_optout))
    assert answer.status == 200 and mode.value in answer.body["reason"] and queue.sent == []


def test_the_shared_secret_lets_the_request_through(deliveries: Deliveries) -> None:
    queue = Queue()
    answer = receiver(queue, secret=SECRET).handle(request(deliveries.update_optout, **{SECRET_HEADER: SECRET}))
    assert answer.status == 202 and len(queue.sent) == 1


def test_a_queue_that_cannot_be_written_answers_503_for_dataverse_to_retry(deliveries: Deliveries) -> None:
    answer = receiver(Queue(fail=True)).handle(request(deliveries.update_optout))
    assert answer.status == 503  # one of the three statuses Dataverse retries once


def _edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Captured], bytes]:
    def make(captured: Captured) -> bytes:
        body = json.loads(captured.raw)
        change(body)
        return json.dumps(body).encode()

    return make


def _target(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["InputParameters"][0]["value"])


def _set_attr(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        for pair in body["InputParameters"][0]["value"]["Attributes"]:
            if pair["key"] == name:
                pair["value"] = value

    return change


# (name, status, the reason's gist, body maker or None for the captured body, extra headers, receiver secret)
BAD: list[tuple[str, int, str, Callable[[Captured], bytes] | None, dict[str, str], str | None]] = [
    ("no secret header", 401, SECRET_HEADER, None, {}, SECRET),
    ("wrong secret", 401, SECRET_HEADER, None, {SECRET_HEADER: "guess"}, SECRET),
    ("secret of another length", 401, SECRET_HEADER, None, {SECRET_HEADER: SECRET + "x"}, SECRET),
    ("empty secret", 401, SECRET_HEADER, None, {SECRET_HEADER: ""}, SECRET),
    ("not JSON", 400, "not JSON", lambda c: b"<RemoteExecutionContext/>", {}, None),
    ("truncated JSON", 400, "not JSON", lambda c: c.raw[: len(c.raw) // 2], {}, None),
    ("not UTF-8", 400, "not JSON", lambda c: b"\xff\xfe{}", {}, None),
    ("a JSON array", 400, "not a JSON object", lambda c: b"[1, 2]", {}, None),
    ("no MessageName", 400, "MessageName", _edit(lambda b: b.pop("MessageName")), {}, None),
    ("another entity", 422, "contact", _edit(lambda b: b.update(PrimaryEntityName="account")), {}, None),
    ("entity header disagrees", 422, "contact", None, {"x-ms-dynamics-entity-name": "account"}, None),
    ("unknown message", 422, "not handled", _edit(lambda b: b.update(MessageName="Assign")),
     {"x-ms-dynamics-request-name": "Assign"}, None),
    ("request-name header disagrees", 400, "request-name", None, {"x-ms-dynamics-request-name": "Create"}, None),
    ("no PrimaryEntityId", 400, "PrimaryEntityId", _edit(lambda b: b.pop("PrimaryEntityId")), {}, None),
    ("PrimaryEntityId not a GUID", 400, "PrimaryEntityId", _edit(lambda b: b.update(PrimaryEntityId="42")), {},
     None),
    ("Target of another record", 400, "Target.Id",
     _edit(lambda b: b["InputParameters"][0]["value"].update(Id="00000000-0000-0000-0000-000000000001")), {}, None),
    ("no InputParameters", 400, "InputParameters", _edit(lambda b: b.pop("InputParameters")), {}, None),
    ("no Target", 400, "Target", _edit(lambda b: b.update(InputParameters=[])), {}, None),
    ("Attributes not pairs", 400, "key/value",
     _edit(lambda b: b["InputParameters"][0]["value"].update(Attributes={"donotbulkemail": True})), {}, None),
    ("opt-out not a boolean", 422, "donotbulkemail", _edit(_set_attr("donotbulkemail", "yes")), {}, None),
    ("modifiedon not a date", 422, "modifiedon", _edit(_set_attr("modifiedon", "2026-01-01")), {}, None),
    ("XML content type", 415, "Content-Type", None, {"content-type": "application/xml"}, None),
    ("body far over Dataverse's limit", 413, "bytes", lambda c: b" " * (1024 * 1024 + 1), {}, None),
]  # fmt: skip


@pytest.mark.parametrize(("status", "gist", "body", "headers", "secret"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])  # fmt: skip
def test_malformed_or_unauthenticated_requests_get_a_precise_4xx_and_queue_nothing(
    deliveries: Deliveries, status: int, gist: str, body: Callable[[Captured], bytes] | None,
    headers: dict[str, str], secret: str | None,
) -> None:  # fmt: skip
    queue = Queue()
    captured = deliveries.update_optout
    answer = receiver(queue, secret=secret).handle(request(captured, body=body(captured) if body else None, **headers))
    assert 400 <= answer.status < 500 and answer.status == status, answer
    assert gist in answer.body["reason"]
    assert queue.sent == []


def test_a_get_is_refused(deliveries: Deliveries) -> None:
    queue = Queue()
    answer = receiver(queue).handle(WebhookRequest("GET", {}, b""))
    assert answer.status == 405 and queue.sent == []


def test_refusals_never_echo_the_body(deliveries: Deliveries) -> None:
    body = json.loads(deliveries.update_optout.raw)
    body["MessageName"] = "Assign<script>ada@example.com"
    answer = receiver(Queue()).handle(
        request(
            deliveries.update_optout,
            body=json.dumps(body).encode(),
            **{"x-ms-dynamics-request-name": "Assign<script>ada@example.com"},
        )
    )
    assert answer.status == 422 and "@" not in answer.body["reason"] and "<" not in answer.body["reason"]

"""Webhook requests exactly as Dataverse sends them: captured from the Dataverse sandbox's real deliveries (after
committed writes, by a Dynamics user and by the connector's application user), once per test module."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.dataverse import DataverseSandbox
from tests.fixtures.dataverse import Api, WebhookReceiver


@dataclasses.dataclass(frozen=True)
class Captured:
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]


@dataclasses.dataclass
class Deliveries:
    contact: str
    app_user: str
    update_optout: Captured  # a Dynamics user sets donotbulkemail (filtering attributes off: every update fires)
    update_other: Captured  # a Dynamics user changes only lastname
    create: Captured
    app_update: Captured  # the connector's application user sets donotbulkemail
    post_image: Captured  # a step with a post image carrying versionnumber
    oversized: Captured  # a body over 256 KB
    delete: Captured


@pytest.fixture(scope="module")
def deliveries() -> Iterator[Deliveries]:
    receiver = WebhookReceiver()
    sandbox = DataverseSandbox().start()
    try:
        api = Api(sandbox)
        assert api.post("EntityDefinitions(LogicalName='contact')/Attributes",
                        {"@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata", "SchemaName": "new_Notes",
                         "MaxLength": 400_000}).status_code < 300  # fmt: skip
        step = sandbox.register_webhook(receiver.url, messages=["Create", "Update", "Delete"], value="k")
        contact = sandbox.create("contacts", {"firstname": "Ada", "lastname": "Stone", "donotbulkemail": False})
        sandbox.update("contacts", contact, {"donotbulkemail": True})
        sandbox.update("contacts", contact, {"lastname": "Stone-Smith"})
        assert api.patch(f"contacts({contact})", {"donotbulkemail": False}, If_Match="*").status_code == 204
        sandbox.update("contacts", contact, {"new_notes": "n" * 300_000})
        sandbox.flush_webhooks()
        sandbox.unregister_webhook(step)
        sandbox.register_webhook(receiver.url, messages=["Update"], value="k",
                                 post_image=["versionnumber", "modifiedon", "donotbulkemail"])  # fmt: skip
        sandbox.update("contacts", contact, {"donotbulkemail": True})
        sandbox.flush_webhooks()
        sandbox.register_webhook(receiver.url, messages=["Delete"], value="k")
        sandbox.delete("contacts", contact)
        sandbox.flush_webhooks()
        got = [Captured(r["headers"], r["raw"], r["body"]) for r in receiver.received]
        assert len(got) == 7, [g.headers.get("x-ms-dynamics-request-name") for g in got]
        create, update_optout, update_other, app_update, oversized, post_image, delete = got
        yield Deliveries(contact, sandbox.application_user_id, update_optout, update_other, create, app_update,
                         post_image, oversized, delete)  # fmt: skip
        api.session.close()
    finally:
        sandbox.stop()
        receiver.close()

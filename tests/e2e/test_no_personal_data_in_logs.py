"""Secrets and personal data never reach a log, whatever happens during a run."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_ingress import contacts_only


def test_logs_and_summaries_carry_no_personal_data_or_secrets(
    stack_factory: Callable[..., Stack], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="20")
    stack.dv.seed_contacts(60)
    stack.dv.create("contacts", {"firstname": "Zéphyrine" * 5, "lastname": "Quintessa",
                                 "emailaddress1": "zephyrine.quintessa@example.net"})  # fmt: skip  # dead-lettered
    stack.acs.fail(503, method="POST", path="/profile", times=2)
    stack.acs.fail(400, method="PATCH", path="/profile", times=1)
    stack.acs.expire_tokens()
    [run] = stack.run()
    stack.dv.update("contacts", stack.dv.rows("contacts")[0]["contactid"], {"lastname": "Changed"})
    stack.dv.expire_delta_tokens()
    [again] = stack.run()
    assert run.outcome == again.outcome == "completed"
    assert run.counts["dead_lettered"] == 1

    personal = {value for row in stack.dv.rows("contacts") for value in
                (row["emailaddress1"], row["firstname"], row["lastname"], row["telephone1"]) if value}  # fmt: skip
    secrets = {stack.dv.client_secret, stack.acs.client_secret}
    text = "\n".join(record.getMessage() for record in caplog.records) + run.to_json() + again.to_json()
    from shared.state.deadletters import DeadLetterStore

    text += "\n".join(d.reason for d in DeadLetterStore(stack.svc.state.table("deadletters")).entries())
    leaked = sorted(value for value in personal | secrets if len(value) > 3 and value in text)
    assert leaked == []

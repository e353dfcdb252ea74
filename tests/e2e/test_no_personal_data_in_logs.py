"""Secrets and personal data never reach a log, whatever happens during a run: a run through retries, a refused
record, an expired token and a resync. The checking is the suite's autouse leak guard
(tests/e2e/conftest.py, tests/security/leaks.py): every log record at DEBUG, the run summaries and the dead-letter
reasons, against the sandboxes' rows and every secret setting; this test gives it the hard cases to look at."""

from __future__ import annotations

from collections.abc import Callable

from shared.state.deadletters import DeadLetterStore
from tests.e2e.conftest import Stack
from tests.e2e.test_ingress import contacts_only


def test_logs_and_summaries_carry_no_personal_data_or_secrets(stack_factory: Callable[..., Stack]) -> None:
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
    assert len(DeadLetterStore(stack.svc.state.table("deadletters")).entries()) == 1  # a reason for the guard

"""Opt-out under failure: messages that keep failing reach the poison queue and the dead letters and are retried
by the timer from Dynamics; a record error is parked at once; an unauthenticated webhook is refused before the
function runs; pairs that do not fit the instances stop the run naming the pair; the operator CLI explains."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import pytest
import requests

from shared import cli
from shared.flows.counts import Count
from shared.state.deadletters import DeadLetterStore
from tests.e2e import optout_harness
from tests.e2e.optout_harness import FUNCTION_KEY, OptOutStack, document

optout_stack_factory = optout_harness.optout_stack_factory  # the fixture


def letters(stack: OptOutStack) -> DeadLetterStore:
    return DeadLetterStore(stack.stack.svc.state.table("deadletters"))


def test_a_message_that_keeps_failing_goes_to_the_poison_queue_and_the_timer_retries_it(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(3)
    stack.ingress()
    stack.register_webhook()
    contact = stack.dv.rows("contacts")[0]["contactid"]
    wanted = not stack.profile(contact)["denyListEmail"]
    stack.acs.fail(503, method="PATCH", path="/profile", times=None)  # Campaign is down for PATCHes

    stack.dv.update("contacts", contact, {"donotbulkemail": wanted})
    stack.deliver()

    assert stack.pump.stats.poisoned == 1 and stack.pump.stats.failed == 5  # host.json maxDequeueCount
    poison = list(stack.pump.poison.peek_messages(max_messages=5))
    assert len(poison) == 1
    [letter] = letters(stack).entries("optout", "webhooks")
    assert letter.record_id == contact and "poison after 5 attempts" in letter.reason and "503" in letter.reason
    [status] = stack.run("webhooks")  # Campaign is still down: the retry meets the outage and the run stops
    assert status.outcome == "failed" and "503" in status.reason
    assert status.counts[Count.OPTOUT_POISONED] == 1

    stack.acs.clear_faults()
    [summary] = stack.run("webhooks")
    assert summary.outcome == "completed", summary.reason
    assert summary.counts[Count.DEAD_LETTER_RETRIES_OK] == 1 and summary.counts[Count.OPTOUT_TO_CAMPAIGN] == 1
    assert stack.profile(contact)["denyListEmail"] is wanted
    assert letters(stack).entries("optout", "webhooks") == []


def test_a_record_error_is_dead_lettered_at_once_without_retrying_the_message(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(2)
    stack.ingress()
    stack.register_webhook()
    contact = stack.dv.rows("contacts")[1]["contactid"]
    stack.acs.fail(400, method="PATCH", path="/profile", times=1,
                   body={"code": 400, "message": "RST-360011 An error has occurred"})  # fmt: skip
    stack.dv.update("contacts", contact, {"donotphone": not stack.profile(contact)["denyListPhone"]})
    stack.deliver()
    assert (stack.pump.stats.failed, stack.pump.stats.poisoned, stack.pump.stats.succeeded) == (0, 0, 1)
    [letter] = letters(stack).entries("optout", "webhooks")
    assert letter.record_id == contact and "400" in letter.reason


@pytest.mark.parametrize("params", [{}, {"code": "wrong"}, {"code": ""}], ids=["no key", "wrong key", "empty key"])
def test_an_unauthenticated_webhook_is_refused_before_the_function_runs(
    optout_stack_factory: Callable[..., OptOutStack], params: dict[str, str],
) -> None:  # fmt: skip
    stack = optout_stack_factory("toCampaign")
    body = {"MessageName": "Update", "PrimaryEntityName": "contact"}
    answer = requests.post(stack.webhook_url, params=params, json=body, timeout=10)
    assert answer.status_code == 401
    assert stack.pump.run_once() == 0
    tables = stack.stack.svc.state.table("optoutaudit")
    assert list(tables.list_entities()) == []


def test_the_shared_secret_is_required_when_set(optout_stack_factory: Callable[..., OptOutStack]) -> None:
    stack = optout_stack_factory("toCampaign", OPTOUT_WEBHOOK_SECRET="header-secret-value")
    stack.dv.seed_contacts(1)
    stack.ingress()
    contact = stack.dv.rows("contacts")[0]["contactid"]
    stack.register_webhook()  # WebhookKey only: no header, so every delivery is refused
    stack.dv.update("contacts", contact, {"donotbulkemail": True})
    stack.dv.flush_webhooks()
    [delivery] = stack.dv.webhook_deliveries()
    assert [a["status"] for a in delivery["attempts"]] == [401] and stack.pump.run_once() == 0

    # HttpHeader authentication can carry both: the function key and the shared secret.
    stack.dv.register_webhook(stack.webhook_url, messages=["Update"], auth="HttpHeader",
                              value={"x-functions-key": FUNCTION_KEY, "x-optout-webhook-secret": "header-secret-value"},
                              filtering_attributes=["donotbulkemail"])  # fmt: skip
    stack.dv.update("contacts", contact, {"donotbulkemail": True})
    stack.deliver()
    assert stack.pump.stats.succeeded == 1 and stack.profile(contact)["denyListEmail"] is True


def test_a_pair_whose_dynamics_column_is_no_boolean_stops_the_run_naming_the_pair(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    config = document("toDynamics")
    config["optOut"]["pairs"].append({"dynamics": "address1_city", "campaign": "denyListFax"})
    stack = optout_stack_factory("toDynamics", config=config)
    [summary] = stack.run("campaign-file")
    assert summary.outcome == "failed"
    assert "optOut.pairs[2] (address1_city <-> denyListFax)" in summary.reason and "not a Boolean" in summary.reason


def test_cli_explains_a_contact_and_shows_the_flow(
    optout_stack_factory: Callable[..., OptOutStack], tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(2)
    stack.ingress()
    stack.register_webhook()
    contact = stack.dv.rows("contacts")[0]["contactid"]
    stack.dv.update("contacts", contact, {"donotbulkemail": True})
    stack.deliver()
    for name, value in stack.stack.env.items():
        monkeypatch.setenv(name, value)

    assert cli.main(["optout", "why", contact]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"opt-out decisions for contact {contact}, newest first:"
    assert "denyListEmail = true  via webhook: write Campaign (toCampaign: Dynamics is the source of truth)" in lines[1]
    assert "via ingress" in out  # the profile's creation, older, below
    assert cli.main(["optout", "why", contact, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["source"] == "webhook" and rows[0]["value"] is True
    assert cli.main(["optout", "why", "not-a-guid"]) == 2

    assert cli.main(["status", "optout", "--json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert (status["flow"], status["scope"], status["cursor"]) == ("optout", "webhooks", "never run")
    assert status["backlog"] == "0 message(s) queued, 0 in the poison queue"
    assert cli.main(["run", "optout", "--json"]) == 0
    capsys.readouterr()
    assert cli.main(["status", "optout", "--json"]) == 0
    [status] = json.loads(capsys.readouterr().out)
    assert status["cursor"] == "queue=0 poison=0" and status["last_outcome"] == "completed"

"""toCampaign end to end: an opt-out made in Dynamics reaches Campaign through the real webhook delivery, the
function app's HTTP function, the queue on Azurite and the queue-triggered processor; ingress is the safety net
and never writes the same change again; duplicates, replays and reordering converge on the newest value."""

from __future__ import annotations

import collections
from collections.abc import Callable

import requests

from shared.flows.counts import Count
from tests.e2e import optout_harness
from tests.e2e.optout_harness import FUNCTION_KEY, OptOutStack

optout_stack_factory = optout_harness.optout_stack_factory  # the fixture


def patches(stack: OptOutStack, contact: str) -> list[dict[str, object]]:
    """The Campaign PATCH bodies sent for one contact's profile."""
    href = stack.profile(contact)["href"]
    path = href.split("/campaign/", 1)[1]
    return [r["json"] for r in stack.acs.requests(path_contains=path, method="PATCH")]


def test_a_dynamics_opt_out_reaches_campaign_and_ingress_does_not_write_it_again(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(12)
    stack.ingress()
    stack.register_webhook()
    contact = stack.dv.rows("contacts")[3]["contactid"]
    before, phone = stack.profile(contact)["denyListEmail"], stack.profile(contact)["denyListPhone"]

    stack.dv.update("contacts", contact, {"donotbulkemail": not before})
    stack.deliver()

    assert stack.profile(contact)["denyListEmail"] is (not before)
    assert patches(stack, contact) == [{"denyListEmail": not before}]
    history = [(e.source, e.attribute, e.value, e.verdict) for e in stack.history(contact)]
    assert history[0] == ("webhook", "denyListEmail", not before, "write Campaign")  # newest first
    assert sorted(history[1:]) == [("ingress", "denyListEmail", before, "write Campaign"),  # the profile's creation
                                   ("ingress", "denyListPhone", phone, "write Campaign")]  # fmt: skip

    stack.acs.clear_requests()
    summary = stack.ingress()  # the safety net reads the changed row: the change is already in Campaign
    assert summary.counts.get(Count.UPDATED, 0) == 0
    assert stack.acs.requests(method="PATCH") == [] and stack.acs.requests(method="POST") == []


def test_ingress_catches_an_opt_out_the_webhook_missed_and_the_late_webhook_changes_nothing(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(6)
    stack.ingress()
    stack.register_webhook()
    stack.dv.pause_webhooks()  # the delivery is late (or lost): ingress gets there first
    contact = stack.dv.rows("contacts")[0]["contactid"]
    stack.dv.update("contacts", contact, {"donotphone": True, "donotbulkemail": True})

    stack.acs.clear_requests()
    summary = stack.ingress()
    assert summary.counts == {Count.READ: 1, Count.UPDATED: 1}
    profile = stack.profile(contact)
    assert (profile["denyListPhone"], profile["denyListEmail"]) == (True, True)
    [body] = patches(stack, contact)
    assert {k: body[k] for k in ("denyListEmail", "denyListPhone")} == {"denyListEmail": True, "denyListPhone": True}

    stack.acs.clear_requests()
    stack.dv.resume_webhooks()
    stack.deliver()
    assert patches(stack, contact) == []  # the same change, already applied by ingress
    assert [e.verdict for e in stack.history(contact)][:2] == ["skip", "skip"]


def _flip_flop(stack: OptOutStack, contact: str) -> None:
    """Four changes from False, the newest True, each delivered twice, newest first (older ones arrive after it)."""
    stack.dv.pause_webhooks()
    stack.dv.duplicate_webhooks(4)
    for value in (True, False, False, True):
        stack.dv.update("contacts", contact, {"donotbulkemail": value})
    stack.dv.resume_webhooks("lifo")
    stack.deliver()


def test_duplicated_and_reordered_deliveries_one_at_a_time_write_only_the_newest(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")
    stack.use_pump(batch_size=1)
    stack.dv.seed_contacts(4)
    contact = stack.dv.rows("contacts")[1]["contactid"]
    stack.dv.update("contacts", contact, {"donotbulkemail": False})
    stack.ingress()
    stack.register_webhook()
    stack.acs.clear_requests()
    _flip_flop(stack, contact)

    assert stack.profile(contact)["denyListEmail"] is True
    assert patches(stack, contact) == [{"denyListEmail": True}]  # the newest, once: the rest older or duplicates
    verdicts = [(e.verdict, e.rule) for e in stack.history(contact) if e.source == "webhook"]
    assert verdicts.count(("write Campaign", "toCampaign: Dynamics is the source of truth")) == 1
    assert len(verdicts) == 8 and verdicts.count(("skip", "the change already applied (redelivery)")) == 1
    assert verdicts.count(("skip", "older than the change already applied")) == 6


def test_concurrent_duplicated_reordered_and_replayed_deliveries_converge_on_the_newest(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")  # the pump takes 16 messages at once, as the host does
    stack.dv.seed_contacts(4)
    contact = stack.dv.rows("contacts")[1]["contactid"]
    stack.dv.update("contacts", contact, {"donotbulkemail": False})
    stack.ingress()
    stack.register_webhook()
    stack.acs.clear_requests()
    _flip_flop(stack, contact)
    assert stack.profile(contact)["denyListEmail"] is True
    assert len(patches(stack, contact)) <= 2 * 8  # racing deliveries repair each other a bounded number of times

    # A replay of the whole delivery log (as re-sending the failed System Jobs would): nothing changes.
    stack.acs.clear_requests()
    log = stack.dv.webhook_deliveries()
    for delivery in log:
        answer = requests.post(stack.webhook_url, params={"code": FUNCTION_KEY}, headers=delivery["headers"],
                               json=delivery["body"], timeout=10)  # fmt: skip
        assert answer.status_code == 202, answer.text
    stack.pump.drain()
    assert len(log) == 8 and patches(stack, contact) == [] and stack.profile(contact)["denyListEmail"] is True


def test_a_contact_without_a_profile_gets_none_from_an_opt_out_and_ingress_creates_it_with_the_value(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_stack_factory("toCampaign")
    stack.register_webhook()
    contact = stack.dv.create("contacts", {"firstname": "New", "lastname": "Person", "donotbulkemail": True})
    stack.deliver()
    assert stack.acs.rows("profile") == []  # never created by an opt-out alone
    assert stack.history(contact)[0].rule.startswith("no Campaign profile")

    stack.ingress()
    assert stack.profile(contact)["denyListEmail"] is True
    stack.acs.clear_requests()
    stack.dv.update("contacts", contact, {"donotbulkemail": True})  # same value: no webhook, nothing to write
    stack.deliver()
    assert stack.acs.requests(method="PATCH") == []


def test_disabled_mode_queues_nothing_and_runs_nothing(optout_stack_factory: Callable[..., OptOutStack]) -> None:
    config = optout_harness.document("toCampaign")
    config["optOut"]["mode"] = "disabled"
    stack = optout_stack_factory("disabled", config=config)
    stack.dv.seed_contacts(2)
    stack.ingress()  # the contact mapping still carries the fields, as plain fields
    stack.register_webhook()
    contact = stack.dv.rows("contacts")[0]["contactid"]
    stack.dv.update("contacts", contact, {"donotbulkemail": True})
    stack.dv.flush_webhooks()
    [delivery] = stack.dv.webhook_deliveries()
    assert [a["status"] for a in delivery["attempts"]] == [200]  # answered "ignored": Dataverse does not retry
    assert stack.pump.run_once() == 0
    assert stack.run() == []  # no scope in this mode
    assert stack.history(contact) == []


def test_a_page_of_many_chunks_carries_every_opt_out_its_first_read_and_its_later_reads_alike(
    optout_stack_factory: Callable[..., OptOutStack],
) -> None:
    # Over 128 changes make a page of several chunks: the first one's index and opt-out records are read at
    # once, the later ones' opt-outs after their index (shared/flows/ingress.py, _known).
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(300)
    stack.ingress()
    stack.register_webhook()
    stack.dv.pause_webhooks()  # lost deliveries: ingress is the one that carries the changes
    contacts = [row["contactid"] for row in stack.dv.rows("contacts")]
    wanted = {}
    for number, contact in enumerate(contacts[:260]):
        wanted[contact] = not stack.profile(contact)["denyListEmail"]
        stack.dv.update("contacts", contact, {"donotbulkemail": wanted[contact], "lastname": f"Changed{number}"})
    # A contact new in Campaign whose opt-out the webhook recorded before ingress created its profile.
    stack.dv.resume_webhooks()
    new = stack.dv.create("contacts", {"firstname": "New", "lastname": "Person", "donotbulkemail": True})
    stack.deliver()
    wanted[new] = True

    stack.acs.clear_requests()
    summary = stack.ingress()
    assert summary.counts.get(Count.UPDATED) == 260 and summary.counts.get(Count.CREATED) == 1, summary.counts
    # Every changed contact's index entry was read (one PATCH each, no lookup); the new one is looked up, created.
    methods = collections.Counter(r["method"] for r in stack.acs.requests() if "/profileAndServices" in r["path"])
    assert methods == {"PATCH": 260, "GET": 1, "POST": 1}
    assert {contact: stack.profile(contact)["denyListEmail"] for contact in wanted} == wanted
    stack.acs.clear_requests()
    stack.ingress()
    assert stack.acs.requests(method="PATCH") == [] and stack.acs.requests(method="POST") == []

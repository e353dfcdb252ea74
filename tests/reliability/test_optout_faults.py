"""Opt-out under every fault that reaches it. Dynamics -> Campaign (toCampaign): a Dataverse webhook per change, the
HTTP function, the Azurite queue, the processor writing Campaign profiles while Campaign fails; messages that keep
failing go poison, into the dead letters, and the opt-out timer retries them. Campaign -> Dynamics (toDynamics): the
export file on the SFTP, PATCHes into Dynamics. Each ends with every pair equal on both sides (the seed's own values),
one profile per contact, no change written twice, and no dead letter left (nothing here is refused on purpose)."""

from __future__ import annotations

import collections
import pathlib
import random
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from sandbox.azurite import Azurite
from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from sandbox.sshd import SshdServer
from shared.flows.runner import RunSummary
from tests.e2e.optout_harness import FUNCTION_KEY, PAIRS, OptOutStack, make_optout_stack
from tests.reliability.faults import Target, arm, request_faults
from tests.reliability.figures import Collector
from tests.reliability.matrix import SEEDS, SIZE, Ticks, keyed_counts, open_dead_letters, record

FLOW = "optout"
PROFILES = Target("campaign", r"/profileAndServices\w*/profile(/|$)")
CONTACT_PATCH = Target("dataverse", "/contacts(", "PATCH")
SETTINGS = {"CAMPAIGN_MAX_PARALLEL": "2", "HTTP_READ_TIMEOUT_SECONDS": "1", "DATAVERSE_PAGE_SIZE": "50"}
SIZE_HERE = max(8, SIZE // 2)  # a webhook per change: half the contacts of the other flows keeps the cell short


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch, dataverse_sandbox: DataverseSandbox, campaign_sftp_sandbox: CampaignSandbox,
         storage_connection_string: str, table_prefix: str, sshd_server: SshdServer,
         sftp_folder: pathlib.Path) -> Iterator[Callable[..., OptOutStack]]:  # fmt: skip
    made: list[Iterator[OptOutStack]] = []

    def build(mode: str, storage: str = storage_connection_string) -> OptOutStack:
        generator = make_optout_stack(monkeypatch, dataverse_sandbox, campaign_sftp_sandbox, storage, table_prefix,
                                      mode, sshd=sshd_server, sftp_root=sftp_folder, **SETTINGS)  # fmt: skip
        made.append(generator)
        return next(generator)

    yield build
    for generator in made:
        generator.close()


def webhook_rounds(stack: OptOutStack, seed: int, arm_fault: Callable[[], list[Callable[[], bool]]],
                   ) -> tuple[Ticks, list[Callable[[], bool]]]:  # fmt: skip
    """Contacts synced by ingress (no fault); then two rounds of opt-out changes in Dynamics, each delivered under
    the fault and followed by opt-out timer ticks until one completes."""
    stack.dv.seed_contacts(SIZE_HERE, seed=seed)
    stack.ingress()
    stack.register_webhook()
    rng = random.Random(seed)
    ticks, fired = Ticks(), []
    for column in ("donotbulkemail", "donotphone"):
        fired += arm_fault()
        for row in stack.dv.rows("contacts"):
            if rng.random() < 0.6:
                stack.dv.update("contacts", row["contactid"], {column: not row[column]})
        stack.deliver()
        ticks.until_completed(lambda: stack.run("webhooks"))
    return ticks, fired


def check(stack: OptOutStack, figures: Collector, fault: str, seed: int, ticks: Ticks,
          fired: list[Callable[[], bool]], scope: str = "webhooks") -> None:  # fmt: skip
    contacts = {r["contactid"]: r for r in stack.dv.rows("contacts")}
    profiles = [p for p in stack.acs.rows("profile") if p.get("externalId")]
    lost, duplicated, unexpected = keyed_counts([p["externalId"] for p in profiles], contacts)
    by_contact = {p["externalId"]: p for p in profiles}
    stale = [(c, pair["dynamics"]) for c, row in contacts.items() if c in by_contact for pair in PAIRS
             if bool(row[pair["dynamics"]]) != bool(by_contact[c][pair["campaign"]])]  # fmt: skip
    # A change written twice: two writing decisions for one contact, attribute and Dynamics time.
    writes = collections.Counter((e.contact, e.attribute, e.dynamics_time, e.campaign_time) for c in contacts
                                 for e in stack.history(c) if e.verdict.startswith("write"))  # fmt: skip
    twice = sum(n - 1 for n in writes.values() if n > 1)
    record(figures, fault=fault, flow=FLOW, seed=seed, ticks=ticks, records=len(contacts) * len(PAIRS),
           lost=lost + len(stale), duplicated=duplicated + twice, unexpected=unexpected,
           dead_lettered=open_dead_letters(stack.stack, FLOW), rejected=set(), fired=fired)  # fmt: skip


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", request_faults("optout"))
def test_http_fault_on_the_webhook_path(make: Callable[..., OptOutStack], figures: Collector, fault: str,
                                        seed: int) -> None:  # fmt: skip
    stack = make("toCampaign")
    ticks, fired = webhook_rounds(stack, seed, lambda: arm(stack.stack, fault, [PROFILES]))
    check(stack, figures, fault, seed, ticks, fired)


@pytest.mark.parametrize("seed", SEEDS)
def test_duplicate_replayed_reordered_deliveries(make: Callable[..., OptOutStack], figures: Collector,
                                                 seed: int) -> None:  # fmt: skip
    stack = make("toCampaign")

    def disorder() -> list[Callable[[], bool]]:
        stack.dv.pause_webhooks()  # held, then sent newest first, each of them twice
        stack.dv.duplicate_webhooks(10_000)
        return []

    stack.dv.seed_contacts(SIZE_HERE, seed=seed)
    stack.ingress()
    stack.register_webhook()
    rng = random.Random(seed)
    ticks = Ticks()
    disorder()
    contacts = [r["contactid"] for r in stack.dv.rows("contacts")]
    updates = 0
    for _ in range(3):  # three changes per chosen contact: only the newest may stay
        for contact in rng.sample(contacts, len(contacts) // 2):
            stack.dv.update("contacts", contact, {"donotbulkemail": rng.random() < 0.5})
            updates += 1
    stack.dv.resume_webhooks("lifo")
    stack.deliver()
    log = stack.dv.webhook_deliveries()
    for delivery in log:  # a replay of the whole delivery log, as re-sending failed System Jobs would
        answer = requests.post(stack.webhook_url, params={"code": FUNCTION_KEY}, headers=delivery["headers"],
                               json=delivery["body"], timeout=10)  # fmt: skip
        assert answer.status_code == 202, answer.text
    stack.pump.drain(timeout=60)
    ticks.until_completed(lambda: stack.run("webhooks"))
    sent_twice = [lambda: len(log) == 2 * updates]  # every change delivered twice, then the whole log once more
    check(stack, figures, "duplicate, replayed, reordered deliveries", seed, ticks, sent_twice)


def file_rounds(stack: OptOutStack, seed: int, arm_fault: Callable[[], list[Callable[[], bool]]],
                ) -> tuple[Ticks, list[Callable[[], bool]]]:  # fmt: skip
    """toDynamics: Campaign users unsubscribe; the export file lands on the SFTP; the file scope is ticked under the
    fault until it completes; twice."""
    stack.dv.seed_contacts(SIZE_HERE, seed=seed)
    stack.ingress()
    rng = random.Random(seed)
    ticks, fired = Ticks(), []
    contacts = [r["contactid"] for r in stack.dv.rows("contacts")]
    for _ in range(2):
        for contact in rng.sample(contacts, len(contacts) // 2):
            stack.acs.unsubscribe(external_id=contact)
        stack.export()
        fired += arm_fault()
        ticks.until_completed(lambda: stack.run("campaign-file"))
    return ticks, fired


def sftp_drop(stack: OptOutStack, sshd: SshdServer) -> Callable[[], bool]:
    dropped: list[int] = []
    once = threading.Lock()  # the writers that wait behind the same 429 call the hook at the same time

    def hook(_seconds: float) -> None:
        with once:
            if not dropped:
                dropped.append(sshd.drop_connections())

    stack.stack.on_wait.append(hook)
    stack.dv.inject_fault(CONTACT_PATCH.path, "429", 1, retry_after=1, method=CONTACT_PATCH.method)
    return lambda: bool(dropped) and dropped[0] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_sftp_disconnect_on_the_file_path(make: Callable[..., OptOutStack], figures: Collector,
                                          sshd_server: SshdServer, seed: int) -> None:  # fmt: skip
    stack = make("toDynamics")
    ticks, fired = file_rounds(stack, seed, lambda: [sftp_drop(stack, sshd_server)])
    check(stack, figures, "SFTP disconnect mid-transfer", seed, ticks, fired, "campaign-file")


@pytest.mark.parametrize("seed", SEEDS)
def test_two_invocations_at_once(make: Callable[..., OptOutStack], figures: Collector, seed: int) -> None:
    stack = make("toDynamics")
    other = make("toDynamics")
    second: list[RunSummary] = []

    def overlap() -> list[Callable[[], bool]]:
        def hook(_seconds: float) -> None:
            if not second:
                second.extend(other.run("campaign-file"))

        stack.stack.on_wait.append(hook)
        stack.dv.inject_fault(CONTACT_PATCH.path, "429", 1, retry_after=1, method=CONTACT_PATCH.method)
        return [lambda: bool(second)]

    ticks, fired = file_rounds(stack, seed, overlap)
    assert second and all(s.outcome == "skipped" and s.counts == {} for s in second), second
    check(stack, figures, "two invocations at once", seed, ticks, fired, "campaign-file")


@pytest.mark.parametrize("seed", SEEDS)
def test_azurite_stopped_and_restarted(make: Callable[..., OptOutStack], figures: Collector, own_azurite: Azurite,
                                       seed: int) -> None:  # fmt: skip
    """State and the webhook queue both live on this Azurite: it stops while the processor waits inside a Campaign
    write and starts again (same ports, same data) before the write goes on."""
    stack = make("toCampaign", own_azurite.connection_string)
    happened: list[bool] = []

    def outage() -> list[Callable[[], bool]]:
        def hook(_seconds: float) -> None:
            if not happened:
                happened.append(True)
                own_azurite.stop()
                own_azurite.start_again()

        stack.stack.on_wait.append(hook)
        stack.acs.fail(429, headers={"Retry-After": "1"}, times=1, path=PROFILES.path, method="PATCH")
        return [lambda: bool(happened)]

    ticks, fired = webhook_rounds(stack, seed, outage)
    own_azurite.start_again()
    check(stack, figures, "Azurite stopped and restarted", seed, ticks, fired)

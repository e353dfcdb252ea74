"""Egress under every fault that reaches it: Dataverse's `$batch` writes fail, the SFTP sessions drop, the state store
goes away, a second invocation overlaps; two export rounds (the second with the asynchronous bounces) go on tick after
tick, and Dynamics ends with exactly one activity per landing event and one task per click and hard bounce (the
test's own model, tests/e2e/egress_stack.py), the events without a contact in the dead letters."""

from __future__ import annotations

import collections
import pathlib
import threading
from collections.abc import Callable

import pytest

from sandbox.azurite import Azurite
from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from sandbox.sshd import SshdServer
from shared.flows.runner import RunSummary
from tests.e2e.egress_stack import TABLES, EgressStack, derived_id, landing, stack_factory
from tests.e2e.test_egress import RATES, provision
from tests.reliability.faults import Target, arm, request_faults
from tests.reliability.figures import Collector
from tests.reliability.matrix import SEEDS, SIZE, Ticks, keyed_counts, open_dead_letters, record
from tests.reliability.test_ingress_faults import outage_of

FLOW = "egress"
BATCH = Target("dataverse", "$batch", "POST")
SETTINGS = {"EGRESS_BATCH_SIZE": "10", "DATAVERSE_MAX_PARALLEL": "2", "HTTP_READ_TIMEOUT_SECONDS": "1"}

Make = Callable[..., EgressStack]


@pytest.fixture
def make(dataverse_sandbox: DataverseSandbox, campaign_sftp_sandbox: CampaignSandbox, storage_connection_string: str,
         table_prefix: str, sshd_server: SshdServer, sftp_folder: pathlib.Path) -> Make:  # fmt: skip
    def build(storage: str = storage_connection_string) -> EgressStack:
        factory = stack_factory(dataverse_sandbox, campaign_sftp_sandbox, storage, table_prefix, sshd_server,
                                sftp_folder)  # fmt: skip
        return factory(**SETTINGS)

    return build


def rounds(stack: EgressStack, seed: int, arm_fault: Callable[[], list[Callable[[], bool]]],
           ) -> tuple[Ticks, list[dict[str, object]], list[Callable[[], bool]]]:  # fmt: skip
    """Provisioned tables; a delivery to SIZE contacts (and two Campaign-only profiles); the export now and, an hour
    later, the asynchronous bounces: each round under the fault, ticked until completed."""
    assert provision(stack) == 0
    ids = stack.contacts(SIZE, seed=seed)
    delivery = stack.acs.deliver(external_ids=ids, without_external_id=2, seed=seed, rates=RATES)
    ticks = Ticks()
    stack.export()
    fired = arm_fault()
    ticks.until_completed(lambda: [stack.run()])
    stack.acs.advance_clock(3600 + 60)
    stack.export()
    fired += arm_fault()
    ticks.until_completed(lambda: [stack.run()])
    return ticks, list(delivery["events"]), fired


def check(stack: EgressStack, figures: Collector, fault: str, seed: int, ticks: Ticks, events: list[dict[str, object]],
          fired: list[Callable[[], bool]]) -> None:  # fmt: skip
    lands = landing(events)  # type: ignore[arg-type]
    # Events of Campaign-only profiles can never land: dead-lettered (never retried), as docs/egress.md says.
    no_contact = {f"{e['eventType']}:{e['eventId']}" for e in events if not e["externalId"]
                  and not (e["eventType"] == "bounce" and e["failureType"] != "hard")}  # fmt: skip
    lost = duplicated = unexpected = records = 0
    for event_type in TABLES:
        rows = stack.activities(event_type)
        expected = {derived_id(str(e["eventType"]), str(e["eventId"])) for e in lands if e["eventType"] == event_type}
        got = keyed_counts([r["activityid"] for r in rows], expected)
        per_event = collections.Counter(r["new_eventid"] for r in rows)
        lost, duplicated = lost + got[0], duplicated + got[1] + sum(n - 1 for n in per_event.values() if n > 1)
        unexpected, records = unexpected + got[2], records + len(expected)
    tasks = {derived_id("task", str(e["eventType"]), str(e["eventId"])) for e in lands
             if e["eventType"] in ("click", "bounce")}  # fmt: skip
    got = keyed_counts([t["activityid"] for t in stack.tasks()], tasks)
    record(figures, fault=fault, flow=FLOW, seed=seed, ticks=ticks, records=records + len(tasks), lost=lost + got[0],
           duplicated=duplicated + got[1], unexpected=unexpected + got[2],
           dead_lettered=open_dead_letters(stack.stack, FLOW, "events"), rejected=no_contact, fired=fired)  # fmt: skip


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", request_faults("egress"))
def test_http_fault(make: Make, figures: Collector, fault: str, seed: int) -> None:
    stack = make()
    ticks, events, fired = rounds(stack, seed, lambda: arm(stack.stack, fault, [BATCH]))
    check(stack, figures, fault, seed, ticks, events, fired)


def sftp_drop(stack: EgressStack, sshd: SshdServer) -> Callable[[], bool]:
    """At the run's first wait (one 429 on `$batch`), every session of Campaign's SFTP server is killed."""
    dropped: list[int] = []
    once = threading.Lock()  # the writers that wait behind the same 429 call the hook at the same time

    def hook(_seconds: float) -> None:
        with once:
            if not dropped:
                dropped.append(sshd.drop_connections())

    stack.stack.on_wait.append(hook)
    stack.dv.inject_fault(BATCH.path, "429", 1, retry_after=1, method=BATCH.method)
    return lambda: bool(dropped) and dropped[0] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_sftp_disconnect(make: Make, figures: Collector, sshd_server: SshdServer, seed: int) -> None:
    stack = make()
    ticks, events, fired = rounds(stack, seed, lambda: [sftp_drop(stack, sshd_server)])
    check(stack, figures, "SFTP disconnect mid-transfer", seed, ticks, events, fired)


@pytest.mark.parametrize("seed", SEEDS)
def test_azurite_stopped_and_restarted(make: Make, figures: Collector, own_azurite: Azurite, seed: int) -> None:
    stack = make(own_azurite.connection_string)
    # outage_of arms a Campaign 429; egress writes to Dataverse, so a Dataverse 429 on $batch opens the window.
    fired = [outage_of(own_azurite, stack.stack, Target("campaign", "^$"))]
    stack.dv.inject_fault(BATCH.path, "429", 1, retry_after=1, method=BATCH.method)
    ticks, events, more = rounds(stack, seed, lambda: [])
    own_azurite.start_again()
    check(stack, figures, "Azurite stopped and restarted", seed, ticks, events, fired + more)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_invocations_at_once(make: Make, figures: Collector, seed: int) -> None:
    stack, other = make(), make()
    second: list[RunSummary] = []

    def overlap() -> list[Callable[[], bool]]:
        def hook(_seconds: float) -> None:
            if not second:
                second.append(other.run())

        stack.stack.on_wait.append(hook)
        stack.dv.inject_fault(BATCH.path, "429", 1, retry_after=1, method=BATCH.method)
        return [lambda: bool(second)]

    ticks, events, fired = rounds(stack, seed, overlap)
    assert second and all(s.outcome == "skipped" and s.counts == {} for s in second), second
    check(stack, figures, "two invocations at once", seed, ticks, events, fired)

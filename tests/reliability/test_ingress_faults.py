"""Ingress under every fault that reaches it: Dataverse's change-tracking reads and Campaign's profile writes fail, an
initial load and then increments go on tick after tick, and Campaign ends with exactly the expected profiles (the
test's oracle over Dynamics' rows), none twice, the refused record in the dead letters and nowhere else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox.azurite import Azurite
from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from shared.flows.runner import RunSummary
from tests.e2e.conftest import Stack, make_stack
from tests.e2e.test_ingress import contacts_only, only_updatable
from tests.reliability import sources
from tests.reliability.faults import Target, arm, request_faults
from tests.reliability.figures import Collector
from tests.reliability.matrix import SEEDS, SIZE, Ticks, keyed_counts, open_dead_letters, record, stale_values

FLOW = "ingress"
PROFILES = r"/profileAndServices\w*/profile(/|$)"  # items, lookups, the collection; not resourceType
PROFILES_COLLECTION = r"/profileAndServices\w*/profile$"
TARGETS = [Target("dataverse", "/contacts", "GET"), Target("campaign", PROFILES)]
SETTINGS = {"DATAVERSE_PAGE_SIZE": "8", "CAMPAIGN_MAX_PARALLEL": "2", "HTTP_READ_TIMEOUT_SECONDS": "1"}

MakeStack = Callable[..., Stack]


@pytest.fixture
def make(dataverse_sandbox: DataverseSandbox, campaign_sandbox: CampaignSandbox, storage_connection_string: str,
         table_prefix: str) -> MakeStack:  # fmt: skip
    def build(storage: str = storage_connection_string) -> Stack:
        return make_stack(dataverse_sandbox, campaign_sandbox, storage, table_prefix, contacts_only(), **SETTINGS)

    return build


def tick(stack: Stack) -> Callable[[], list[RunSummary]]:
    return lambda: stack.run("contacts")


def check(stack: Stack, figures: Collector, fault: str, seed: int, ticks: Ticks, poison: str,
          fired: list[Callable[[], bool]]) -> None:  # fmt: skip
    table = stack.table("contacts")
    expected = {k: v for k, v in stack.expected(table).items() if k != poison}
    rows = stack.campaign_rows(table)
    keys = [r[table.key_attribute] for r in rows]
    lost, duplicated, unexpected = keyed_counts(keys, expected)
    stale = stale_values(expected, {r[table.key_attribute]: r for r in rows}, only_updatable)
    record(figures, fault=fault, flow=FLOW, seed=seed, ticks=ticks, records=len(expected), lost=lost + len(stale),
           duplicated=duplicated, unexpected=unexpected, dead_lettered=open_dead_letters(stack, FLOW, "contacts"),
           rejected={poison}, fired=fired)  # fmt: skip


def load_then_increments(stack: Stack, fault: str, seed: int, arm_fault: Callable[[], list[Callable[[], bool]]],
                         ) -> tuple[Ticks, str, list[Callable[[], bool]]]:  # fmt: skip
    ids = sources.seed_contacts(stack.dv, SIZE, seed)
    poison = sources.add_poison(stack.dv)
    ticks = Ticks()
    fired = arm_fault()
    ticks.until_completed(tick(stack))
    sources.change_contacts(stack.dv, ids, seed, SIZE // 2)
    fired += arm_fault()
    ticks.until_completed(tick(stack))
    return ticks, poison, fired


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", request_faults("ingress"))
def test_http_fault(make: MakeStack, figures: Collector, fault: str, seed: int) -> None:
    stack = make()
    ticks, poison, fired = load_then_increments(stack, fault, seed, lambda: arm(stack, fault, TARGETS))
    check(stack, figures, fault, seed, ticks, poison, fired)


@pytest.mark.parametrize("seed", SEEDS)
def test_expired_delta_token(make: MakeStack, figures: Collector, seed: int) -> None:
    stack = make()

    def expire() -> list[Callable[[], bool]]:
        stack.dv.expire_delta_tokens()  # before the increments: the stored delta link is past retention
        return [lambda: any(r.get("error_code") == "0x80044352" for r in stack.dv.requests())]

    ids = sources.seed_contacts(stack.dv, SIZE, seed)
    poison = sources.add_poison(stack.dv)
    ticks = Ticks()
    ticks.until_completed(tick(stack))
    sources.change_contacts(stack.dv, ids, seed, SIZE // 2)  # deletes among them: the resync's sweep must find them
    fired = expire()
    ticks.until_completed(tick(stack))
    check(stack, figures, "expired delta token", seed, ticks, poison, fired)


def outage_of(azurite: Azurite, stack: Stack, target: Target) -> Callable[[], bool]:
    """At the run's first wait (one 429 on the target) Azurite stops and starts again on the same ports and data:
    the run's pooled connections to it are dead and its next state calls must reconnect. (Restarting it from a timer
    while the run goes on made the run meet it down, but whether the SDK's retries outlast the restart depends on
    machine speed; a run that fails then leaves its lease behind until it expires: see the README.)"""
    happened: list[bool] = []

    def hook(_seconds: float) -> None:
        if not happened:
            happened.append(True)
            azurite.stop()
            azurite.start_again()

    stack.on_wait.append(hook)
    stack.acs.fail(429, headers={"Retry-After": "1"}, times=1, path=target.path, method=target.method)
    return lambda: bool(happened)


@pytest.mark.parametrize("seed", SEEDS)
def test_azurite_stopped_and_restarted(make: MakeStack, figures: Collector, own_azurite: Azurite, seed: int) -> None:
    stack = make(own_azurite.connection_string)
    target = Target("campaign", PROFILES_COLLECTION, "POST")
    ticks, poison, fired = load_then_increments(stack, "Azurite stopped and restarted", seed,
                                                lambda: [outage_of(own_azurite, stack, target)])  # fmt: skip
    own_azurite.start_again()
    check(stack, figures, "Azurite stopped and restarted", seed, ticks, poison, fired)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_invocations_at_once(make: MakeStack, figures: Collector, seed: int) -> None:
    """While a run waits inside a Campaign call, a second invocation (its own services, as another host process)
    starts: the lease refuses it, it writes nothing."""
    stack, other = make(), make()
    second: list[RunSummary] = []

    def overlap() -> list[Callable[[], bool]]:
        def hook(_seconds: float) -> None:
            if len(second) < 2 and not any(s.outcome != "skipped" for s in second):
                second.extend(other.run("contacts"))

        stack.on_wait.append(hook)
        stack.acs.fail(429, headers={"Retry-After": "1"}, times=1, path=PROFILES_COLLECTION)
        return [lambda: bool(second)]

    ticks, poison, fired = load_then_increments(stack, "two invocations at once", seed, overlap)
    assert second and all(s.outcome == "skipped" and s.counts == {} for s in second), second
    check(stack, figures, "two invocations at once", seed, ticks, poison, fired)

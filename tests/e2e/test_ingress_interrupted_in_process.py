"""In-process variant of the crash test: a run interrupted at any write and rerun loses nothing and
duplicates nothing (the real-process variant, SIGKILL, is test_crash_subprocess.py).

The interruption is a BaseException raised from inside the Campaign transport, either before a write
reaches Campaign or right after Campaign applied it (the response lost): the worst moment, since
Campaign changed and our index and checkpoint did not.

More seeds: INTERRUPT_SEEDS=50 scripts/test.sh tests/e2e/test_ingress_interrupted_in_process.py
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from shared.state.lease import RunLease
from tests.e2e.conftest import Stack
from tests.e2e.test_ingress import contacts_only, mutate_contacts, only_updatable


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no handler of ours swallows it."""


class Killer:
    def __init__(self, stack: Stack, at_write: int, after_send: bool) -> None:
        self.session = stack.svc.campaign.http.session
        self.original = self.session.request
        self.at_write = at_write
        self.after_send = after_send
        self.writes = 0
        self.fired = False
        self.lock = threading.Lock()
        self.session.request = self.request  # type: ignore[method-assign]

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if method in ("POST", "PATCH", "DELETE") and "/ims/" not in url:
            with self.lock:
                self.writes += 1
                fire = self.writes >= self.at_write
                self.fired = self.fired or fire
            if fire:
                if self.after_send:
                    self.original(method, url, **kwargs)
                raise Killed()
        return self.original(method, url, **kwargs)

    def disarm(self) -> None:
        self.session.request = self.original  # type: ignore[method-assign]


def run_killed(stack: Stack, rng: random.Random, max_writes: int) -> bool:
    """One run killed at a random write; afterwards the dead run's lease is gone (it expired)."""
    killer = Killer(stack, at_write=rng.randint(1, max_writes), after_send=rng.random() < 0.5)
    try:
        stack.run()
    except Killed:
        pass
    finally:
        killer.disarm()
    # A killed process never releases its lease; the next tick finds it expired.
    leases = stack.svc.state.table("leases")
    for entity in list(leases.list_entities()):
        leases.delete_entity(entity["PartitionKey"], entity["RowKey"])
    return killer.fired


def run_to_completion(stack: Stack) -> None:
    for _ in range(5):
        summaries = stack.run()
        if all(s.outcome == "completed" for s in summaries):
            return
    raise AssertionError([s.reason for s in summaries])


SEEDS = int(os.environ.get("INTERRUPT_SEEDS", "4"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_interrupted_runs_converge(stack_factory: Callable[..., Stack], seed: int) -> None:
    rng = random.Random(seed)
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="60")
    stack.dv.seed_contacts(300, seed=seed + 1)

    assert run_killed(stack, rng, max_writes=300)  # initial load cut somewhere
    run_to_completion(stack)
    contacts = stack.table("contacts")
    stack.assert_campaign_matches(contacts)

    mutate_contacts(stack, rng, 60)
    run_killed(stack, rng, max_writes=60)  # increment cut somewhere
    run_to_completion(stack)
    stack.assert_campaign_matches(contacts, fields=only_updatable)


def test_lease_blocks_a_second_run_until_it_expires(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(10)
    dead = RunLease(stack.svc.state.table("leases"), "ingress~contacts", "dead-run", duration=3600)
    dead.acquire()
    [blocked] = stack.run()
    assert blocked.outcome == "skipped" and "lease" in blocked.reason
    assert stack.acs.rows("profile") == []

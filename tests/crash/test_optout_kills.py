"""Opt-out (Campaign -> Dynamics, the `campaign-file` scope) killed with SIGKILL at every kill point of
tests/crash/points.py (the N-th contact PATCH in Dynamics, the file's archive move, the N-th change of the
scope's checkpoint), then run to completion: every contact's opt-outs in Dynamics equal its profile's in
Campaign, the export file is archived and not read again. And the webhook queue's processor (Dynamics ->
Campaign) in its own process, killed after its n-th Campaign PATCH: every profile ends with its contact's opt-outs.

    CRASH_POINTS=all .venv/bin/pytest -q tests/crash/test_optout_kills.py
"""

from __future__ import annotations

import collections
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.crash.kill import Signal, checkpoint_changes, kill_at, record
from tests.crash.points import KillPoint, selected
from tests.e2e.cli_process import REPO, Cli
from tests.e2e.optout_harness import OptOutStack

LEASE_SECONDS = 2  # a killed worker's messages are received again after this


def contact_patches(stack: OptOutStack) -> list[str]:
    return [r["path"] for r in stack.dv.requests() if r["method"] == "PATCH" and "/contacts(" in r["path"]]


def signals(stack: OptOutStack) -> dict[str, Signal]:
    assert stack.sftp_root is not None
    archive = pathlib.Path(stack.sftp_root) / "d365_loads" / "archive"
    return {
        "dynamics-patches": lambda: len(contact_patches(stack)),
        "archived-optout-files": lambda: len(list(archive.glob("campaign_optouts_*"))) if archive.exists() else 0,
        "checkpoint-changes": checkpoint_changes(stack.stack, "optout", "campaign-file"),
    }


@pytest.mark.parametrize("point", selected("optout"), ids=lambda p: p.id)
def test_killed_optout_file_converges(optout_sftp_stack_factory: Callable[..., OptOutStack], tmp_path: pathlib.Path,
                                      point: KillPoint) -> None:  # fmt: skip
    stack = optout_sftp_stack_factory("toDynamics")
    stack.dv.seed_contacts(50, seed=4)
    stack.ingress()  # profiles without the opt-outs: Campaign owns them in this mode
    contacts = [r["contactid"] for r in stack.dv.rows("contacts")]
    for contact in contacts:
        stack.dv.update("contacts", contact, {"donotbulkemail": False, "donotphone": False})
    for contact in contacts[:40]:
        stack.acs.unsubscribe(external_id=contact)  # 40 Campaign users click the unsubscription link
    stack.export()
    stack.dv.set_latency(10)
    stack.dv.clear_requests()
    cli = Cli(stack.stack, tmp_path)

    kill_at(cli, point, signals(stack)[point.signal], "run", "optout", "--scope", "campaign-file")
    cli.run_to_completion("run", "optout", "--scope", "campaign-file")

    def pair(contact: str) -> tuple[bool, bool]:
        row = stack.dv.get("contacts", contact)
        assert row is not None
        return bool(row["donotbulkemail"]), bool(row["donotphone"])

    profiles = {c: stack.profile(c) for c in contacts}
    wrong = [c for c in contacts if pair(c) != (profiles[c]["denyListEmail"], profiles[c]["denyListPhone"])]
    written = collections.Counter(contact_patches(stack))
    # A PATCH in flight at the kill is sent again by the next run: the same value, a rewrite, not a duplicate.
    record(point, records=len(contacts), lost=len(wrong), rewritten=sum(n - 1 for n in written.values()))
    assert wrong == []  # no opt-out lost: Dynamics agrees with Campaign for every contact
    assert all(pair(c) == (True, False) for c in contacts[:40]) and all(pair(c) == (False, False)
                                                                          for c in contacts[40:])  # fmt: skip
    assert stack.sftp_root is not None
    root = pathlib.Path(stack.sftp_root) / "d365_loads"
    assert not list((root / "exports").glob("campaign_optouts_*")) and len(list((root / "archive").iterdir())) == 1


def campaign_patches(stack: OptOutStack) -> list[str]:
    return [r["path"] for r in stack.acs.requests() if r["method"] == "PATCH" and "/ims/" not in r["path"]]


@pytest.mark.parametrize("point", selected("optout_webhook"), ids=lambda p: p.id)
def test_killed_queue_processor_converges(optout_stack_factory: Callable[..., OptOutStack], tmp_path: pathlib.Path,
                                          point: KillPoint) -> None:  # fmt: skip
    # Dynamics -> Campaign: 40 opt-out changes are queued by the webhook; the queue processor, in its own process
    # as under the Functions host, is SIGKILLed at the point. Its messages in process become visible again once
    # their lease ends, and a new processor takes them: every profile ends with its contact's opt-outs.
    stack = optout_stack_factory("toCampaign")
    stack.dv.seed_contacts(40, seed=5)
    stack.ingress()
    contacts = [r["contactid"] for r in stack.dv.rows("contacts")]
    stack.pump.stop()  # the queue is the worker process's
    stack.register_webhook()
    for number, contact in enumerate(contacts):
        stack.dv.update("contacts", contact, {"donotbulkemail": number % 3 != 0, "donotphone": number % 2 == 0})
    stack.dv.flush_webhooks(timeout=30)
    stack.acs.fail(action="stall", method="PATCH", seconds=0.01, times=None)  # the kill lands mid-queue
    stack.acs.clear_requests()

    cli = Cli(stack.stack, tmp_path)  # writes the settings file the worker reads
    command = [sys.executable, "-m", "tests.crash.queue_worker", str(cli.settings), str(LEASE_SECONDS)]
    worker = subprocess.Popen(command, cwd=REPO, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(campaign_patches(stack)) < point.n:
            assert worker.poll() is None and time.monotonic() < deadline, f"{point.id}: the worker stopped first"
            time.sleep(0.002)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()

    stack.use_pump()  # the next worker: it takes what is left, and the killed one's messages once visible again
    stack.pump.drain(timeout=LEASE_SECONDS + 60)

    def pair(contact: str) -> tuple[bool, bool]:
        profile = stack.profile(contact)
        return bool(profile["denyListEmail"]), bool(profile["denyListPhone"])

    expected = {c: (n % 3 != 0, n % 2 == 0) for n, c in enumerate(contacts)}
    wrong = [c for c in contacts if pair(c) != expected[c]]
    written = collections.Counter(campaign_patches(stack))
    record(point, records=len(contacts), lost=len(wrong), rewritten=sum(n - 1 for n in written.values()))
    assert wrong == []  # no opt-out lost
    assert stack.pump.stats.poisoned == 0 and stack.pump.poison.peek_messages() == []
    assert all(n <= 2 for n in written.values())  # a message in flight at the kill is applied once more at most

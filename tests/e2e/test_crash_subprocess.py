"""Real crashes: the operator CLI runs ingress in its own process and is killed with SIGKILL at a random
moment (after a random number of Campaign writes), during the initial load and during an increment.
Run again to completion, Campaign holds exactly one record per source row, none missing, and the
record index agrees with Campaign.

More seeds: CRASH_SEEDS=20 scripts/test.sh tests/e2e/test_crash_subprocess.py
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from shared.settings import SPECS
from shared.state.index import RecordIndex
from tests.e2e.conftest import Stack
from tests.e2e.test_ingress import contacts_only, mutate_contacts, only_updatable

REPO = pathlib.Path(__file__).resolve().parents[2]
SEEDS = int(os.environ.get("CRASH_SEEDS", "3"))


class Cli:
    def __init__(self, stack: Stack, folder: pathlib.Path) -> None:
        self.stack = stack
        self.settings = folder / "local.settings.json"
        self.settings.write_text(json.dumps({"IsEncrypted": False, "Values": dict(stack.env)}))
        # Only the settings file speaks: an app setting in the environment would win over it.
        self.env = {k: v for k, v in os.environ.items() if k not in {s.name for s in SPECS}}

    def start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "shared.cli", "--settings", str(self.settings), "run", "ingress"]
        return subprocess.Popen(command, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run_killed(self, after_writes: int) -> bool:
        """Start a run and SIGKILL it once Campaign has seen `after_writes` writes; False if it ended first."""
        before = self.writes()
        process = self.start()
        try:
            while process.poll() is None:
                if self.writes() - before >= after_writes:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    self.clear_dead_leases()
                    return True
                time.sleep(0.002)
            return False
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()

    def run_to_completion(self) -> None:
        for _ in range(4):
            process = self.start()
            out, err = process.communicate(timeout=300)
            summaries = json.loads(out or b"[]")
            if process.returncode == 0 and all(s["outcome"] == "completed" for s in summaries):
                return
        raise AssertionError(f"no clean run: rc={process.returncode} {err.decode()[-2000:]}")

    def writes(self) -> int:
        return sum(1 for r in self.stack.acs.requests() if r["method"] in ("POST", "PATCH", "DELETE")
                   and "/ims/" not in r["path"])  # fmt: skip

    def clear_dead_leases(self) -> None:
        """A killed process never releases its lease; its expiry (budget + 5 min) is what the next tick waits for."""
        leases = self.stack.svc.state.table("leases")
        for entity in list(leases.list_entities()):
            leases.delete_entity(entity["PartitionKey"], entity["RowKey"])


def assert_one_record_per_row_and_index_agrees(stack: Stack, fields: Callable[[str], bool] = lambda _: True) -> None:
    contacts = stack.table("contacts")
    stack.assert_campaign_matches(contacts, fields=fields)  # exactly the source rows, no duplicate, none missing
    by_pkey = {row["PKey"]: row["externalId"] for row in stack.acs.rows("profile")}
    index = {e.record_id: e.href for e in RecordIndex(stack.svc.state.table("index")).iter_table("contacts")}
    assert set(index) == set(by_pkey.values())
    assert all(by_pkey.get(href.rstrip("/").rsplit("/", 1)[-1]) == record_id for record_id, href in index.items())


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkilled_cli_runs_converge(stack_factory: Callable[..., Stack], tmp_path: pathlib.Path, seed: int) -> None:
    rng = random.Random(seed)
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="60", CAMPAIGN_MAX_PARALLEL="4")
    stack.dv.seed_contacts(300, seed=seed + 1)
    cli = Cli(stack, tmp_path)

    assert cli.run_killed(after_writes=rng.randint(1, 290))  # the initial load, cut somewhere
    cli.run_to_completion()
    assert_one_record_per_row_and_index_agrees(stack)

    mutate_contacts(stack, rng, 60)
    cli.run_killed(after_writes=rng.randint(1, 40))  # the increment, cut somewhere
    cli.run_to_completion()
    assert_one_record_per_row_and_index_agrees(stack, fields=only_updatable)

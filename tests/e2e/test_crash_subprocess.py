"""Real crashes: the operator CLI runs ingress in its own process and is killed with SIGKILL at a random
moment (after a random number of Campaign writes), during the initial load and during an increment.
Run again to completion, Campaign holds exactly one record per source row, none missing, and the
record index agrees with Campaign.

More seeds: CRASH_SEEDS=20 scripts/test.sh tests/e2e/test_crash_subprocess.py
"""

from __future__ import annotations

import os
import pathlib
import random
from collections.abc import Callable

import pytest

from shared.state.index import RecordIndex
from tests.e2e.cli_process import Cli
from tests.e2e.conftest import Stack
from tests.e2e.test_ingress import contacts_only, mutate_contacts, only_updatable

SEEDS = int(os.environ.get("CRASH_SEEDS", "3"))


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

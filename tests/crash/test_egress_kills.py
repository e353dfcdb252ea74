"""Egress killed with SIGKILL at every kill point of tests/crash/points.py (the N-th activity row or task row in
Dynamics, the N-th $batch, the N-th file archived, the N-th change of its checkpoint), then run to completion:
Dynamics holds exactly the activities and tasks the events call for, none twice, the events without a contact
are the dead letters, and every export file is in the archive folder, none left to read.

    CRASH_POINTS=all .venv/bin/pytest -q tests/crash/test_egress_kills.py
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.crash.kill import Signal, checkpoint_changes, dataverse_requests, dead_letter_ids, kill_at, record
from tests.crash.points import KillPoint, selected
from tests.e2e.cli_process import Cli
from tests.e2e.egress_stack import TABLES, EgressStack, landing
from tests.e2e.test_egress import RATES, assert_landed, provision


def signals(stack: EgressStack) -> dict[str, Signal]:
    return {
        "activity-rows": lambda: sum(len(stack.activities(kind)) for kind in TABLES),
        "task-rows": lambda: len(stack.tasks()),
        "dataverse-batches": dataverse_requests(stack.dv, "POST", "$batch"),
        "archived-files": lambda: len(list(stack.archive.glob("campaign_events_*"))) if stack.archive.exists() else 0,
        "checkpoint-changes": checkpoint_changes(stack.stack, "egress", "events"),
    }


@pytest.mark.parametrize("point", selected("egress"), ids=lambda p: p.id)
def test_killed_egress_converges(egress_stack_factory: Callable[..., EgressStack], tmp_path: pathlib.Path,
                                 point: KillPoint) -> None:  # fmt: skip
    stack = egress_stack_factory(EGRESS_BATCH_SIZE="8", DATAVERSE_MAX_PARALLEL="2")
    ids = stack.contacts(40, seed=3)
    events: list[dict[str, Any]] = []
    files: list[str] = []
    for n in range(2):  # two exports, two files each
        events += stack.acs.deliver(external_ids=ids[n * 20 : (n + 1) * 20], without_external_id=2, seed=20 + n,
                                    rates={**RATES, "asyncBounce": 0.0})["events"]  # fmt: skip
        files += stack.export()["files"].values()
    assert provision(stack) == 0
    stack.dv.set_latency(10)  # the kill then lands while the process waits on Dynamics, as a real crash would
    stack.dv.clear_requests()
    cli = Cli(stack.stack, tmp_path)

    kill_at(cli, point, signals(stack)[point.signal], "run", "egress")
    cli.run_to_completion("run", "egress")

    landed = landing(events)
    expected = {(e["eventType"], e["eventId"]) for e in landed}
    rows = [(kind, r["new_eventid"]) for kind in TABLES for r in stack.activities(kind)]
    record(point, records=len(expected), lost=len(expected - set(rows)), duplicated=len(rows) - len(set(rows)))
    assert_landed(stack, landed, stack.dv.application_user_id)  # every activity and task once, every field
    without = {f"{e['eventType']}:{e['eventId']}" for e in events if not e["externalId"]
               and not (e["eventType"] == "bounce" and e["failureType"] != "hard")}  # fmt: skip
    assert without and dead_letter_ids(stack.stack, "egress", "events") == without
    assert not list(stack.exports.glob("campaign_events_*"))
    assert sorted(p.name for p in stack.archive.iterdir()) == sorted(files)

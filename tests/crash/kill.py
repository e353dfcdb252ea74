"""Watching a flow's run from outside its process, killing it at a kill point, and recording what came of it.

A signal is a function returning a count that only grows while the run works (requests the sandboxes logged,
rows they hold, files in a folder, changes of a checkpoint in Azurite); `Cli.run_killed` SIGKILLs the process
once it moved by the point's n."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from tests.crash.points import KillPoint
from tests.e2e.cli_process import Cli
from tests.e2e.conftest import Stack

Signal = Callable[[], int]


def dataverse_requests(dv: DataverseSandbox, method: str, path_end: str) -> Signal:
    return lambda: sum(1 for r in dv.requests() if r["method"] == method and r["path"].endswith(path_end))


def campaign_requests(acs: CampaignSandbox, methods: Iterable[str], path_contains: str = "") -> Signal:
    wanted = set(methods)
    return lambda: sum(1 for r in acs.requests() if r["method"] in wanted and "/ims/" not in r["path"]
                       and path_contains in r["path"])  # fmt: skip


def checkpoint_changes(stack: Stack, flow: str, scope: str) -> Signal:
    """How often the flow's checkpoint entity changed (its ETag) since the signal was made."""
    table = stack.svc.state.table("checkpoints")
    store = CheckpointStore(table)
    seen: list[str | None] = []

    def etag() -> str | None:
        stored = store._entity(flow, scope)  # the raw entity: only its ETag matters here
        return None if stored is None else str(stored.metadata["etag"])

    seen.append(etag())
    changes = [0]

    def count() -> int:
        now = etag()
        if now != seen[-1]:
            seen.append(now)
            changes[0] += 1
        return changes[0]

    return count


def kill_at(cli: Cli, point: KillPoint, signal: Signal, *run: str) -> None:
    """The run is killed at the point; the point must be reached before the run ends, or it is no kill point."""
    assert cli.run_killed(point.n, *run, progress=signal), f"{point.id}: the run ended before the kill point"


def dead_letter_ids(stack: Stack, flow: str, scope: str) -> set[str]:
    return {d.record_id for d in DeadLetterStore(stack.svc.state.table("deadletters")).entries(flow, scope)}


def record(point: KillPoint, **figures: Any) -> None:
    """One line per killed run into CRASH_REPORT (a JSON-lines file), for the figures the README cites."""
    path = os.environ.get("CRASH_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"point": point.id, "at": time.time(), **figures}) + "\n")

"""The kill points of every flow: one table the crash tests are parametrised from, and a count for the README.

A kill point is a moment of a flow's run, named by a progress signal the test watches from outside the
process (tests/crash/signals.py) and the value at which it SIGKILLs the operator CLI: `ingress:initial-write@37`
is "the 37th Campaign write of the initial load". Within each phase a seeded rng (KILL_SEED) picks the values,
so the table, and the test ids, are the same on every machine for a given seed.

    python -m tests.crash.points                    # kill points per flow (what the README cites)
    scripts/test.sh tests/crash                     # CI: CRASH_SAMPLE (default 2) points per flow, seeded
    CRASH_POINTS=all scripts/test.sh tests/crash    # every point of the table (a few minutes per flow)
    CRASH_POINTS=all .venv/bin/pytest -q tests/crash/test_egress_kills.py   # one flow in full
    CRASH_SEED=7 scripts/test.sh tests/crash        # another CI sample of the same table
"""

from __future__ import annotations

import dataclasses
import os
import random


@dataclasses.dataclass(frozen=True)
class KillPoint:
    flow: str
    phase: str  # the part of the run the kill lands in (the scenario sets up everything before it)
    signal: str  # what is counted, from outside the process (tests/crash/signals.py)
    n: int  # killed once the signal moved by n since the killed run started

    @property
    def id(self) -> str:
        return f"{self.flow}:{self.phase}@{self.n}"


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    signal: str
    low: int  # the values n may take: the signal must reach `high` before the run ends (scenario sizes)
    high: int
    picks: int  # how many distinct values the table holds for this phase


# Sizes are those of the scenarios in the test modules (e.g. ingress: 302 rows, 60 a page, 6 pages).
PHASES: dict[str, tuple[Phase, ...]] = {
    "ingress": (
        Phase("initial-page", "dataverse-pages", 1, 5, 3),
        Phase("initial-write", "campaign-writes", 1, 290, 6),
        Phase("checkpoint", "checkpoint-changes", 1, 4, 2),
        Phase("increment-write", "campaign-upserts", 1, 25, 4),
        Phase("increment-delete", "campaign-deletes", 1, 10, 3),
        Phase("resync-read", "dataverse-pages", 1, 4, 2),
        Phase("resync-sweep", "campaign-deletes", 1, 14, 3),
    ),
    "initial_transfer": (
        Phase("export-page", "dataverse-pages", 1, 9, 5),
        Phase("staged-part", "staged-blobs", 1, 4, 3),
        Phase("exported", "transfer-state", 1, 1, 1),  # the cursor said `staged`
        Phase("upload-file", "sftp-files", 1, 4, 3),
        Phase("upload-bytes", "sftp-kib", 8, 400, 5),
        Phase("uploaded", "transfer-state", 2, 2, 1),  # `uploaded`
        Phase("signalling", "transfer-state", 3, 3, 1),  # the workflow started, the trigger not yet sent
        Phase("signal", "campaign-triggers", 1, 1, 1),  # the trigger accepted, the cursor not yet `signalled`
        Phase("signalled", "transfer-state", 4, 4, 1),
        Phase("hand-over", "transfer-state", 5, 6, 2),  # `imported`, `handed-over`
    ),
    "egress": (
        Phase("activity-write", "activity-rows", 1, 60, 7),
        Phase("task-write", "task-rows", 1, 12, 4),
        Phase("batch", "dataverse-batches", 1, 10, 4),
        Phase("archive-move", "archived-files", 1, 3, 3),
        Phase("checkpoint", "checkpoint-changes", 1, 4, 3),
    ),
    "optout": (
        Phase("file-dynamics-write", "dynamics-patches", 1, 36, 17),
        Phase("file-archive", "archived-optout-files", 1, 1, 1),
        Phase("file-checkpoint", "checkpoint-changes", 1, 2, 2),
    ),
    "optout_webhook": (  # the queue-triggered processor (its own process), Dynamics -> Campaign
        Phase("queue-campaign-write", "campaign-patches", 1, 36, 8),
    ),
}


def table(seed: int) -> dict[str, tuple[KillPoint, ...]]:
    rng = random.Random(seed)
    points: dict[str, tuple[KillPoint, ...]] = {}
    for flow, phases in PHASES.items():
        chosen: list[KillPoint] = []
        for phase in phases:
            values = sorted(rng.sample(range(phase.low, phase.high + 1), phase.picks))
            chosen += [KillPoint(flow, phase.name, phase.signal, n) for n in values]
        points[flow] = tuple(chosen)
    return points


KILL_SEED = int(os.environ.get("KILL_SEED", "2026"))
KILL_POINTS = table(KILL_SEED)


def selected(flow: str) -> list[KillPoint]:
    """What this run tests: every point with CRASH_POINTS=all, else a seeded sample of CRASH_SAMPLE per flow."""
    points = list(KILL_POINTS[flow])
    if os.environ.get("CRASH_POINTS", "").lower() == "all":
        return points
    sample = int(os.environ.get("CRASH_SAMPLE", "2"))
    rng = random.Random(f"{os.environ.get('CRASH_SEED', '0')}:{flow}")
    return sorted(rng.sample(points, min(sample, len(points))), key=points.index)


# Kill points the older crash tests cover (random values, not from this table): counted apart.
EXISTING = {
    "ingress": "tests/e2e/test_crash_subprocess.py: initial load and increment, after a random Campaign write",
    "initial_transfer": "tests/e2e/test_initial_transfer_crash.py: a random export page, then a random SFTP file",
    "egress": "tests/e2e/test_egress.py::test_sigkilled_runs_lose_and_duplicate_nothing: a random $batch",
}


def main() -> None:
    total = 0
    for flow, points in KILL_POINTS.items():
        phases = {p.phase for p in points}
        signals = {p.signal for p in points}
        total += len(points)
        print(f"{flow:17} {len(points):3} kill points, {len(phases)} phases, {len(signals)} signals, "
              f"{len(selected(flow))} in this run's sample")  # fmt: skip
    print(f"{'total':17} {total:3} (KILL_SEED={KILL_SEED})")
    for flow, text in EXISTING.items():
        print(f"also {flow}: {text}")


if __name__ == "__main__":
    main()

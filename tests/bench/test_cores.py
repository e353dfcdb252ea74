"""The benchmark's split of the machine: the connector's process on one core, service processes on the others.

Each case runs in its own Python process (a claim pins the process that makes it) with real child processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cores import Split, plan

REPO = Path(__file__).resolve().parents[2]

# Given the cores of the "machine" (argv[1]): a thread started before the claim, the claim, a thread after
# it, a service (a process with a thread of its own and a child) placed once up, a process the benchmark
# starts for itself and does not place. Prints every affinity seen.
SCRIPT = r"""
import json, os, subprocess, sys, threading, time
from bench import cores

os.sched_setaffinity(0, set(json.loads(sys.argv[1])))
before = threading.Thread(target=time.sleep, args=(30,), daemon=True)
before.start()
split = cores.claim()
after = threading.Thread(target=time.sleep, args=(30,), daemon=True)
after.start()
SERVICE = (
    "import subprocess, sys, threading, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
    "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(30)\n"
)
service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
grandchild = int(service.stdout.readline())
cores.place(service.pid)
own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(0.2)

def threads(pid):
    return sorted(sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task"))

print(json.dumps({
    "split": None if split is None else [sorted(split.connector), sorted(split.services)],
    "described": cores.describe(),
    "bench": threads(os.getpid()),
    "service": threads(service.pid),
    "service_threads": len(os.listdir(f"/proc/{service.pid}/task")),
    "service_child": threads(grandchild),
    "own_process": threads(own.pid),
}))
for process in (service, own):
    process.kill()
os.kill(grandchild, 9)
"""


def run_on(available: list[int]) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(available)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


needs_two = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two cores to split"
)


def test_the_first_core_goes_to_the_connector_the_others_to_the_services() -> None:
    assert plan({3, 1, 2}) == Split(frozenset({1}), frozenset({2, 3}))
    assert plan({0, 1}) == Split(frozenset({0}), frozenset({1}))


def test_one_core_is_not_split() -> None:
    assert plan({5}) is None
    assert plan(set()) is None


@needs_two
def test_a_claimed_process_keeps_its_core_and_a_placed_service_takes_the_others() -> None:
    first, second = sorted(os.sched_getaffinity(0))[:2]
    seen = run_on([first, second])
    assert seen["split"] == [[first], [second]]
    assert seen["described"] == f"the connector on core {first}, the services on {second}"
    # Every thread of the benchmark's process: the one from before the claim, the main one, the one after.
    assert seen["bench"] == [[first]] * len(seen["bench"]) and len(seen["bench"]) >= 3
    # The service with each of its threads, and the child it started before it was placed.
    assert seen["service_threads"] >= 2
    assert seen["service"] == [[second]] * seen["service_threads"]
    assert seen["service_child"] == [[second]]
    # What the benchmark starts for itself (the operator CLI, a baseline) stays with the connector.
    assert seen["own_process"] == [[first]]


@needs_two
def test_with_a_single_core_nothing_moves() -> None:
    first = sorted(os.sched_getaffinity(0))[0]
    seen = run_on([first])
    assert seen["split"] is None
    assert seen["described"] == "every process on every core"
    assert seen["service"] == [[first]] * seen["service_threads"]
    assert seen["service_child"] == [[first]]

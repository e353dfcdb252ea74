"""The connector on a core of its own, the services it talks to on the others, where the machine has two or more.

In production the connector has its Function instance to itself: Campaign, Dataverse and Table Storage run on
other machines. Here they share the machine with it, and their CPU (during the ingress increment Azurite uses
about a third of a core, the Campaign sandbox a seventh) queues the connector's threads and the sandbox's
answers behind each other in the run queue: a latency-bound figure then measures the machine's scheduler more
than the connector. Side by side on 2 cores, the 10,000-record increment did 0.82 and 0.84 of its bound with
every process on both cores, 0.88 and 0.87 split this way (mean PATCH 35.6 and 34.7 ms, against 33.2 and 33.4).

So a benchmark run keeps its own process on the first core: the connector, the baselines measured in the same
run, and what it starts for them (the operator CLI, Airbyte's source) inherit it. Each service process
(the sandboxes, Azurite, sshd) is placed, with its threads and its children, on the other cores once it is up;
the threads and children it starts later inherit them. With one core, or where the system cannot pin (no
sched_setaffinity), nothing moves and `describe()` says the cores are shared.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

PROC = Path("/proc")


@dataclasses.dataclass(frozen=True)
class Split:
    connector: frozenset[int]
    services: frozenset[int]


_split: Split | None = None


def plan(available: set[int]) -> Split | None:
    """The first core for the connector, the rest for the services; None below two cores."""
    ordered = sorted(available)
    if len(ordered) < 2:
        return None
    return Split(frozenset(ordered[:1]), frozenset(ordered[1:]))


def claim() -> Split | None:
    """From now on this process (every thread it has, and every one it starts) runs on the connector's core."""
    global _split
    if not hasattr(os, "sched_setaffinity"):
        return None
    _split = plan(os.sched_getaffinity(0))
    if _split is not None:
        _pin(os.getpid(), _split.connector)
    return _split


def place(pid: int | None) -> None:
    """A started service process, its threads and its children, onto the services' cores (after a claim).
    None (a server not running) places nothing."""
    if _split is None or pid is None:
        return
    for process in (pid, *descendants(pid)):
        _pin(process, _split.services)


def describe() -> str:
    if _split is None:
        return "every process on every core"
    return f"the connector on core {_cores(_split.connector)}, the services on {_cores(_split.services)}"


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from each process's parent in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold ")"
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    below = list(children.get(pid, ()))
    while below:
        child = below.pop()
        found.append(child)
        below.extend(children.get(child, ()))
    return found


def _pin(pid: int, cores: frozenset[int]) -> None:
    try:
        threads = [int(tid) for tid in os.listdir(PROC / str(pid) / "task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # the thread ended meanwhile
            pass


def _cores(cores: frozenset[int]) -> str:
    return ",".join(map(str, sorted(cores)))

"""The machine a run measured on: cores, CPU model, Python (printed with the table), and how much of its CPU
the hypervisor gave to other guests while a benchmark ran (steal time).

On a shared VM, steal is what moves a latency-bound figure most from run to run here: the ingress increment did
0.82 of its bound with 1 % steal and 0.73 with 10-39 % a few minutes later. Each figure carries the steal of
its benchmark, so a table says when the machine, not the connector, took the time."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any, NamedTuple

STAT = Path("/proc/stat")


@dataclasses.dataclass(frozen=True)
class Machine:
    cores: int
    cpu: str
    python: str
    system: str

    def line(self) -> str:
        return f"Machine: {self.cores} cores, {self.cpu}, Python {self.python}, {self.system}"

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def describe() -> Machine:
    return Machine(
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0),
        cpu=_cpu_model(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.machine()}",
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class CpuTimes(NamedTuple):
    """The machine's CPU time since boot, in clock ticks: all of it, and what the hypervisor stole."""

    total: int
    steal: int


def cpu_times(stat: str | None = None) -> CpuTimes | None:
    """From /proc/stat's aggregate `cpu` line (user nice system idle iowait irq softirq steal ...); None where
    there is none (not Linux). Guest time is already counted in user time, so it is left out of the total."""
    if stat is None:
        try:
            stat = STAT.read_text()
        except OSError:
            return None
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(value) for value in fields[1:9]]
            if len(ticks) < 8:
                return None
            return CpuTimes(total=sum(ticks), steal=ticks[7])
    return None


def steal_share(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """The share of the CPU time between two readings that the hypervisor stole (0.12 for 12 %)."""
    if before is None or after is None or after.total <= before.total:
        return None
    return (after.steal - before.steal) / (after.total - before.total)

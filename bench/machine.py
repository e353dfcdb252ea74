"""The machine a run measured on: cores, CPU model, Python (printed with the table)."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any


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

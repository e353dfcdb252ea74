"""What a benchmark reports: figures, each a value against a baseline or a bound measured in the same run.

Absolute times vary between runs and machines here; ratios measured in one run do not. So a figure's target is
on its ratio (value / reference) when it has a reference, else on its value (a count that must stay 0, say).
A figure that could not be measured carries why (`blocked`) and no value: it never passes and never fails.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}
_SHOWN = {">=": "≥", "<=": "≤"}
STEAL_SHOWN = 0.01  # below this the hypervisor's share is not worth a word in the table


@dataclasses.dataclass(frozen=True)
class Target:
    op: str  # ">=" or "<="
    threshold: float
    full: Target | None = None  # for a --quick floor: the full run's target it stands in for

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"target operator must be one of {sorted(_OPS)}")

    def met(self, measured: float) -> bool:
        return not math.isnan(measured) and _OPS[self.op](measured, self.threshold)

    def __str__(self) -> str:
        shown = f"{_SHOWN[self.op]} {_number(self.threshold)}"
        return f"{shown} (quick floor; full run {self.full})" if self.full is not None else shown


def at_least(threshold: float) -> Target:
    return Target(">=", threshold)


def at_most(threshold: float) -> Target:
    return Target("<=", threshold)


def quick_floor(full: Target, floor: Target, *, quick: bool) -> Target:
    """The full run's target, or in --quick the looser `floor` that stands in for it.

    A figure bound by a latency or a fixed cost (a run's start, a connection) cannot reach its full-size target
    on the reduced datasets of --quick, and moves with the machine (the same run does 0.86 on one machine here,
    0.6 on one 2.5 times slower per core). The floor is what a regression crosses everywhere: parallelism lost,
    batching lost, a shaping step gone quadratic; the full run judges the product target."""
    if not quick:
        return full
    if floor.op != full.op:
        raise ValueError("a quick floor must point the same way as the target it stands in for")
    return dataclasses.replace(floor, full=full)


@dataclasses.dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: float | None
    unit: str
    reference: float | None = None  # the baseline or bound, in the value's unit
    reference_label: str = ""  # what the reference is: "plain requests + JSON", "budget"
    target: Target | None = None  # on the ratio when there is a reference, else on the value
    blocked: str = ""  # why it could not be measured (then value is None)
    note: str = ""
    steal: float | None = None  # the hypervisor's share of the CPU while its benchmark ran (bench.machine)

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    @property
    def judged(self) -> float | None:
        """What the target applies to."""
        return self.ratio if self.reference is not None else self.value

    @property
    def status(self) -> str:
        if self.blocked or self.value is None:
            return "blocked"
        if self.target is None:
            return "info"
        judged = self.judged
        if judged is None:
            return "FAIL"  # a reference of 0: no ratio to meet the target with
        return "pass" if self.target.met(judged) else "FAIL"

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "figure": self.name,
            "value": self.value,
            "unit": self.unit,
            "reference": self.reference,
            "reference_label": self.reference_label,
            "ratio": self.ratio,
            "target": str(self.target) if self.target else None,
            "status": self.status,
            "blocked": self.blocked or None,
            "note": self.note or None,
            "steal": None if self.steal is None else round(self.steal, 4),
        }


def exit_code(figures: Sequence[Figure]) -> int:
    """1 when any figure misses its target, else 0 (blocked figures are reported, not judged)."""
    return 1 if any(f.status == "FAIL" for f in figures) else 0


def render(figures: Sequence[Figure], machine: str) -> str:
    """The results as one Markdown table, the machine above it."""
    header = ("benchmark", "figure", "value", "baseline or bound", "ratio", "target", "result")
    rows = [header, tuple("---" for _ in header)]
    for f in figures:
        value = f"{_number(f.value)} {f.unit}".strip() if f.value is not None else "—"
        if f.reference is not None:
            reference = f"{_number(f.reference)} {f.unit} ({f.reference_label})".strip()
        else:
            reference = f.reference_label or "—"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        result = f.status if not f.blocked else f"blocked: {f.blocked}"
        notes = [f.note] if f.note else []
        if f.steal is not None and f.steal >= STEAL_SHOWN and f.reference is not None:  # counts do not depend on it
            notes.append(f"steal {f.steal:.0%}")
        if notes:
            result += f" ({'; '.join(notes)})"
        rows.append((f.benchmark, f.name, value, reference, ratio, str(f.target) if f.target else "—", result))
    lines = ["| " + " | ".join(cells) + " |" for cells in rows]
    return f"{machine}\n\n" + "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"

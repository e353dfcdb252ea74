"""The benchmark table's logic: ratios, targets, statuses, exit code and rendering (no benchmark is run)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench.figures import Figure, Target, at_least, at_most, exit_code, quick_floor, render
from bench.machine import CpuTimes, cpu_times, steal_share
from bench.registry import BENCHMARKS, select


def figure(value: float | None, reference: float | None = None, target: Target | None = None, **kw: str) -> Figure:
    return Figure("read", "rows", value, "rows/s", reference, "baseline", target, **kw)


@pytest.mark.parametrize(
    ("value", "reference", "target", "ratio", "status"),
    [
        (30_000.0, 40_000.0, at_least(0.6), 0.75, "pass"),
        (20_000.0, 40_000.0, at_least(0.6), 0.5, "FAIL"),
        (24_000.0, 40_000.0, at_least(0.6), 0.6, "pass"),  # the target itself passes
        (4.0, 25.0, at_most(0.35), 0.16, "pass"),
        (10.0, 25.0, at_most(0.35), 0.4, "FAIL"),
        (0.0, 1.0, at_most(1.0), 0.0, "pass"),  # no 429 at all
        (5.0, 0.0, at_least(1.0), None, "FAIL"),  # a reference of 0 gives no ratio to meet a target with
        (5.0, 10.0, None, 0.5, "info"),
    ],
)
def test_ratio_and_status(
    value: float, reference: float, target: Target | None, ratio: float | None, status: str
) -> None:
    f = figure(value, reference, target)
    assert f.ratio == ratio
    assert f.status == status


@pytest.mark.parametrize(("value", "status"), [(0.0, "pass"), (1.0, "FAIL")])
def test_a_target_without_reference_applies_to_the_value(value: float, status: str) -> None:
    assert Figure("throttle", "failed writes", value, "writes", target=at_most(0)).status == status


def test_a_blocked_figure_is_neither_passed_nor_failed() -> None:
    blocked = figure(None, 40_000.0, at_least(8), blocked="discover: KeyError 'Attributes'")
    assert blocked.status == "blocked" and blocked.ratio is None
    assert exit_code([blocked]) == 0


def test_a_nan_never_meets_a_target() -> None:
    assert not at_least(0.0).met(math.nan) and not at_most(1.0).met(math.nan)


def test_exit_code_is_one_when_any_target_is_missed() -> None:
    good = figure(30_000.0, 40_000.0, at_least(0.6))
    bad = figure(10_000.0, 40_000.0, at_least(0.6))
    assert exit_code([good]) == 0
    assert exit_code([good, bad]) == 1


def test_render_prints_the_machine_and_one_row_per_figure() -> None:
    text = render(
        [
            figure(30_512.4, 40_000.0, at_least(0.6)),
            figure(None, blocked="needs (d)"),
            Figure("throttle", "failed writes", 0.0, "writes", target=at_most(0)),
        ],
        "Machine: 2 cores",
    )
    lines = text.splitlines()
    assert lines[0] == "Machine: 2 cores"
    assert lines[2] == "| benchmark | figure | value | baseline or bound | ratio | target | result |"
    assert lines[4] == "| read | rows | 30,512 rows/s | 40,000 rows/s (baseline) | 0.76 | ≥ 0.60 | pass |"
    assert lines[5] == "| read | rows | — | baseline | — | — | blocked: needs (d) |"
    assert lines[6] == "| throttle | failed writes | 0 writes | — | — | ≤ 0 | pass |"


def test_json_form() -> None:
    assert figure(30_000.0, 40_000.0, at_least(0.6)).as_json() == {
        "benchmark": "read",
        "figure": "rows",
        "value": 30_000.0,
        "unit": "rows/s",
        "reference": 40_000.0,
        "reference_label": "baseline",
        "ratio": 0.75,
        "target": "≥ 0.60",
        "status": "pass",
        "blocked": None,
        "note": None,
        "steal": None,
    }


def test_targets_refuse_unknown_operators() -> None:
    with pytest.raises(ValueError):
        Target("==", 1.0)


def test_select_by_name_and_refuse_unknown_names() -> None:
    assert [b.name for b in select(None)] == [b.name for b in BENCHMARKS]
    assert [b.name for b in select(["throttle", "read"])] == ["throttle", "read"]
    with pytest.raises(ValueError, match="nope"):
        select(["nope"])


def test_a_quick_floor_judges_quick_runs_and_names_the_full_target() -> None:
    full, floor = at_least(0.85), at_least(0.5)
    assert quick_floor(full, floor, quick=False) == full
    quick = quick_floor(full, floor, quick=True)
    assert str(quick) == "≥ 0.50 (quick floor; full run ≥ 0.85)"
    assert figure(0.6, 1.0, quick).status == "pass" and figure(0.6, 1.0, full).status == "FAIL"
    assert figure(0.4, 1.0, quick).status == "FAIL"  # a regression below the floor fails the quick run too
    with pytest.raises(ValueError):
        quick_floor(full, at_most(2.0), quick=True)


def test_a_figure_measured_under_steal_says_so() -> None:
    stolen = dataclasses.replace(figure(30_512.4, 40_000.0, at_least(0.6)), note="45.8 s", steal=0.123)
    barely = dataclasses.replace(figure(30_512.4, 40_000.0, at_least(0.6)), steal=0.004)
    count = Figure("ingress", "calls", 1.0, "calls", target=at_most(1.0), steal=0.123)
    lines = render([stolen, barely, count], "Machine").splitlines()
    assert lines[4].endswith("| pass (45.8 s; steal 12%) |")
    assert lines[5].endswith("| pass |")  # under 1 %: not worth a word
    assert lines[6].endswith("| pass |")  # a count does not move with the machine's speed
    assert stolen.as_json()["steal"] == 0.123


def test_steal_share_from_proc_stat() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user already)
    before = cpu_times("cpu  100 0 50 800 10 0 5 35 7 0\ncpu0 50 0 25 400 5 0 2 18 3 0\n")
    after = cpu_times("intr 1 2\ncpu  200 0 70 1500 10 0 5 215 9 0\n")
    assert before == CpuTimes(total=1000, steal=35) and after == CpuTimes(total=2000, steal=215)
    assert steal_share(before, after) == 0.18
    assert steal_share(after, before) is None and steal_share(None, after) is None
    assert cpu_times("cpu0 1 2 3\n") is None and cpu_times("cpu 1 2 3\n") is None  # no aggregate line, too short

"""The Function App indexes as the host would: unique names, timer schedules from app settings."""

from __future__ import annotations

import json
import pathlib

import function_app

REPO = pathlib.Path(__file__).resolve().parents[2]


def _functions() -> dict[str, dict]:
    function_app.app.functions_bindings = None  # get_functions() may run once per app object otherwise
    return {fn.get_function_name(): fn.get_trigger().get_dict_repr() for fn in function_app.app.get_functions()}


def test_ingress_timers_use_schedule_setting() -> None:
    functions = _functions()
    assert {"ingress_contacts", "ingress_custom_tables"} <= set(functions)
    for name in ("ingress_contacts", "ingress_custom_tables"):
        trigger = functions[name]
        assert trigger["type"] == "timerTrigger"
        assert trigger["schedule"] == "%INGRESS_SCHEDULE%"
        assert not trigger.get("runOnStartup")  # fires on every scale-out and redeploy otherwise


def test_egress_timer_uses_its_schedule_setting() -> None:
    trigger = _functions()["egress_events"]
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "%EGRESS_SCHEDULE%"


def test_initial_transfer_timer_uses_its_schedule_setting() -> None:
    trigger = _functions()["initial_transfer"]
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "%INITIAL_TRANSFER_SCHEDULE%"
    assert not trigger.get("runOnStartup")


def test_host_json_fits_flex_consumption() -> None:
    host = json.loads((REPO / "host.json").read_text())
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    hours, minutes, _ = (int(x) for x in host["functionTimeout"].split(":"))
    assert 0 < hours * 60 + minutes <= 60
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert "Request" in sampling["excludedTypes"].split(";")  # invocation records are never sampled away


def test_default_run_budget_ends_before_function_timeout() -> None:
    from shared.settings import SPECS

    host = json.loads((REPO / "host.json").read_text())
    hours, minutes, seconds = (int(x) for x in host["functionTimeout"].split(":"))
    budget = float(next(s.default for s in SPECS if s.name == "RUN_TIME_BUDGET_SECONDS") or 0)
    assert budget + 120 <= hours * 3600 + minutes * 60 + seconds  # room for the last page and the summary

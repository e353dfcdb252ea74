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


def test_opt_out_functions_webhook_queue_and_timer() -> None:
    functions = _functions()
    assert {"optout_webhook", "optout_queue", "optout_timer"} <= set(functions)
    webhook = functions["optout_webhook"]
    assert webhook["type"] == "httpTrigger" and webhook["route"] == "optout/webhook"
    assert [str(getattr(m, "value", m)) for m in webhook["methods"]] == ["POST"]
    assert str(getattr(webhook["authLevel"], "value", webhook["authLevel"])) == "function"  # Dataverse's WebhookKey
    queue = functions["optout_queue"]
    assert (queue["type"], queue["queueName"], queue["connection"]) == ("queueTrigger", "%OPTOUT_QUEUE%",
                                                                        "OPTOUT_QUEUE_STORAGE")  # fmt: skip
    timer = functions["optout_timer"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%OPTOUT_SCHEDULE%" and not timer["runOnStartup"]


def test_host_json_queue_settings_fit_seconds_latency_and_the_poison_queue() -> None:
    queues = json.loads((REPO / "host.json").read_text())["extensions"]["queues"]
    assert queues["maxPollingInterval"] <= "00:00:02"  # the host polls an idle queue at most every 2 s
    assert queues["maxDequeueCount"] == 5 and queues["messageEncoding"] == "base64"  # what the receiver writes

"""The timer functions themselves, called as the host would call them, against the local stack."""

from __future__ import annotations

import types

import pytest
from azure.functions.timer import TimerRequest

import function_app
import shared.wiring
from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from shared.state.runs import RunLog
from tests.e2e.conftest import EXAMPLE, stack_env


def user_function(name: str):  # type: ignore[no-untyped-def]
    function_app.app.functions_bindings = None
    [fn] = [f for f in function_app.app.get_functions() if f.get_function_name() == name]
    return fn.get_user_function()


def test_timer_functions_sync_contacts_and_custom_tables(
    monkeypatch: pytest.MonkeyPatch, dataverse_sandbox: DataverseSandbox, campaign_sandbox: CampaignSandbox,
    storage_connection_string: str, table_prefix: str,
) -> None:  # fmt: skip
    env = stack_env(dataverse_sandbox, campaign_sandbox, storage_connection_string, table_prefix, EXAMPLE)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(shared.wiring, "_services", None)
    dataverse_sandbox.seed_contacts(25)
    dataverse_sandbox.create("new_loyaltycards", {"new_name": "card", "new_cardnumber": "C-1"})

    context = types.SimpleNamespace(invocation_id="inv-123")
    user_function("ingress_contacts")(TimerRequest(past_due=False), context)
    assert len(campaign_sandbox.rows("profile")) == 25
    assert campaign_sandbox.rows("cusLoyaltyCard") == []  # the other timer's job

    user_function("ingress_custom_tables")(TimerRequest(past_due=True), context)
    assert len(campaign_sandbox.rows("cusLoyaltyCard")) == 1

    runs = RunLog(shared.wiring.services().state.table("runs"))
    [summary] = runs.latest("ingress", "contacts")
    assert summary["invocation_id"] == "inv-123" and summary["outcome"] == "completed"

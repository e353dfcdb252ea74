"""Workflow execution reads, external signal triggers and the 10-minute rule (with injected time)."""

from __future__ import annotations

import logging

import pytest

from sandbox.campaign import CampaignSandbox, SandboxConfig
from shared.clients.campaign import CampaignClient, CampaignConfigError, SignalRateLimitedError
from shared.http import ApiError, Outcome
from tests.fixtures.campaign import FakeTime, make_campaign_client

WKF = "WKF_D365_INITIAL"
PARAMS = {"fileName": "contacts_20260101.csv.gz", "table": "contact", "rowCount": 1200}


def test_trigger_follows_the_execution_href_and_is_recorded(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    workflows = campaign_client.workflows()
    execution = workflows.execution(WKF)
    assert execution.status == "started"
    assert "/activities/activity/" in execution.triggers["signal1"]

    workflows.trigger_signal(WKF, "signal1", "d365-connector", PARAMS)

    triggers = campaign_sandbox.triggers(WKF)
    assert len(triggers) == 1
    assert triggers[0]["accepted"] is True
    assert triggers[0]["source"] == "d365-connector"
    assert triggers[0]["parameters"] == PARAMS
    post = campaign_sandbox.requests("/trigger", method="POST")[0]
    assert execution.triggers["signal1"].endswith(post["path"])


def test_second_trigger_waits_out_the_window(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    workflows = campaign_client.workflows()
    workflows.trigger_signal(WKF, "signal1", "d365-connector", PARAMS)
    campaign_time.sleep(120)  # two minutes later
    workflows.trigger_signal(WKF, "signal1", "d365-connector", {**PARAMS, "table": "new_loyaltycard"})

    assert campaign_time.sleeps[-1] == pytest.approx(480)  # waited the rest of the 10 minutes, not more
    triggers = campaign_sandbox.triggers(WKF)
    assert [t["accepted"] for t in triggers] == [True, True]  # never refused: the client kept the rule


def test_refused_trigger_waits_and_retries_with_a_clear_message(
    campaign_sandbox: CampaignSandbox, campaign_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    # Another process (or this one before a restart) triggered a moment ago: only Campaign knows.
    other = make_campaign_client(campaign_sandbox, campaign_time).workflows()
    other.trigger_signal(WKF, "signal1", "other-process", PARAMS)
    caplog.set_level(logging.INFO)

    mine = make_campaign_client(campaign_sandbox, campaign_time).workflows()
    mine.trigger_signal(WKF, "signal1", "d365-connector", PARAMS)

    triggers = campaign_sandbox.triggers(WKF)
    assert [t["accepted"] for t in triggers] == [True, False, True]
    assert "10 minutes" in triggers[1]["reason"]
    assert campaign_time.sleeps == [600]
    assert "campaign.signal_wait" in caplog.text
    assert "one trigger per 10 minutes" in caplog.text


def test_gives_up_loudly_after_max_waits(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    client = make_campaign_client(campaign_sandbox, campaign_time)
    # The refusal text Campaign sends, whatever the clock says (status 400, text/plain).
    refusal = (
        "RST-360011 An error has occurred - please contact your administrator.\n"
        "The 'signal1' External signal activity cannot be triggered more often than every 10 minutes."
    )
    campaign_sandbox.fail(400, path="/trigger", body=refusal, times=None)
    with pytest.raises(SignalRateLimitedError) as info:
        client.workflows(max_waits=2).trigger_signal(WKF, "signal1", "d365-connector", PARAMS)
    assert info.value.outcome is Outcome.RATE_LIMITED
    assert "10 minutes" in str(info.value)
    assert campaign_time.sleeps == [600, 600]
    assert len(campaign_sandbox.requests("/trigger", method="POST")) == 3


def test_refusal_on_a_5xx_is_recognised_too(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    campaign_sandbox.fail(500, path="/trigger", body="too many triggers: every 10 minutes at most", times=1)
    campaign_client.workflows().trigger_signal(WKF, "signal1", "d365-connector", PARAMS)
    assert campaign_time.sleeps == [600]
    assert [t["accepted"] for t in campaign_sandbox.triggers(WKF)] == [True]


def test_undeclared_parameter_is_a_configuration_error(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    with pytest.raises(ApiError) as info:
        campaign_client.workflows().trigger_signal(WKF, "signal1", "d365-connector", {**PARAMS, "contentURL": "x"})
    assert info.value.outcome is Outcome.FATAL
    assert "undeclared signal parameter 'contentURL'" in info.value.message
    assert info.value.code == "XTK-170006"  # the specific code, not the generic RST-360011 prefix
    assert campaign_time.sleeps == []
    assert campaign_sandbox.triggers(WKF)[0]["accepted"] is False


def test_parameter_types_are_enforced(campaign_client: CampaignClient) -> None:
    with pytest.raises(ApiError) as info:
        campaign_client.workflows().trigger_signal(WKF, "signal1", "d365-connector", {**PARAMS, "rowCount": "many"})
    assert "invalid value for 'rowCount'" in info.value.message


def test_workflow_must_be_started(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    workflows = campaign_client.workflows()
    workflows.command(WKF, "stop")
    assert workflows.workflow_status(WKF) == "stopped"
    with pytest.raises(ApiError) as info:
        workflows.trigger_signal(WKF, "signal1", "d365-connector", PARAMS)
    assert info.value.outcome is Outcome.FATAL
    workflows.command(WKF, "start")
    workflows.trigger_signal(WKF, "signal1", "d365-connector", PARAMS)
    assert campaign_sandbox.triggers(WKF)[-1]["accepted"] is True


def test_unknown_activity_and_missing_source(campaign_client: CampaignClient) -> None:
    with pytest.raises(CampaignConfigError, match="no external signal activity 'signal9'"):
        campaign_client.workflows().trigger_signal(WKF, "signal9", "d365-connector", PARAMS)
    with pytest.raises(ValueError):
        campaign_client.workflows().trigger_signal(WKF, "signal1", "", PARAMS)


def test_sandbox_window_is_configurable(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    campaign_sandbox.reset(SandboxConfig(signal_window=0.0))
    workflows = campaign_client.workflows(signal_window=0.0)
    workflows.trigger_signal(WKF, "signal1", "a", PARAMS)
    workflows.trigger_signal(WKF, "signal1", "b", PARAMS)
    assert [t["accepted"] for t in campaign_sandbox.triggers(WKF)] == [True, True]

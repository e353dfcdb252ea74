"""Injected faults: 5xx, dropped connections, stalls, 429 budgets; the client retries, never duplicates silently."""

from __future__ import annotations

import pytest

from sandbox.campaign import CampaignSandbox
from shared.clients.campaign import CampaignClient, is_duplicate_key
from shared.http import ApiError, Outcome, RetryPolicy, TransportError
from tests.fixtures.campaign import FakeTime, make_campaign_client


def test_5xx_is_retried_with_backoff(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    campaign_sandbox.fail(503, path="/profile$", method="POST", times=2)
    campaign_client.resource("profile").create({"externalId": "c-1"})
    statuses = [c["status"] for c in campaign_sandbox.requests("/profile", method="POST")]
    assert statuses == [503, 503, 201]
    assert len(campaign_time.sleeps) == 2
    assert campaign_time.sleeps[1] > campaign_time.sleeps[0]  # exponential
    assert len(campaign_sandbox.rows("profile")) == 1


def test_persistent_5xx_surfaces_as_retry(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    campaign_sandbox.fail(502, path="/profile", times=None)
    with pytest.raises(ApiError) as info:
        campaign_client.resource("profile").find_by_email("x@example.com")
    assert info.value.outcome is Outcome.RETRY
    assert len(campaign_sandbox.requests("/profile")) == 4  # max_attempts of the fixture's policy


def test_dropped_connection_is_retried(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    ada = campaign_client.resource("profile").create({"externalId": "c-1"})
    campaign_sandbox.fail(action="drop", path="/profile/@", method="PATCH")
    campaign_client.resource("profile").patch(ada.href, {"firstName": "Ada"})
    statuses = [c["status"] for c in campaign_sandbox.requests("/profile/@", method="PATCH")]
    assert statuses == [0, 200]  # 0: dropped without an answer
    assert campaign_sandbox.rows("profile")[0]["firstName"] == "Ada"


def test_stall_beyond_the_read_timeout_is_retried(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    client = make_campaign_client(campaign_sandbox, campaign_time, read_timeout=0.3)
    campaign_sandbox.fail(action="stall", seconds=1.0, path="/profile", method="GET")
    assert client.resource("profile").find_by_email("x@example.com") == []
    assert len(campaign_sandbox.requests("/profile", method="GET")) == 2


def test_transport_failure_after_every_attempt(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    client = make_campaign_client(campaign_sandbox, campaign_time, policy=RetryPolicy(max_attempts=3, base_delay=0.1))
    campaign_sandbox.fail(action="drop", path="/profile", times=None)
    with pytest.raises(TransportError):
        client.resource("profile").count()
    assert len(campaign_sandbox.requests("/profile")) == 3


def test_lost_create_response_is_not_resent(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    # The create happens but its answer is lost. A POST is not idempotent, so it is not resent blindly:
    # the caller gets TransportError and looks the key up (the ingress flow does) before writing again.
    campaign_sandbox.fail(action="drop_after", path="/profile$", method="POST")
    with pytest.raises(TransportError):
        campaign_client.resource("profile").create({"externalId": "c-1", "email": "ada@example.com"})
    assert len(campaign_sandbox.requests("/profile", method="POST")) == 1
    assert len(campaign_sandbox.rows("profile")) == 1
    found = campaign_client.resource("profile").find_by("byExternalId", "externalId_parameter", "c-1")
    assert len(found) == 1


def test_duplicate_custom_key_is_recognised(campaign_client: CampaignClient) -> None:
    profiles = campaign_client.resource("profile")
    profiles.create({"externalId": "c-2"})
    with pytest.raises(ApiError) as info:
        profiles.create({"externalId": "c-2"})
    assert is_duplicate_key(info.value) and info.value.outcome is Outcome.RECORD_ERROR


def test_request_budget_answers_429_and_retry_after_is_honoured(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    campaign_sandbox.set_budget(limit=5, per_seconds=10)
    profiles = campaign_client.resource("profile")
    for i in range(8):
        profiles.create({"externalId": f"c-{i}"})
    statuses = [c["status"] for c in campaign_sandbox.requests("/profile", method="POST")]
    assert statuses.count(429) >= 1
    assert statuses.count(201) == 8
    assert len(campaign_sandbox.rows("profile")) == 8
    assert campaign_time.sleeps and all(s == pytest.approx(10, abs=1) for s in campaign_time.sleeps)


def test_429_without_room_in_the_wait_budget_surfaces(
    campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    client = make_campaign_client(campaign_sandbox, campaign_time, policy=RetryPolicy(max_attempts=3, max_total_wait=5))
    campaign_sandbox.fail(429, path="/profile", body={"error_code": "429050", "message": "Too many requests"},
                          headers={"Retry-After": "60"}, times=None)  # fmt: skip
    with pytest.raises(ApiError) as info:
        client.resource("profile").count()
    assert info.value.outcome is Outcome.RATE_LIMITED
    assert campaign_time.sleeps == []


def test_faults_fire_the_given_number_of_times(
    campaign_sandbox: CampaignSandbox, campaign_client: CampaignClient
) -> None:
    rule = campaign_sandbox.fail(500, path="/nothing-matches-this")
    campaign_client.resource("profile").count()
    assert rule.fired == 0
    campaign_sandbox.clear_faults()
    assert campaign_sandbox.state.faults == []

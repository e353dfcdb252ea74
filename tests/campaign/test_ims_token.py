"""IMS OAuth Server-to-Server tokens against the sandbox's /ims/token/v3."""

from __future__ import annotations

import logging

import pytest

from sandbox.campaign import CampaignSandbox, SandboxConfig
from shared.auth.ims_token import ImsTokenProvider
from shared.http import ApiError, Outcome, RetryPolicy
from tests.fixtures.campaign import FakeTime


def provider(sandbox: CampaignSandbox, fake: FakeTime, *, secret: str | None = None) -> ImsTokenProvider:
    return ImsTokenProvider(
        sandbox.ims_url,
        sandbox.client_id,
        secret or sandbox.client_secret,
        ["openid", "AdobeID", "campaign_sdk"],
        clock=fake.clock,
        sleep=fake.sleep,
        policy=RetryPolicy(max_attempts=3, base_delay=0.1),
    )


def test_token_request_is_the_documented_form(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    tokens = provider(campaign_sandbox, campaign_time)
    token = tokens.token()
    assert token
    calls = campaign_sandbox.requests("/ims/token/v3")
    assert len(calls) == 1
    assert calls[0]["method"] == "POST"
    assert calls[0]["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
    assert calls[0]["auth"] == "none"  # the token call itself carries no bearer token


def test_token_is_cached_until_shortly_before_expiry(
    campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    tokens = provider(campaign_sandbox, campaign_time)
    first = tokens.token()
    campaign_time.current += 86399 - 400  # still outside the 300 s refresh margin
    assert tokens.token() == first
    assert tokens.fetch_count == 1
    campaign_time.current += 150  # now inside the margin: refreshed before it can expire in flight
    assert tokens.token() != first
    assert tokens.fetch_count == 2


def test_invalidate_forces_a_new_token(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    tokens = provider(campaign_sandbox, campaign_time)
    first = tokens.token()
    tokens.invalidate()
    assert tokens.token() != first
    assert campaign_sandbox.tokens_issued == 2


def test_wrong_secret_is_fatal_and_never_logged(
    campaign_sandbox: CampaignSandbox, campaign_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-value-123"
    tokens = provider(campaign_sandbox, campaign_time, secret=secret)
    with pytest.raises(ApiError) as info:
        tokens.token()
    assert info.value.outcome is Outcome.FATAL
    assert info.value.code == "invalid_client"
    assert len(campaign_sandbox.requests("/ims/token/v3")) == 1  # bad credentials are not retried
    assert secret not in str(info.value)
    assert secret not in caplog.text


def test_ims_outage_is_retried(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    campaign_sandbox.fail(503, path="/ims/token", times=2)
    tokens = provider(campaign_sandbox, campaign_time)
    assert tokens.token()
    statuses = [r["status"] for r in campaign_sandbox.requests("/ims/token/v3")]
    assert statuses == [503, 503, 200]
    assert len(campaign_time.sleeps) == 2


def test_short_lived_tokens_refresh_at_a_tenth_of_their_life() -> None:
    with CampaignSandbox.start(SandboxConfig(token_lifetime=60)) as sandbox:
        fake = FakeTime(sandbox)
        tokens = provider(sandbox, fake)
        first = tokens.token()
        fake.current += 53
        assert tokens.token() == first
        fake.current += 2  # 55 s > 60 - 6 s margin
        assert tokens.token() != first

"""Gateway authentication: token expiry and refresh, API key errors, IMS provisioning errors."""

from __future__ import annotations

import pytest

from sandbox.campaign import CampaignSandbox
from shared.clients.campaign import CampaignClient
from shared.http import ApiError, Outcome
from tests.fixtures.campaign import FakeTime, make_campaign_client


def test_expired_token_is_refreshed_once_then_succeeds(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    profiles = campaign_client.resource("profile")
    profiles.create({"externalId": "c-1"})
    assert campaign_sandbox.tokens_issued == 1

    campaign_sandbox.expire_tokens()
    campaign_sandbox.clear_requests()
    profiles.create({"externalId": "c-2"})

    calls = campaign_sandbox.requests()
    assert [(c["path"].rsplit("/", 1)[-1], c["status"]) for c in calls] == [
        ("profile", 401),  # 401013: token expired
        ("v3", 200),  # exactly one new token
        ("profile", 201),  # the same call again, once
    ]
    assert campaign_sandbox.tokens_issued == 2
    assert len(campaign_sandbox.rows("profile")) == 2


def test_token_lifetime_passing_on_the_server_clock(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, campaign_time: FakeTime
) -> None:
    profiles = campaign_client.resource("profile")
    profiles.create({"externalId": "c-1"})
    campaign_time.sleep(86399 + 1)  # both clocks: the client refreshes ahead of expiry, never hitting a 401
    campaign_sandbox.clear_requests()
    profiles.create({"externalId": "c-2"})
    assert [c["status"] for c in campaign_sandbox.requests()] == [200, 201]


def test_a_token_refused_twice_is_not_refreshed_forever(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    campaign_client.resource("profile").create({"externalId": "c-1"})
    campaign_sandbox.fail(
        401, path="/profile", times=None, body={"error_code": "401013", "message": "Oauth token is not valid"}
    )
    with pytest.raises(ApiError) as info:
        campaign_client.resource("profile").create({"externalId": "c-2"})
    assert info.value.outcome is Outcome.AUTH_EXPIRED
    assert info.value.code == "401013"
    assert campaign_sandbox.tokens_issued == 2  # one refresh, then give up


def test_wrong_api_key_is_fatal(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    client = make_campaign_client(campaign_sandbox, campaign_time)
    client.api_key = "someone-elses-key"
    with pytest.raises(ApiError) as info:
        client.resource("profile").create({"externalId": "c-1"})
    assert info.value.outcome is Outcome.FATAL
    assert info.value.code == "403003"
    assert len(campaign_sandbox.requests("/profile")) == 1  # not retried
    assert campaign_sandbox.rows("profile") == []


def test_missing_token_is_refused_by_the_gateway(campaign_sandbox: CampaignSandbox) -> None:
    import requests

    response = requests.get(
        campaign_sandbox.base_url + "profileAndServices/profile", headers={"X-Api-Key": campaign_sandbox.api_key}
    )
    assert response.status_code == 401
    assert response.json() == {"error_code": "401013", "message": "Oauth token is not valid"}
    response = requests.get(campaign_sandbox.base_url + "profileAndServices/profile")
    assert response.status_code == 403
    assert response.json()["error_code"] == "403000"


def test_ims_provisioning_error_is_fatal(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    campaign_sandbox.fail(403, body={"error_code": "403023", "message": "Profile is not valid"}, path="/campaign/")
    with pytest.raises(ApiError) as info:
        campaign_client.resource("profile").find_by_email("x@example.com")
    assert info.value.outcome is Outcome.FATAL
    assert info.value.code == "403023"
    assert "Profile is not valid" in info.value.message


def test_wrong_organization_is_fatal(campaign_sandbox: CampaignSandbox, campaign_time: FakeTime) -> None:
    client = make_campaign_client(campaign_sandbox, campaign_time)
    client.base_url = client.base_url.replace("/acme/", "/acme-typo/")
    with pytest.raises(ApiError) as info:
        client.resource("profile").count()
    assert info.value.outcome is Outcome.FATAL
    assert "organization" in info.value.message

"""resourceType metadata: mapping targets, types, filters and the denyList/blackList spelling."""

from __future__ import annotations

import pytest

from sandbox.campaign import CampaignSandbox
from shared.clients.campaign import PROFILE_AND_SERVICES, CampaignClient, CampaignConfigError


def test_resource_type_lists_attributes_types_and_filters(campaign_client: CampaignClient) -> None:
    profile = campaign_client.resource_type("profile")
    assert profile.attributes["email"] == "string"
    assert profile.attributes["birthDate"] == "date"
    assert profile.attributes["gender"] == "enumeration"
    assert profile.details["gender"].values == ("unknown", "male", "female")
    assert profile.details["created"].read_only
    assert profile.res_types["cusLastPurchase"] == "date"
    assert profile.filters["byExternalId"] == ("externalId_parameter",)
    assert profile.filters["byEmail"] == ("email",)

    standard = campaign_client.resource_type("profile", root=PROFILE_AND_SERVICES)
    assert "cusCrmSegment" not in standard.attributes
    assert "byExternalId" not in standard.filters

    card = campaign_client.resource_type("cusLoyaltyCard")
    assert card.details["points"].res_type == "long"
    assert card.attributes["profile"] == "link"


def test_resource_type_is_read_once(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    campaign_client.resource_type("profile")
    campaign_client.resource_type("profile")
    assert len(campaign_sandbox.requests("/resourceType/profile")) == 2  # metadata + its filters, once


def test_validate_targets_accepts_a_fitting_mapping(campaign_client: CampaignClient) -> None:
    resolved = campaign_client.validate_targets(
        "profile",
        {"email": "string", "firstName": None, "birthDate": "date", "gender": "string", "cusCrmSegment": "string"},
    )
    assert resolved["email"] == "email"
    cards = campaign_client.validate_targets(
        "cusLoyaltyCard", {"points": "short", "validUntil": "date", "active": "boolean"}
    )
    assert set(cards) == {"points", "validUntil", "active"}


def test_validate_targets_names_every_problem(campaign_client: CampaignClient) -> None:
    with pytest.raises(CampaignConfigError) as info:
        campaign_client.validate_targets(
            "profile",
            {"email": "string", "shoeSize": "long", "favouriteColour": None, "birthDate": "boolean", "created": None},
        )
    error = info.value
    assert error.resource == "profile"
    text = str(error)
    assert "unknown target attribute 'shoeSize'" in text
    assert "unknown target attribute 'favouriteColour'" in text
    assert "'birthDate' is date/date, mapping expects boolean" in text
    assert "'created' is read-only" in text
    assert "email" not in " ".join(error.problems)


def test_validate_targets_numeric_widths(campaign_client: CampaignClient) -> None:
    with pytest.raises(CampaignConfigError) as info:
        campaign_client.validate_targets("cusLoyaltyCard", {"points": "int64"})  # may not fit a long
    assert "points" in str(info.value)
    with pytest.raises(CampaignConfigError):
        campaign_client.validate_targets("cusLoyaltyCard", {"points": "double"})


def test_validate_filter(campaign_client: CampaignClient) -> None:
    campaign_client.validate_filter("profile", "byExternalId", "externalId_parameter")
    campaign_client.validate_filter("cusLoyaltyCard", "byCrmId", "crmId_parameter")
    with pytest.raises(CampaignConfigError, match="unknown filter 'byCrmID'"):
        campaign_client.validate_filter("cusLoyaltyCard", "byCrmID", "crmId_parameter")
    with pytest.raises(CampaignConfigError, match="has no parameter 'crm_id_parameter'"):
        campaign_client.validate_filter("cusLoyaltyCard", "byCrmId", "crm_id_parameter")


@pytest.mark.parametrize("instance_spelling", ["denyList", "blackList"])
@pytest.mark.parametrize("configured", ["denyListEmail", "blackListEmail"])
def test_optout_spelling_follows_the_instance(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox, instance_spelling: str, configured: str
) -> None:
    campaign_sandbox.set_optout_spelling(instance_spelling)
    expected = instance_spelling + "Email"
    assert campaign_client.resolve_optout_attribute(configured) == expected
    assert campaign_client.resolve_optout_attribute(configured.replace("Email", "")) == instance_spelling
    assert campaign_client.validate_targets("profile", {configured: "boolean"}) == {configured: expected}
    assert campaign_client.resolve_optout_attribute("ccpaOptOut") == "ccpaOptOut"
    with pytest.raises(CampaignConfigError, match="unknown opt-out attribute 'denyListCarrierPigeon'"):
        campaign_client.resolve_optout_attribute("denyListCarrierPigeon")


def test_the_other_spelling_is_rejected_by_the_instance(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    campaign_sandbox.set_optout_spelling("blackList")
    profiles = campaign_client.resource("profile")
    from shared.http import ApiError, Outcome

    with pytest.raises(ApiError) as info:
        profiles.create({"externalId": "c-1", "denyListEmail": True})
    assert info.value.outcome is Outcome.RECORD_ERROR
    name = campaign_client.resolve_optout_attribute("denyListEmail")
    created = profiles.create({"externalId": "c-1", name: True})
    assert created.body["blackListEmail"] is True


def test_spelling_switch_keeps_the_data(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    created = campaign_client.resource("profile").create({"externalId": "c-1", "denyListEmail": True})
    campaign_sandbox.set_optout_spelling("blackList")
    body = campaign_client.resource("profile").get(created.href).body
    assert body["blackListEmail"] is True
    assert "denyListEmail" not in body

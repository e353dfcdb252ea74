"""Profiles and custom resources: every verb, lookups, per-record errors, and no personal data in errors."""

from __future__ import annotations

import logging

import pytest

from sandbox.campaign import CampaignSandbox
from shared.clients.campaign import PROFILE_AND_SERVICES, CampaignClient, is_duplicate_key
from shared.http import ApiError, Outcome

PERSON = {"externalId": "c-001", "email": "ada.lovelace@example.com", "firstName": "Ada", "lastName": "Lovelace"}


def test_profile_create_get_patch_delete(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    profiles = campaign_client.resource("profile")
    created = profiles.create({**PERSON, "cusCrmSegment": "vip", "denyListEmail": True})
    assert created.pkey.startswith("@")
    assert created.href.endswith(created.pkey)
    assert created.body["email"] == PERSON["email"]

    fetched = profiles.get(created.href)
    assert fetched.pkey == created.pkey
    assert fetched.body["cusCrmSegment"] == "vip"
    assert fetched.body["denyListEmail"] is True

    patched = profiles.patch(created.href, {"mobilePhone": "+15550100", "denyListEmail": False})
    assert (patched.pkey, patched.href) == (created.pkey, created.href)
    stored = campaign_sandbox.find_rows("profile", externalId="c-001")
    assert stored[0]["mobilePhone"] == "+15550100"
    assert stored[0]["denyListEmail"] is False

    assert profiles.delete(created.href) is True
    assert campaign_sandbox.rows("profile") == []
    with pytest.raises(ApiError) as info:
        profiles.get(created.href)
    assert info.value.status == 404
    assert info.value.outcome is Outcome.RECORD_ERROR
    assert profiles.delete(created.href, missing_ok=True) is False


def test_every_call_carries_the_documented_headers(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    campaign_client.resource("profile").create(PERSON)
    call = campaign_sandbox.requests("/profileAndServicesExt/profile", method="POST")[0]
    assert call["auth"] == "bearer"
    assert call["headers"]["x-api-key"] == campaign_sandbox.api_key
    assert call["headers"]["cache-control"] == "no-cache"
    assert call["headers"]["content-type"].startswith("application/json")


def test_lookup_by_custom_key_filter_and_by_email(campaign_client: CampaignClient) -> None:
    profiles = campaign_client.resource("profile")
    ada = profiles.create(PERSON)
    profiles.create({**PERSON, "externalId": "c-002", "email": "grace@example.org"})

    found = profiles.find_by("byExternalId", "externalId_parameter", "c-001")
    assert [r.href for r in found] == [ada.href]
    assert profiles.find_by("byExternalId", "externalId_parameter", "nobody") == []
    assert [r.pkey for r in profiles.find_by_email("ada.lovelace@example.com")] == [ada.pkey]


def test_custom_filters_only_exist_under_the_ext_root(campaign_client: CampaignClient) -> None:
    standard = campaign_client.resource("profile", root=PROFILE_AND_SERVICES)
    with pytest.raises(ApiError) as info:
        standard.find_by("byExternalId", "externalId_parameter", "c-001")
    assert info.value.status == 404


def test_extended_fields_are_rejected_on_the_standard_root(campaign_client: CampaignClient) -> None:
    standard = campaign_client.resource("profile", root=PROFILE_AND_SERVICES)
    with pytest.raises(ApiError) as info:
        standard.create({**PERSON, "cusCrmSegment": "vip"})
    assert info.value.outcome is Outcome.RECORD_ERROR
    assert "unknown attribute 'cusCrmSegment'" in info.value.message
    created = standard.create(PERSON)
    assert "cusCrmSegment" not in created.body
    assert "/profileAndServices/profile/" in created.href


def test_custom_resource_verbs_link_and_own_filter(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    ada = campaign_client.resource("profile").create(PERSON)
    cards = campaign_client.resource("cusLoyaltyCard")
    card = cards.create({"crmId": "lc-1", "points": 10, "tier": "gold", "profile": {"PKey": ada.pkey}})
    assert "/profileAndServicesExt/cusLoyaltyCard/" in card.href
    assert card.body["profile"]["PKey"] == ada.pkey

    cards.patch(card.href, {"points": 25, "active": True})
    assert cards.get(card.href).body["points"] == 25
    assert [r.pkey for r in cards.find_by("byCrmId", "crmId_parameter", "lc-1")] == [card.pkey]

    with pytest.raises(ApiError) as info:
        cards.create({"crmId": "lc-2", "profile": {"PKey": "@not-a-profile"}})
    assert info.value.outcome is Outcome.RECORD_ERROR
    assert "link 'profile'" in info.value.message

    cards.delete(card.href)
    assert campaign_sandbox.rows("cusLoyaltyCard") == []


def test_duplicate_custom_key_is_refused(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    profiles = campaign_client.resource("profile")
    profiles.create(PERSON)
    with pytest.raises(ApiError) as info:
        profiles.create({**PERSON, "firstName": "Other"})
    assert info.value.outcome is Outcome.RECORD_ERROR
    assert is_duplicate_key(info.value)
    assert PERSON["externalId"] not in str(info.value)  # the engine echoes the key value; we do not
    assert len(campaign_sandbox.rows("profile")) == 1


def test_custom_key_cannot_change_with_patch(campaign_client: CampaignClient) -> None:
    cards = campaign_client.resource("cusLoyaltyCard")
    card = cards.create({"crmId": "lc-1"})
    with pytest.raises(ApiError) as info:
        cards.patch(card.href, {"crmId": "lc-9"})
    assert info.value.outcome is Outcome.RECORD_ERROR
    assert "invalid value for 'crmId'" in info.value.message


def test_unknown_field_is_a_per_record_error(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    profiles = campaign_client.resource("profile")
    good = profiles.create(PERSON)
    with pytest.raises(ApiError) as info:
        profiles.patch(good.href, {"shoeSize": 42})
    error = info.value
    assert error.status == 400
    assert error.outcome is Outcome.RECORD_ERROR  # dead-letter this record, go on with the others
    assert error.code == "RST-360011"
    assert "unknown attribute 'shoeSize' on 'profile'" in error.message
    # The next record still goes through: nothing about the run is broken.
    profiles.create({**PERSON, "externalId": "c-002"})
    assert len(campaign_sandbox.rows("profile")) == 2


def test_bad_values_never_reach_messages_or_logs(
    campaign_client: CampaignClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad_email = "not-an-address-of-grace-hopper"
    with pytest.raises(ApiError) as info:
        campaign_client.resource("profile").create({**PERSON, "email": bad_email})
    assert info.value.outcome is Outcome.RECORD_ERROR
    assert "invalid value for 'email'" in info.value.message
    assert bad_email not in str(info.value)
    assert bad_email not in caplog.text

    with pytest.raises(ApiError) as info:
        campaign_client.resource("profile").create({**PERSON, "birthDate": "31/12/1990"})
    assert "invalid value for 'birthDate'" in info.value.message
    assert "1990" not in str(info.value)


def test_server_maintained_audit_fields(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    profiles = campaign_client.resource("profile")
    created = profiles.create(PERSON)
    assert created.body["created"] == created.body["lastModified"]
    campaign_sandbox.advance_clock(60)
    profiles.patch(created.href, {"firstName": "Augusta"})
    after = profiles.get(created.href).body
    assert after["created"] == created.body["created"]
    assert after["lastModified"] > created.body["lastModified"]


def test_attribute_times_move_only_for_changed_attributes(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    profiles = campaign_client.resource("profile")
    created = profiles.create(PERSON)
    before = campaign_sandbox.attribute_times("profile", created.pkey)
    campaign_sandbox.advance_clock(3600)
    profiles.patch(created.href, {"denyListEmail": True, "firstName": "Ada"})  # firstName unchanged
    after = campaign_sandbox.attribute_times("profile", created.pkey)
    assert after["denyListEmail"] > before["denyListEmail"]
    assert after["firstName"] == before["firstName"]
    assert after["email"] == before["email"]


def test_read_only_attribute_write_is_refused(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    # ACS answers 500 for a read-only attribute (troubleshooting.md): retried, then surfaced, never silent.
    profiles = campaign_client.resource("profile")
    created = profiles.create(PERSON)
    with pytest.raises(ApiError) as info:
        profiles.patch(created.href, {"lastModified": "2020-01-01 00:00:00.000Z"})
    assert info.value.status == 500
    assert "read-only attribute 'lastModified'" in info.value.message


def test_hrefs_from_other_hosts_are_refused(campaign_client: CampaignClient) -> None:
    with pytest.raises(ValueError):
        campaign_client.resource("profile").get("https://evil.example/acme/campaign/profileAndServices/profile/@x")

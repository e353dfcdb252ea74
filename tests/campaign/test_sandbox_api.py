"""Raw REST details of the sandbox that vendor clients depend on: percent-encoded paths, `_order`, loud 501s.

These talk HTTP directly (no connector code), so they pin the sandbox's own behaviour.
"""

from __future__ import annotations

import urllib.parse

import pytest

from sandbox.campaign import CampaignSandbox
from tests.fixtures.campaign import RawCampaign


@pytest.fixture
def raw(campaign_sandbox: CampaignSandbox) -> RawCampaign:
    return RawCampaign(campaign_sandbox)


def encoded(pkey: str) -> str:
    return urllib.parse.quote(pkey, safe="")


def test_percent_encoded_pkeys_reach_the_record(raw: RawCampaign, campaign_sandbox: CampaignSandbox) -> None:
    pkey = raw.call("POST", "profileAndServices/profile", {"externalId": "c-1", "email": "a@example.com"}).json()[
        "PKey"
    ]
    assert encoded(pkey).startswith("%40")

    assert raw.call("GET", f"profileAndServices/profile/{encoded(pkey)}").json()["PKey"] == pkey
    assert raw.call("GET", f"profileAndServicesExt/profile/{encoded(pkey)}").json()["cusCrmSegment"] == ""
    patched = raw.call("PATCH", f"profileAndServices/profile/{encoded(pkey)}", {"firstName": "Ada"})
    assert patched.status_code == 200
    assert campaign_sandbox.find_rows("profile", externalId="c-1")[0]["firstName"] == "Ada"

    card = raw.call("POST", "profileAndServicesExt/cusLoyaltyCard", {"crmId": "L1"}).json()["PKey"]
    assert raw.call("PATCH", f"profileAndServicesExt/cusLoyaltyCard/{encoded(card)}", {"points": 5}).ok
    assert campaign_sandbox.rows("cusLoyaltyCard")[0]["points"] == 5
    assert raw.call("DELETE", f"profileAndServicesExt/cusLoyaltyCard/{encoded(card)}").status_code == 200
    assert campaign_sandbox.rows("cusLoyaltyCard") == []


def test_a_whole_relative_url_encoded_as_one_segment(raw: RawCampaign) -> None:
    # What the SDK's getDataFromRelativeUrl sends: '/', '?', '=' and '&' all percent-encoded.
    for i in range(3):
        raw.call("POST", "profileAndServices/profile", {"externalId": f"c-{i}"})
    relative = "profileAndServices/profile/?_lineCount=2"
    first = raw.call("GET", encoded(relative)).json()
    assert [r["externalId"] for r in first["content"]] == ["c-0", "c-1"]
    next_relative = first["next"]["href"][len(raw.base) :]
    second = raw.call("GET", encoded(next_relative)).json()
    assert [r["externalId"] for r in second["content"]] == ["c-2"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("lastName", ["Adams", "Brown", "Brown", "Carter"]),
        ("lastName%20asc", ["Adams", "Brown", "Brown", "Carter"]),
        ("lastName%20desc", ["Carter", "Brown", "Brown", "Adams"]),
        ("lastName%2520desc", ["Carter", "Brown", "Brown", "Adams"]),  # as Adobe's SDK sends it
    ],
)
def test_order_sorts_ascending_or_descending(raw: RawCampaign, order: str, expected: list[str]) -> None:
    for i, name in enumerate(["Brown", "Carter", "Adams", "Brown"]):
        raw.call("POST", "profileAndServices/profile", {"externalId": f"c-{i}", "lastName": name})
    body = raw.call("GET", f"profileAndServices/profile?_order={order}").json()
    assert [r["lastName"] for r in body["content"]] == expected


def test_sorted_pages_follow_on_with_ties_in_creation_order(raw: RawCampaign) -> None:
    points = [30, 10, 20, 10, 30, 20, 10]
    for i, value in enumerate(points):
        raw.call("POST", "profileAndServicesExt/cusLoyaltyCard", {"crmId": f"L{i}", "points": value})
    seen: list[str] = []
    url = "profileAndServicesExt/cusLoyaltyCard?_order=points%20desc&_lineCount=3"
    pages = 0
    while url:
        body = raw.call("GET", url).json()
        seen.extend(r["crmId"] for r in body["content"])
        url = body["next"]["href"][len(raw.base) :] if "next" in body else ""
        pages += 1
        if pages == 1:
            # A record added between pages sorts into place without shifting what is still to come.
            raw.call("POST", "profileAndServicesExt/cusLoyaltyCard", {"crmId": "late", "points": 15})
    assert seen == ["L0", "L4", "L2", "L5", "late", "L1", "L3", "L6"]
    assert pages == 3


def test_order_refuses_unknown_and_unsortable_fields(raw: RawCampaign) -> None:
    unknown = raw.call("GET", "profileAndServices/profile?_order=shoeSize")
    assert unknown.status_code == 400
    assert "'shoeSize' property is not valid for the 'profile' resource" in unknown.json()["message"]
    link = raw.call("GET", "profileAndServicesExt/cusLoyaltyCard?_order=profile")
    assert link.status_code == 400
    assert "cannot be used to sort" in link.json()["message"]
    extension_on_standard = raw.call("GET", "profileAndServices/profile?_order=cusCrmSegment")
    assert extension_on_standard.status_code == 400
    several = raw.call("GET", "profileAndServices/profile?_order=lastName,firstName")
    assert several.status_code == 501
    assert "not model" in several.json()["message"]
    bad = raw.call("GET", "profileAndServices/profile?_order=lastName%20sideways")
    assert bad.status_code == 400


def test_metadata_flags_sortable_fields(raw: RawCampaign) -> None:
    content = raw.call("GET", "profileAndServicesExt/resourceType/cusLoyaltyCard").json()["content"]
    assert content["points"]["sortable"] is True
    assert content["profile"]["sortable"] is False
    assert content["PKey"]["sortable"] is False


def test_one_column_of_every_record(raw: RawCampaign) -> None:
    for email in ["b@example.com", "a@example.com"]:
        raw.call("POST", "profileAndServices/profile", {"email": email})
    body = raw.call("GET", "profileAndServices/profile/email?_order=email%20asc").json()
    assert body["content"] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "profileAndServices/service"),
        ("GET", "profileAndServices/resourceType/service"),
        ("GET", "profileAndServices/history/%40abc"),
        ("GET", "profileAndServicesExt/orgUnitBase"),
        ("GET", "privacy/privacyTool"),
        ("POST", "mcacme/EVTwelcome"),
    ],
)
def test_unmodelled_endpoints_fail_loudly(raw: RawCampaign, method: str, path: str) -> None:
    response = raw.call(method, path, {} if method == "POST" else None)
    assert response.status_code == 501
    assert "does not model" in response.json()["message"]


def test_org_unit_changes_are_refused_not_ignored(raw: RawCampaign, campaign_sandbox: CampaignSandbox) -> None:
    pkey = raw.call("POST", "profileAndServicesExt/profile", {"externalId": "c-1"}).json()["PKey"]
    response = raw.call("PATCH", f"profileAndServicesExt/profile/{encoded(pkey)}", {"orgUnit": {"PKey": "@x"}})
    assert response.status_code == 501
    assert "orgUnit" in response.json()["message"]

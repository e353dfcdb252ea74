"""Listing with _lineCount and next.href, _forcePagination on big tables, counting."""

from __future__ import annotations

import urllib.parse

from sandbox.campaign import CampaignSandbox, SandboxConfig
from shared.clients.campaign import CampaignClient
from tests.fixtures.campaign import FakeTime, make_campaign_client


def seed_profiles(sandbox: CampaignSandbox, count: int) -> list[dict]:
    return sandbox.seed(
        "profile",
        [{"externalId": f"c-{i:05d}", "email": f"person{i}@example.com", "lastName": f"Name{i}"} for i in range(count)],
    )


def test_paging_through_1000_profiles(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    seeded = seed_profiles(campaign_sandbox, 1000)
    campaign_sandbox.clear_requests()

    records = list(campaign_client.resource("profile").iter_all(line_count=100))

    assert len(records) == 1000
    assert {r.pkey for r in records} == {s["PKey"] for s in seeded}
    assert [r.body["externalId"] for r in records] == [s["externalId"] for s in seeded]  # stable order
    pages = campaign_sandbox.requests("/profileAndServicesExt/profile", method="GET")
    assert len(pages) == 10
    assert pages[0]["query"] == {"_lineCount": "100", "_forcePagination": "true"}
    for page in pages[1:]:
        # Every later page is the next.href as given: the opaque token is never computed by the client.
        assert page["query"]["_lineStart"].startswith("@")
        assert page["query"]["_lineCount"] == "100"


def test_default_page_size_is_25(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    seed_profiles(campaign_sandbox, 30)
    body = campaign_client.get_json(campaign_client.url("profileAndServicesExt/profile"))
    assert len(body["content"]) == 25
    next_query = urllib.parse.parse_qs(urllib.parse.urlsplit(body["next"]["href"]).query)
    assert "_lineStart" in next_query


def test_big_tables_need_force_pagination() -> None:
    with CampaignSandbox.start(SandboxConfig(big_table_threshold=150)) as sandbox:
        fake = FakeTime(sandbox)
        client = make_campaign_client(sandbox, fake)
        seed_profiles(sandbox, 200)
        profiles = client.resource("profile")
        # Without _forcePagination Campaign leaves `next` out above XtkBigTableThreshold (pagination.md).
        assert len(list(profiles.iter_all(line_count=50, force_pagination=False))) == 50
        assert len(list(profiles.iter_all(line_count=50))) == 200


def test_paging_is_stable_while_records_are_added(
    campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox
) -> None:
    seed_profiles(campaign_sandbox, 120)
    profiles = campaign_client.resource("profile")
    seen = []
    for index, record in enumerate(profiles.iter_all(line_count=50)):
        seen.append(record.pkey)
        if index == 10:
            profiles.create({"externalId": "late", "email": "late@example.com"})
    assert len(seen) == len(set(seen)) == 121


def test_filtered_lookups_page_too(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    campaign_sandbox.seed("profile", [{"email": "shared@example.com", "externalId": f"x{i}"} for i in range(30)])
    found = campaign_client.resource("profile").find_by_email("shared@example.com")
    assert len(found) == 30  # 25 + 5: the lookup follows next.href as well


def test_count(campaign_client: CampaignClient, campaign_sandbox: CampaignSandbox) -> None:
    seed_profiles(campaign_sandbox, 42)
    assert campaign_client.resource("profile").count() == 42

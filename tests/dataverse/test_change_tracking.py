"""Change tracking end to end: the client against the sandbox, and the sandbox against the documentation."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import (
    ChangeTrackingExpired,
    ChangeTrackingNotEnabled,
    DataverseClient,
    build_verified_session,
)

SELECT = ["contactid", "firstname", "lastname", "emailaddress1", "statecode", "donotbulkemail", "modifiedon"]


def _raw(sandbox: DataverseSandbox, url: str, prefer: str = "odata.track-changes") -> requests.Response:
    session = build_verified_session(str(sandbox.ca_path))
    headers = {
        "Authorization": f"Bearer {sandbox.issue_token()}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "Prefer": prefer,
    }
    return session.get(url, headers=headers, timeout=30)


def test_initial_read_of_20000_contacts_then_creates_updates_and_deletes_arrive_in_the_delta(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    dataverse_sandbox.seed_contacts(20_000, seed=7)
    client = make_dataverse_client(page_size=5000)

    pages = list(client.iter_changes("contacts", SELECT))

    assert [len(p.rows) for p in pages] == [5000, 5000, 5000, 5000]
    assert all(p.next_link and p.delta_link is None for p in pages[:-1]), "delta link only on the last page"
    assert pages[-1].next_link is None and pages[-1].delta_link
    ids = [row["contactid"] for p in pages for row in p.rows]
    assert len(set(ids)) == 20_000
    assert set(pages[0].rows[0]) == {"@odata.etag", *SELECT}
    delta_link = pages[-1].delta_link

    updated, deleted = ids[10], ids[20]
    created = dataverse_sandbox.create("contacts", {"firstname": "New", "lastname": "Person"})
    dataverse_sandbox.update("contacts", updated, {"donotbulkemail": True})
    dataverse_sandbox.delete("contacts", deleted)

    delta = list(client.iter_changes("contacts", SELECT, delta_link))

    assert len(delta) == 1
    rows = {r["contactid"]: r for r in delta[0].rows}
    assert set(rows) == {created, updated}
    assert rows[updated]["donotbulkemail"] is True
    assert rows[created]["firstname"] == "New"
    assert delta[0].deleted_ids == [deleted]
    assert delta[0].delta_link and delta[0].delta_link != delta_link

    quiet = list(client.iter_changes("contacts", SELECT, delta[0].delta_link))
    assert [(p.rows, p.deleted_ids) for p in quiet] == [([], [])]
    assert quiet[0].delta_link


def test_rows_changed_while_the_initial_read_pages_come_in_the_next_delta(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    dataverse_sandbox.seed_contacts(3000)
    client = make_dataverse_client(page_size=1000)
    reader = client.iter_changes("contacts", SELECT)
    first = next(reader)
    already_read = first.rows[0]["contactid"]
    not_yet_read = dataverse_sandbox.rows("contacts")[2500]["contactid"]
    # Changed behind the cursor (already read) and ahead of it, while the read is in progress.
    dataverse_sandbox.update("contacts", already_read, {"lastname": "Changed"})
    dataverse_sandbox.update("contacts", not_yet_read, {"lastname": "Ahead"})
    late = dataverse_sandbox.create("contacts", {"lastname": "Late"})
    rest = list(reader)
    delta_link = rest[-1].delta_link

    delta = list(client.iter_changes("contacts", SELECT, delta_link))

    changed = {r["contactid"]: r["lastname"] for p in delta for r in p.rows}
    assert changed == {already_read: "Changed", not_yet_read: "Ahead", late: "Late"}


def test_an_interrupted_initial_read_resumes_from_its_stored_next_link(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    dataverse_sandbox.seed_contacts(2500)
    client = make_dataverse_client(page_size=1000)
    first = next(client.iter_changes("contacts", SELECT))
    assert first.next_link
    dataverse_sandbox.clear_requests()

    resumed = list(client.iter_changes("contacts", SELECT, first.next_link))

    ids = [r["contactid"] for r in first.rows] + [r["contactid"] for p in resumed for r in p.rows]
    assert len(ids) == len(set(ids)) == 2500
    assert resumed[-1].delta_link
    # Links are followed as given: the query sent is exactly the link's query, with the page size again.
    sent = dataverse_sandbox.requests()
    assert [f"{r['path']}?{r['query']}" for r in sent] == [
        urlsplit(link).path + "?" + urlsplit(link).query for link in (first.next_link, resumed[0].next_link)
    ]
    assert {r["headers"]["prefer"] for r in sent} == {"odata.track-changes,odata.maxpagesize=1000"}


def test_a_large_delta_is_paged_and_only_its_last_page_has_the_delta_link(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    client = make_dataverse_client(page_size=100)
    delta_link = list(client.iter_changes("contacts", SELECT))[-1].delta_link
    dataverse_sandbox.seed_contacts(250)  # one seeding run: 250 creates
    doomed = dataverse_sandbox.create("contacts", {"lastname": "Short-lived"})
    dataverse_sandbox.delete("contacts", doomed)

    pages = list(client.iter_changes("contacts", SELECT, delta_link))

    assert [len(p.rows) + len(p.deleted_ids) for p in pages] == [100, 100, 51]
    assert all(p.delta_link is None for p in pages[:-1]) and pages[-1].delta_link
    # Created and deleted between two reads: still reported as a delete (change tracking doc).
    assert [i for p in pages for i in p.deleted_ids] == [doomed]


def test_expired_delta_token_raises_its_own_error_and_a_fresh_read_recovers(
    dataverse_sandbox: DataverseSandbox, make_dataverse_client: Callable[..., DataverseClient]
) -> None:
    dataverse_sandbox.seed_contacts(10)
    client = make_dataverse_client()
    delta_link = list(client.iter_changes("contacts", SELECT))[-1].delta_link
    dataverse_sandbox.expire_delta_tokens()

    with pytest.raises(ChangeTrackingExpired) as caught:
        list(client.iter_changes("contacts", SELECT, delta_link))

    assert caught.value.code == "0x80044352"
    assert caught.value.status == 400
    again = list(client.iter_changes("contacts", SELECT))
    assert sum(len(p.rows) for p in again) == 10
    assert next(client.iter_changes("contacts", SELECT, again[-1].delta_link)).rows == []


def test_a_table_without_change_tracking_is_named_in_a_clear_error(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    dataverse_sandbox.create("new_untrackeds", {"new_name": "x"})

    with pytest.raises(ChangeTrackingNotEnabled) as caught:
        list(dataverse_client.iter_changes("new_untrackeds", ["new_name"]))
    assert "new_untrackeds" in str(caught.value) and "Track changes" in str(caught.value)

    with pytest.raises(ChangeTrackingNotEnabled) as by_metadata:
        dataverse_client.require_change_tracking("new_untracked")
    assert "'new_untracked'" in str(by_metadata.value)
    assert dataverse_client.require_change_tracking("new_loyaltycard").entity_set == "new_loyaltycards"


def test_custom_tables_and_activities_are_tracked_too(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    card = dataverse_sandbox.create("new_loyaltycards", {"new_name": "Gold card", "new_points": 10})
    card_link = list(dataverse_client.iter_changes("new_loyaltycards", ["new_name", "new_points"]))[-1].delta_link
    events = ["subject", "new_eventtype", "_regardingobjectid_value"]
    event_link = list(dataverse_client.iter_changes("new_campaignemailevents", events))[-1].delta_link
    contact = dataverse_sandbox.create("contacts", {"lastname": "Reader"})
    dataverse_sandbox.update("new_loyaltycards", card, {"new_points": 11})
    event = dataverse_sandbox.create(
        "new_campaignemailevents",
        {
            "subject": "Opened: spring newsletter",
            "new_eventtype": 2,
            "regardingobjectid_contact_new_campaignemailevent@odata.bind": f"/contacts({contact})",
        },
    )

    # The delta link keeps the columns of the read that issued it.
    cards = [r for p in dataverse_client.iter_changes("new_loyaltycards", ["new_name"], card_link) for r in p.rows]
    activities = [
        r for p in dataverse_client.iter_changes("new_campaignemailevents", events, event_link) for r in p.rows
    ]

    assert [(r["new_loyaltycardid"], r["new_name"], r["new_points"]) for r in cards] == [(card, "Gold card", 11)]
    assert [(r["activityid"], r["new_eventtype"], r["_regardingobjectid_value"]) for r in activities] == [
        (event, 2, contact)
    ]


@pytest.mark.parametrize("option", ["$filter=statecode eq 0", "$orderby=lastname", "$expand=x", "$top=5"])
def test_sandbox_rejects_query_options_with_change_tracking(dataverse_sandbox: DataverseSandbox, option: str) -> None:
    response = _raw(dataverse_sandbox, f"{dataverse_sandbox.api_url}contacts?$select=firstname&{option}")

    name = option.split("=")[0]
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def test_sandbox_answers_the_documented_change_tracking_shapes(dataverse_sandbox: DataverseSandbox) -> None:
    dataverse_sandbox.seed_contacts(3)
    first = _raw(dataverse_sandbox, f"{dataverse_sandbox.api_url}contacts?$select=firstname")
    body = first.json()
    assert first.headers["Preference-Applied"].startswith("odata.track-changes")
    assert body["@odata.context"].endswith("$metadata#contacts(firstname)")
    token = parse_qs(urlsplit(body["@odata.deltaLink"]).query)["$deltatoken"][0]
    version, _, stamp = token.partition("!")  # "<version>!<MM/dd/yyyy HH:mm:ss>" like the documented example
    assert version.isdigit() and len(stamp) == 19 and stamp[2] == "/"
    gone = body["value"][0]["contactid"]
    dataverse_sandbox.delete("contacts", gone)

    delta = _raw(dataverse_sandbox, body["@odata.deltaLink"], prefer="").json()

    assert delta["@odata.context"].endswith("$metadata#contacts(firstname)/$delta")
    assert delta["value"] == [
        {
            "@odata.context": f"{dataverse_sandbox.api_url}$metadata#contacts/$deletedEntity",
            "id": gone,
            "reason": "deleted",
        }
    ]
    count = _raw(dataverse_sandbox, body["@odata.deltaLink"].replace("contacts?", "contacts/$count?"))
    assert count.text == "1"


def test_client_refuses_links_to_another_host(dataverse_client: DataverseClient) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        list(dataverse_client.iter_changes("contacts", SELECT, "https://elsewhere.example.com/api/data/v9.2/contacts"))

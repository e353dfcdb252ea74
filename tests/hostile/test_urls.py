"""Record ids and filter values crafted to break OData or Campaign URLs.

Dataverse: a row id that is not a GUID is refused by the client before any URL is built (InvalidRowId, a record
error: dead-lettered, never a request), whatever the operation; the sandbox's request log proves nothing left.
Campaign: a key value travels as a query parameter, quoted so the request means exactly what was meant: the
sandbox sees the very value, on the filter's own path; a stored href pointing anywhere else is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from shared.clients.campaign import CampaignClient, KeyFilter
from shared.clients.dataverse import DataverseClient, InvalidRowId, Operation, odata_bind
from shared.core.errors import RecordError

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"

# (name, a row id that is not a GUID)
ROW_IDS: list[tuple[str, str]] = [
    ("OData quote injection", f"{GUID}') or ('1'='1"),
    ("a path to another table", f"{GUID})/../accounts("),
    ("a query", f"{GUID}?$select=fullname"),
    ("a fragment", f"{GUID}#x"),
    ("a percent-encoded quote", f"{GUID}%27"),
    ("an ampersand parameter", f"{GUID}&$expand=owninguser"),
    ("header injection", f"{GUID}\r\nX-Injected: 1"),
    ("unicode look-alike digits", "\uff10f8fad5b-d9cb-469f-a165-70867728950e"),
    ("braces", "{" + GUID + "}"),
    ("an alternate key expression", "emailaddress1='jane@example.org'"),
    ("very long", GUID * 500),
    ("empty", ""),
]

CALLS: list[Callable[[DataverseClient, str], Any]] = [
    lambda c, i: c.retrieve("contacts", i, ["fullname"]),
    lambda c, i: c.update("contacts", i, {"lastname": "x"}),
    lambda c, i: c.update_returning("contacts", i, {"lastname": "x"}, ["contactid"]),
    lambda c, i: c.upsert("contacts", i, {"lastname": "x"}),
    lambda c, i: c.create_if_absent("tasks", i, {"subject": "x"}),
    lambda c, i: c.delete("contacts", i),
    lambda c, i: c.exists("contacts", i),
    lambda c, i: c.create("tasks", {"subject": "x"}, id=i),
    lambda c, i: c.batch([Operation.update("contacts", i, {"lastname": "x"})]),
    lambda c, i: c.batch([Operation.delete("contacts", i)]),
    lambda c, i: c.batch([Operation.create_if_absent("tasks", i, {"subject": "x"})]),
    lambda c, i: c.create("tasks", {"regardingobjectid_contact_task@odata.bind": odata_bind("contacts", i)}),
]  # fmt: skip


@pytest.mark.parametrize("row_id", [r[1] for r in ROW_IDS], ids=[r[0] for r in ROW_IDS])
def test_a_row_id_that_is_not_a_guid_is_refused_before_any_request(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient, row_id: str
) -> None:
    for entity_set in ("tasks", "contacts"):  # metadata create and exists need, read before counting
        dataverse_client.primary_key(entity_set)
    before = len(dataverse_sandbox.requests())
    for call in CALLS:
        with pytest.raises(InvalidRowId) as caught:
            call(dataverse_client, row_id)
        assert isinstance(caught.value, RecordError)  # the record's fault: dead-lettered, the run goes on
        assert str(caught.value).endswith("a row id must be a GUID") and (not row_id or row_id not in str(caught.value))
    assert dataverse_sandbox.requests()[before:] == []


def test_guids_in_any_case_still_go_through(dataverse_client: DataverseClient) -> None:
    assert dataverse_client.retrieve("contacts", GUID.upper(), ["fullname"]) is None  # a real request, a 404


# (name, a key value) for Campaign's filter lookups
KEY_VALUES: list[tuple[str, str]] = [
    ("ampersand and equals", "a&externalId_parameter=other"),
    ("a fragment", "x#y"),
    ("a path", "../../profileAndServices/profile"),
    ("a query", "?_lineCount=100000"),
    ("percent signs", "100%25%"),
    ("quotes", 'O\'Brien "Jr"'),
    ("a plus and spaces", "a+b c"),
    ("unicode", "Zoë-漢字-🙂"),
    ("very long", "k" * 4000),
]


@pytest.mark.parametrize("value", [k[1] for k in KEY_VALUES], ids=[k[0] for k in KEY_VALUES])
def test_a_crafted_key_value_reaches_campaign_exactly_as_meant(
    campaign_sandbox: CampaignSandbox, campaign_client: CampaignClient, value: str
) -> None:
    campaign_sandbox.seed("profile", [{"externalId": "someone-else", "email": "a@example.org"}])
    campaign_sandbox.clear_requests()
    profiles = campaign_client.resource("profile")
    assert profiles.find_href(KeyFilter("byExternalId", "externalId_parameter"), value) is None
    assert profiles.find_by_email(value) == []
    lookups = campaign_sandbox.requests(method="GET")
    assert [(e["path"].rsplit("/", 1)[-1], e["query"]) for e in lookups] == [
        ("byExternalId", {"externalId_parameter": value}),
        ("byEmail", {"email": value}),
    ]


# (name, an href a response or the index could hold)
HREFS: list[tuple[str, str]] = [
    ("another host", "https://attacker.example/profile/x"),
    ("scheme-relative", "//attacker.example/profile/x"),
    ("the other scheme", "{other}://{netloc}/profile/x"),
    ("another port", "https://{host}:1/profile/x"),
    ("user info", "https://user@attacker.example/profile/x"),
]


@pytest.mark.parametrize("href", [h[1] for h in HREFS], ids=[h[0] for h in HREFS])
def test_an_href_outside_the_configured_campaign_is_refused_before_any_request(
    campaign_sandbox: CampaignSandbox, campaign_client: CampaignClient, href: str
) -> None:
    from urllib.parse import urlsplit

    base = urlsplit(campaign_client.base_url)
    other = "https" if base.scheme == "http" else "http"
    href = href.format(netloc=base.netloc, host=base.hostname, other=other)
    campaign_sandbox.clear_requests()
    profiles = campaign_client.resource("profile")
    for call in (profiles.get, profiles.delete, lambda h: profiles.patch(h, {"lastName": "x"})):
        with pytest.raises(ValueError, match="does not belong to the configured Campaign base URL"):
            call(href)
    assert campaign_sandbox.requests() == []

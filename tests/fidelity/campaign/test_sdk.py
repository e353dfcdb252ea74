"""Every call of Adobe's Campaign Standard SDK against the sandbox: it passes, or the sandbox refuses it with 501.

Expected values are literals or what the sandbox holds (read through its handle), never the SDK's own output.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox, SandboxConfig
from tests.fidelity.campaign.conftest import FIDELITY_CONFIG, Sdk, SdkBridge

PERSON = {"externalId": "c-001", "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}

# Each public SDK method, by what the sandbox does with it (sandbox/campaign/README.md has the same table).
MODELLED = {
    "getAllProfiles",
    "createProfile",
    "updateProfile",
    "getProfile",
    "getProfileWithOrgUnit",
    "getMetadataForResource",
    "getMetadataForResourceExt",
    "getCustomResources",
    "getAllCustomResources",
    "getAllBasicCustomResources",
    "getAllProfileAndServicesExt",
    "createCustomResource",
    "updateCustomResource",
    "deleteCustomResource",
    "getDataFromRelativeUrl",
    "getWorkflow",
    "controlWorkflow",
    "triggerSignalActivity",
    "postDataToUrl",
    "init",
}
NOT_MODELLED = {
    "getAllServices",
    "createService",
    "getService",
    "getHistoryOfProfile",
    "createGDPRRequest",
    "getGDPRRequest",
    "getGDPRDataFile",
    "sendTransactionalEvent",
    "sendTransactionalEventForMacTenantId",
    "getTransactionalEvent",
    "getTransactionalEventForMacTenantId",
    "getAllOrgUnits",
    "updateProfileOrgUnit",
    "updateOrgUnit",
}


def ok(answer: Any) -> Any:
    assert answer.ok, answer.message
    return answer.body


def test_the_pinned_sdk_runs_on_node_20(sdk_bridge: SdkBridge) -> None:
    hello = sdk_bridge.request(op="hello")["body"]
    assert hello["version"] == "4.0.3"
    assert hello["node"].startswith("v20.")


def test_every_sdk_method_is_classified(sdk_bridge: SdkBridge) -> None:
    methods = set(sdk_bridge.request(op="methods")["body"])
    assert methods == MODELLED | NOT_MODELLED


def test_init_errors_are_the_gateway_ones(make_sdk: Any) -> None:
    bad_token = make_sdk(token="not-a-token").call("getAllProfiles")
    assert (bad_token.ok, bad_token.status) == (False, 401)
    assert "401013" in bad_token.message
    bad_key = make_sdk(api_key="bad_api_key").call("getAllProfiles")
    assert (bad_key.ok, bad_key.status) == (False, 403)
    bad_tenant = make_sdk(tenant="bad_tenant_id").call("getAllProfiles")
    assert (bad_tenant.ok, bad_tenant.code) == (False, "ERROR_GET_ALL_PROFILES")
    assert "Check your URI" in bad_tenant.message


def test_profile_create_get_update(sdk: Sdk, acs: CampaignSandbox) -> None:
    created = sdk.call("createProfile", PERSON)
    assert created.status == 201
    pkey = created.body["PKey"]
    assert created.body["email"] == PERSON["email"]

    fetched = sdk.call("getProfile", pkey)
    assert fetched.status == 200
    assert "%40" in str(fetched.url)  # the SDK really sent the PKey percent-encoded
    assert fetched.body["PKey"] == pkey

    updated = sdk.call("updateProfile", pkey, {"firstName": "Augusta", "denyListEmail": True})
    assert updated.status == 200
    assert updated.body["PKey"] == pkey
    row = acs.find_rows("profile", externalId="c-001")[0]
    assert (row["firstName"], row["denyListEmail"]) == ("Augusta", True)

    extended = sdk.call("getProfileWithOrgUnit", pkey)
    assert extended.status == 200
    assert extended.body["cusCrmSegment"] == ""  # the Ext view: extension fields present
    assert "orgUnit" not in extended.body  # organizational units are not modelled (README)


def test_profile_validation_errors_reach_the_sdk(sdk: Sdk) -> None:
    answer = sdk.call("createProfile", {"email": "not-an-address"})
    assert (answer.ok, answer.status, answer.code) == (False, 400, "ERROR_CREATE_PROFILE")
    missing = sdk.call("getProfile", "@gibberish")
    assert (missing.ok, missing.status) == (False, 404)
    assert "'@gibberish' is not a valid constant" in missing.message


def test_filters_builtin_and_custom(sdk: Sdk, acs: CampaignSandbox) -> None:
    acs.seed("profile", [PERSON, {"externalId": "c-002", "email": "grace@example.org", "lastName": "Hopper"}])

    by_email = ok(sdk.call("getAllProfiles", {"filters": ["byEmail"], "email": "grace@example.org"}))
    assert [p["externalId"] for p in by_email["content"]] == ["c-002"]
    by_text = ok(sdk.call("getAllProfiles", {"filters": ["byText"], "text": "Hop"}))
    assert [p["externalId"] for p in by_text["content"]] == ["c-002"]
    custom = ok(
        sdk.call(
            "getAllProfiles", {"filters": ["byExternalId"], "hasCustomFilter": True, "externalId_parameter": "c-001"}
        )
    )
    assert [p["email"] for p in custom["content"]] == ["ada@example.com"]
    assert "cusCrmSegment" in custom["content"][0]
    not_on_standard = sdk.call("getAllProfiles", {"filters": ["byExternalId"], "externalId_parameter": "c-001"})
    assert (not_on_standard.ok, not_on_standard.status) == (False, 404)


def test_ordering_both_ways_and_refusals(sdk: Sdk, acs: CampaignSandbox) -> None:
    acs.seed("profile", [{"externalId": f"c-{i}", "lastName": name} for i, name in enumerate("DBCA")])
    ascending = ok(sdk.call("getAllProfiles", {"order": "lastName"}))
    assert [p["lastName"] for p in ascending["content"]] == ["A", "B", "C", "D"]
    descending = ok(sdk.call("getAllProfiles", {"order": "lastName", "descendingSort": True}))
    assert [p["lastName"] for p in descending["content"]] == ["D", "C", "B", "A"]

    unknown = sdk.call("getAllProfiles", {"order": "shoeSize"})
    assert (unknown.ok, unknown.status) == (False, 400)
    acs.seed("cusLoyaltyCard", [{"crmId": "L1"}])
    unsortable = sdk.call("getAllProfileAndServicesExt", "cusLoyaltyCard", {"order": "profile"})
    assert (unsortable.ok, unsortable.status) == (False, 400)
    assert "cannot be used to sort" in unsortable.message


def test_paging_through_next_href_with_the_relative_url_helper(sdk: Sdk, acs: CampaignSandbox) -> None:
    acs.seed("profile", [{"externalId": f"c-{i:02d}"} for i in range(5)])
    page = ok(sdk.call("getAllProfiles", {"lineCount": 2, "order": "externalId"}))
    seen = [p["externalId"] for p in page["content"]]
    while "next" in page:
        relative = page["next"]["href"][len(acs.base_url) :]
        page = ok(sdk.call("getDataFromRelativeUrl", relative))
        seen.extend(p["externalId"] for p in page["content"])
    assert seen == ["c-00", "c-01", "c-02", "c-03", "c-04"]

    count_href = page["count"]["href"][len(acs.base_url) :]
    assert ok(sdk.call("getDataFromRelativeUrl", count_href)) == {"count": 5}
    record = acs.rows("profile")[0]
    assert (
        ok(sdk.call("getDataFromRelativeUrl", f"profileAndServices/profile/{record['PKey']}"))["PKey"]
        == (record["PKey"])
    )
    # A relative URL as the metadata's `data` gives it, with its leading slash.
    assert len(ok(sdk.call("getDataFromRelativeUrl", "/profileAndServices/profile/"))["content"]) == 5


def test_metadata(sdk: Sdk) -> None:
    profile = ok(sdk.call("getMetadataForResource", "profile"))
    assert profile["content"]["email"]["dataPolicy"] == "email"
    assert profile["content"]["lastName"]["sortable"] is True
    assert "cusCrmSegment" not in profile["content"]  # the standard root has no extension fields
    assert profile["filters"]["href"].endswith("/profileAndServices/resourceType/profile/filters")
    for unmodelled in ("service", "history"):
        answer = sdk.call("getMetadataForResource", unmodelled)
        assert (answer.ok, answer.status) == (False, 501), unmodelled

    resources = ok(sdk.call("getCustomResources"))
    assert [r["name"] for r in resources["content"]] == ["profile", "cusLoyaltyCard"]
    # The SDK's "metadata Ext" call is a GET on /profileAndServicesExt/<resource>: the records list.
    assert ok(sdk.call("getMetadataForResourceExt", "cusLoyaltyCard"))["content"] == []


def test_custom_resources_create_get_update_delete(sdk: Sdk, acs: CampaignSandbox) -> None:
    created = sdk.call("createCustomResource", "cusLoyaltyCard", {"crmId": "L-1", "points": 10, "tier": "gold"})
    assert created.status == 201
    pkey = created.body["PKey"]

    listed = ok(sdk.call("getAllProfileAndServicesExt", "cusLoyaltyCard", {"lineCount": 10}))
    assert [c["crmId"] for c in listed["content"]] == ["L-1"]
    deprecated = ok(sdk.call("getAllCustomResources", "cusLoyaltyCard"))
    assert [c["PKey"] for c in deprecated["content"]] == [pkey]
    by_filter = ok(
        sdk.call("getAllProfileAndServicesExt", "cusLoyaltyCard", {"filters": ["byCrmId"], "crmId_parameter": "L-1"})
    )
    assert [c["PKey"] for c in by_filter["content"]] == [pkey]

    updated = sdk.call("updateCustomResource", "cusLoyaltyCard", pkey, {"points": 25})
    assert updated.status == 200
    assert acs.rows("cusLoyaltyCard")[0]["points"] == 25
    bad = sdk.call("updateCustomResource", "cusLoyaltyCard", pkey, {"tier": "platinum"})
    assert (bad.ok, bad.status) == (False, 400)

    deleted = sdk.call("deleteCustomResource", "cusLoyaltyCard", pkey)
    assert deleted.status == 200
    assert acs.rows("cusLoyaltyCard") == []
    again = sdk.call("deleteCustomResource", "cusLoyaltyCard", pkey)
    assert (again.ok, again.status) == (False, 404)

    unknown = sdk.call("createCustomResource", "cusNothing", {})
    assert (unknown.ok, unknown.status) == (False, 404)


def test_unlinked_custom_resources(sdk: Sdk, acs: CampaignSandbox) -> None:
    acs.seed("cusStore", [{"code": "S1", "city": "Porto"}])
    stores = ok(sdk.call("getAllBasicCustomResources", "cusStore"))
    assert [s["city"] for s in stores["content"]] == ["Porto"]
    assert "/customResources/cusStore/" in stores["content"][0]["href"]


def test_workflow_read_trigger_and_control(sdk: Sdk, acs: CampaignSandbox) -> None:
    workflow = ok(sdk.call("getWorkflow", "WKF_D365_INITIAL"))
    assert workflow["state"] == "started"
    href = workflow["activities"]["activity"]["signal1"]["trigger"]["href"]
    by_pkey = ok(sdk.call("getWorkflow", workflow["PKey"]))
    assert by_pkey["internalName"] == "WKF_D365_INITIAL"

    params = {"source": "fidelity", "parameters": {"fileName": "f.csv", "table": "contact", "rowCount": 3}}
    first = ok(sdk.call("triggerSignalActivity", href, params))
    assert first["activity"] == "signal1"
    # Inside the 10-minute window Campaign answers text; the SDK wraps it as {payload}.
    second = ok(sdk.call("triggerSignalActivity", href, params))
    assert "cannot be triggered more often than every 10 minutes" in second["payload"]
    assert [t["accepted"] for t in acs.triggers("WKF_D365_INITIAL")] == [True, False]

    # triggerSignalActivity does not look at the status: Campaign's JSON error is what it resolves with.
    undeclared = ok(sdk.call("triggerSignalActivity", href, {"source": "fidelity", "parameters": {"colour": "red"}}))
    assert undeclared["code"] == 400
    assert "'colour' parameter isn't defined in signal activity" in undeclared["message"]

    assert sdk.call("controlWorkflow", "WKF_D365_INITIAL", "stop").status == 200
    assert ok(sdk.call("getWorkflow", "WKF_D365_INITIAL"))["state"] == "stopped"
    assert sdk.call("controlWorkflow", "WKF_D365_INITIAL", "START").status == 200
    assert ok(sdk.call("getWorkflow", "WKF_D365_INITIAL"))["state"] == "started"
    local = sdk.call("controlWorkflow", "WKF_D365_INITIAL", "explode")
    assert local.code == "ERROR_INVALID_WORKFLOW_CONTROL_COMMAND"


def test_post_data_to_url_reaches_the_sandbox(sdk: Sdk, acs: CampaignSandbox) -> None:
    # postDataToUrl is the SDK's raw POST (fetch Response); it is how triggers are sent.
    answer = sdk.call("postDataToUrl", acs.base_url + "profileAndServices/profile", {"externalId": "c-raw"})
    assert answer.ok
    assert acs.find_rows("profile", externalId="c-raw") != []


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("getAllServices", []),
        ("createService", [{"name": "news", "label": "News"}]),
        ("getService", ["@service"]),
        ("getHistoryOfProfile", ["@profile"]),
        ("createGDPRRequest", [{"name": "r1", "namespace": "email", "type": "delete", "reconciliationValue": "x"}]),
        ("getGDPRRequest", []),
        ("sendTransactionalEvent", ["EVTwelcome", {"email": "a@example.com", "ctx": {}}]),
        ("sendTransactionalEventForMacTenantId", ["acme", "EVTwelcome", {"email": "a@example.com"}]),
        ("getTransactionalEvent", ["EVTwelcome", "@event"]),
        ("getTransactionalEventForMacTenantId", ["acme", "EVTwelcome", "@event"]),
        ("getAllOrgUnits", []),
        ("updateOrgUnit", ["@unit", {"label": "x"}]),
    ],
)
def test_unmodelled_calls_are_refused_with_501(sdk: Sdk, method: str, args: list[Any]) -> None:
    assert method in NOT_MODELLED
    answer = sdk.call(method, *args)
    assert (answer.ok, answer.status) == (False, 501), answer
    assert "does not model" in answer.message


def test_unmodelled_org_unit_update_and_gdpr_file(sdk: Sdk, acs: CampaignSandbox) -> None:
    pkey = acs.seed("profile", [PERSON])[0]["PKey"]
    org_unit = sdk.call("updateProfileOrgUnit", pkey, "@unit")
    assert (org_unit.ok, org_unit.status) == (False, 501)
    # getGDPRDataFile does not check the status: it resolves with the sandbox's 501 body, which says why.
    data = ok(sdk.call("getGDPRDataFile", acs.base_url + "privacy/privacyTool/@x/secret", "r1"))
    assert data["code"] == 501
    assert "does not model" in data["message"]


def test_the_sdk_triggers_an_import_and_follows_it(make_sdk: Any, acs: CampaignSandbox, tmp_path: Any) -> None:
    acs.reset(SandboxConfig(**FIDELITY_CONFIG, sftp_root=str(tmp_path)))
    acs.import_folder.mkdir(parents=True)
    (acs.import_folder / "sdk-1_part0001.csv").write_text("externalId;lastName\nc-9;Noether\n", encoding="utf-8")
    sdk = make_sdk()  # after the reset: a token it knows
    workflow = ok(sdk.call("getWorkflow", "WKF_D365_IMPORT_PROFILE"))
    href = workflow["activities"]["activity"]["signal1"]["trigger"]["href"]
    parameters = {"batch": "sdk-1", "fileNames": "sdk-1_part0001.csv", "rowCount": 1}
    ok(sdk.call("triggerSignalActivity", href, {"source": "fidelity", "parameters": parameters}))
    assert ok(sdk.call("getWorkflow", "WKF_D365_IMPORT_PROFILE"))["state"] == "finished"
    assert [p["lastName"] for p in acs.rows("profile")] == ["Noether"]
    assert sdk.call("controlWorkflow", "WKF_D365_IMPORT_PROFILE", "start").status == 200

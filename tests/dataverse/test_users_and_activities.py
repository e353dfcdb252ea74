"""Who writes: the application user, named Dynamics users, owners, impersonation; the activitypointers view;
the per-request latency knob."""

from __future__ import annotations

import time
import uuid

from sandbox.dataverse import DataverseSandbox, users
from tests.fixtures.dataverse import Api


def test_who_am_i_is_the_application_user_listed_in_systemusers(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    me = dv_api.get("WhoAmI").json()["UserId"]
    listed = dv_api.get("systemusers?$select=fullname,applicationid,accessmode").json()["value"]

    assert me == dataverse_sandbox.application_user_id == users.app_user_id(dataverse_sandbox.client_id)
    by_id = {u["systemuserid"]: u for u in listed}
    assert by_id[me]["applicationid"] == dataverse_sandbox.client_id and by_id[me]["accessmode"] == 4
    named = {u["fullname"] for u in listed if u["applicationid"] is None}
    assert named == {"Dana Marketing", "Sam Sales", "Alex Service"}
    refused = dv_api.post("systemusers", {"firstname": "New"})
    assert refused.status_code == 501


def test_the_writer_is_recorded_and_owns_what_it_creates(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    me = dataverse_sandbox.application_user_id
    made = dv_api.post("contacts", {"lastname": "Mine"}, Prefer="return=representation").json()
    by_dana = dataverse_sandbox.create("contacts", {"lastname": "Hers"})
    by_sam = dataverse_sandbox.create("contacts", {"lastname": "His"}, as_user="sam.sales@example.com")
    dataverse_sandbox.update("contacts", made["contactid"], {"lastname": "Touched"}, as_user="alex.service")

    assert (made["_createdby_value"], made["_modifiedby_value"], made["_ownerid_value"]) == (me, me, me)
    dana = dataverse_sandbox.get("contacts", by_dana)
    assert dana is not None and dana["_createdby_value"] == dana["_ownerid_value"] == users.DEFAULT_USER.systemuserid
    assert dataverse_sandbox.get("contacts", by_sam)["_createdby_value"] == users.NAMED_USERS[1].systemuserid  # type: ignore[index]
    touched = dataverse_sandbox.get("contacts", made["contactid"])
    assert touched is not None and touched["_modifiedby_value"] == users.NAMED_USERS[2].systemuserid
    assert touched["_createdby_value"] == me


def test_owner_binds_to_a_systemuser_and_teams_are_not_modelled(
    dataverse_sandbox: DataverseSandbox, dv_api: Api
) -> None:
    dana = users.DEFAULT_USER.systemuserid
    contact = dataverse_sandbox.create("contacts", {"lastname": "Owned"})

    task = dv_api.post(
        "tasks",
        {
            "subject": "Follow up",
            "ownerid@odata.bind": f"/systemusers({dana})",
            "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})",
        },
    )
    ghost = dv_api.post("tasks", {"subject": "x", "ownerid@odata.bind": f"/systemusers({uuid.uuid4()})"})
    team = dv_api.post("tasks", {"subject": "x", "ownerid@odata.bind": f"/teams({uuid.uuid4()})"})

    assert task.status_code == 204
    task_id = task.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    row = dataverse_sandbox.get("tasks", task_id)
    assert row is not None and row["_ownerid_value"] == dana
    assert row["_createdby_value"] == dataverse_sandbox.application_user_id
    assert ghost.status_code == 404 and team.status_code == 501


def test_impersonation_with_mscrmcallerid(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dana = users.DEFAULT_USER.systemuserid

    made = dv_api.post("contacts", {"lastname": "For Dana"}, MSCRMCallerID=dana, Prefer="return=representation").json()
    unknown = dv_api.post("contacts", {"lastname": "x"}, MSCRMCallerID=str(uuid.uuid4()))

    assert (made["_createdby_value"], made["_modifiedonbehalfby_value"]) == (
        dana,
        dataverse_sandbox.application_user_id,
    )
    assert unknown.status_code == 404


def test_activitypointers_show_every_activity_of_a_contact(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    contact = dataverse_sandbox.create("contacts", {"lastname": "Timeline"})
    other = dataverse_sandbox.create("contacts", {"lastname": "Other"})
    task = dataverse_sandbox.create(
        "tasks", {"subject": "Call back", "regardingobjectid_contact_task@odata.bind": f"/contacts({contact})"}
    )
    event = dataverse_sandbox.create(
        "new_campaignemailevents",
        {"subject": "Opened", "regardingobjectid_contact_new_campaignemailevent@odata.bind": f"/contacts({contact})"},
    )
    dataverse_sandbox.create(
        "tasks", {"subject": "Not this one", "regardingobjectid_contact_task@odata.bind": f"/contacts({other})"}
    )

    timeline = dv_api.get(
        "activitypointers?$select=activityid,activitytypecode,subject,_regardingobjectid_value"
        f"&$filter=_regardingobjectid_value eq {contact}&$orderby=subject"
    ).json()["value"]
    one = dv_api.get(f"activitypointers({event})?$select=subject").json()

    assert [(a["activityid"], a["activitytypecode"], a["subject"]) for a in timeline] == [
        (task, "task", "Call back"),
        (event, "new_campaignemailevent", "Opened"),
    ]
    assert all(a["_regardingobjectid_value"] == contact for a in timeline)
    assert one["subject"] == "Opened"
    paged = dv_api.get("activitypointers?$select=subject", Prefer="odata.maxpagesize=2").json()
    assert (
        len(paged["value"]) == 2
        and dv_api.get(paged["@odata.nextLink"], Prefer="odata.maxpagesize=2").json()["value"][0]["subject"]
    )
    create = dv_api.post("activitypointers", {"subject": "x"})
    assert create.status_code == 400
    assert (
        create.json()["error"]["message"] == "The 'Create' method does not support entities of type 'activitypointer'."
    )
    dataverse_sandbox.delete("tasks", task)
    assert dv_api.get(f"activitypointers({task})").status_code == 404


def test_latency_is_added_to_web_api_answers_only(dataverse_sandbox: DataverseSandbox, dv_api: Api) -> None:
    dv_api.get("WhoAmI")  # connection and handshake before measuring
    dataverse_sandbox.set_latency(150)

    started = time.perf_counter()
    dv_api.get("WhoAmI")
    slow = time.perf_counter() - started
    token_started = len(dataverse_sandbox.requests())
    dv_api.session.post(
        f"{dataverse_sandbox.authority_host}/{dataverse_sandbox.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": dataverse_sandbox.client_id,
            "client_secret": dataverse_sandbox.client_secret,
            "scope": f"{dataverse_sandbox.url}/.default",
        },
        timeout=10,
    )

    assert slow >= 0.15  # a lower bound only: never a speed assertion
    assert dataverse_sandbox.requests()[token_started - 1]["latency_ms"] == 150
    assert "latency_ms" not in dataverse_sandbox.requests()[-1]  # the token endpoint answers at once
    dv_api.session.post(dataverse_sandbox.url + "/_control/latency", json={"ms": 0}, timeout=10)
    assert dataverse_sandbox.stats()["latency_ms"] == 0

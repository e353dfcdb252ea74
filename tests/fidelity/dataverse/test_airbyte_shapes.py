"""The calls Airbyte's source-microsoft-dataverse (PyPI airbyte-source-microsoft-dataverse 1.0.2) makes, shaped as it
makes them with plain `requests`: token, connection check, discovery with DateTimeBehavior in a $batch, stream
metadata, incremental reads with nextLink parameters and the delta token. Airbyte itself is not installed here
(a benchmark helper runs it); these requests mirror its source."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from sandbox.dataverse import DataverseSandbox


@pytest.fixture
def airbyte(dataverse_sandbox: DataverseSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Headers as Airbyte's Oauth2Authenticator builds them, from the client-credentials token request it sends."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dataverse_sandbox.ca_path))  # Airbyte calls requests with defaults
    token = requests.post(
        f"{dataverse_sandbox.authority_host}/{dataverse_sandbox.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": dataverse_sandbox.client_id,
            "client_secret": dataverse_sandbox.client_secret,
            "scope": f"{dataverse_sandbox.url}/.default",
        },
        timeout=10,
    ).json()["access_token"]
    yield {"Authorization": f"Bearer {token}"}


def test_check_connection_gets_the_service_root(dataverse_sandbox: DataverseSandbox, airbyte: dict[str, str]) -> None:
    response = requests.get(dataverse_sandbox.url + "/api/data/v9.2/" + "", headers=airbyte, timeout=10)

    response.raise_for_status()


def test_discover_and_datetime_behaviors_in_a_batch(
    dataverse_sandbox: DataverseSandbox, airbyte: dict[str, str]
) -> None:
    discovered = requests.get(
        dataverse_sandbox.url + "/api/data/v9.2/EntityDefinitions"
        "?$select=LogicalName,EntitySetName,PrimaryIdAttribute,CanChangeTrackingBeEnabled,ChangeTrackingEnabled"
        "&$expand=Attributes($select=LogicalName,AttributeType)",
        headers=airbyte,
        timeout=10,
    ).json()
    with_dates = [
        e["LogicalName"] for e in discovered["value"] if any(a["AttributeType"] == "DateTime" for a in e["Attributes"])
    ]
    boundary = f"batch_{uuid.uuid4()}"
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET /api/data/v9.2/EntityDefinitions(LogicalName='{name}')/Attributes/"
        "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata?$select=LogicalName,DateTimeBehavior HTTP/1.1\r\n"
        "Accept: application/json\r\n\r\n"
        for name in with_dates
    ]
    response = requests.post(
        dataverse_sandbox.url + "/api/data/v9.2/$batch",
        headers={**airbyte, "Content-Type": f'multipart/mixed; boundary="{boundary}"'},
        data="".join(parts) + f"--{boundary}--\r\n",
        timeout=30,
    )
    response.raise_for_status()

    # Airbyte's parser: split on the boundary, then MIME headers / HTTP status and headers / JSON body.
    found = re.search(r"boundary=([^\s;]+)", response.headers["Content-Type"])
    assert found is not None
    behaviors: dict[str, dict[str, str]] = {}
    pieces = [p for p in response.text.split(f"--{found.group(1).strip(chr(34))}") if p.strip() not in ("", "--")]
    for name, piece in zip(with_dates, pieces, strict=True):
        sections = re.split(r"(?:\r\n\r\n|\n\n)", piece, maxsplit=2)
        assert " 200 " in sections[1].strip().split("\r\n")[0]
        body = json.loads(sections[2].strip())
        behaviors[name] = {a["LogicalName"]: a["DateTimeBehavior"]["Value"] for a in body["value"]}
    assert {"contact", "task", "new_loyaltycard"} <= set(with_dates)
    assert behaviors["contact"]["birthdate"] == "DateOnly"
    assert behaviors["new_loyaltycard"]["new_validuntil"] == "DateOnly"
    assert behaviors["contact"]["modifiedon"] == "UserLocal"
    contact = next(e for e in discovered["value"] if e["LogicalName"] == "contact")
    assert contact["CanChangeTrackingBeEnabled"]["Value"] and contact["ChangeTrackingEnabled"]
    assert {a["AttributeType"] for a in contact["Attributes"]} <= {
        "Uniqueidentifier",
        "DateTime",
        "BigInt",
        "Lookup",
        "Owner",
        "State",
        "Status",
        "String",
        "Picklist",
        "Boolean",
    }


def test_incremental_stream_with_next_links_and_the_delta_token(
    dataverse_sandbox: DataverseSandbox, airbyte: dict[str, str]
) -> None:
    dataverse_sandbox.seed_contacts(25)
    base = dataverse_sandbox.url + "/api/data/v9.2/"
    stream_path = requests.get(
        base + "EntityDefinitions(LogicalName='contact')?$select=EntitySetName", headers=airbyte, timeout=10
    ).json()["EntitySetName"]
    headers = {
        **airbyte,
        "Cache-Control": "no-cache",
        "OData-Version": "4.0",
        "Content-Type": "application/json",
        "Prefer": "odata.track-changes,odata.maxpagesize=10",
    }

    def read(params: dict[str, str]) -> tuple[list[dict], str | None]:
        rows: list[dict] = []
        delta: str | None = None
        while True:
            body = requests.get(base + stream_path, params=params, headers=headers, timeout=30).json()
            rows += body["value"]
            if "@odata.deltaLink" in body:
                delta = dict(parse_qsl(urlsplit(body["@odata.deltaLink"]).query))["$deltatoken"]
            if "@odata.nextLink" not in body:
                return rows, delta
            params = dict(parse_qsl(urlsplit(body["@odata.nextLink"]).query))  # Airbyte's next_page_token

    first, token = read({})
    changed = first[3]["contactid"]
    dataverse_sandbox.update("contacts", changed, {"lastname": "Changed"})
    dataverse_sandbox.delete("contacts", first[4]["contactid"])
    second, _ = read({"$deltatoken": token or ""})

    assert len(first) == 25 and token
    assert [r["contactid"] for r in second if "reason" not in r] == [changed]
    assert [r["id"] for r in second if r.get("reason") == "deleted"] == [first[4]["contactid"]]
    assert all("modifiedon" in r for r in second if "reason" not in r)  # Airbyte's cursor field

"""Incremental ingress: changed contacts through the real flow, against the bound its parallelism sets.

Both sandboxes and Azurite run in their own processes; the connector (settings, services, the ingress
flow) runs in this one, as a Function instance would. After an initial load (no added latency), N contacts
change in Dynamics and Campaign gets 30 ms added to every call; the increment's records per second are
compared with
- the bound of the configured parallelism: CAMPAIGN_MAX_PARALLEL / latency (each changed record known to
  the index costs one PATCH), target at least 0.85 of it;
- a naive sequential sync measured in the same run on a sample (look the key up, then PATCH: two calls per
  record, one at a time), target at least 6x.
And the API economy of the same run: Campaign calls per changed record (at most 1.0), then an idle tick in
the warm process: no Campaign call and one Dataverse request per table.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from typing import Any

from bench import cores
from bench.context import Context
from bench.figures import Figure, at_least, at_most, quick_floor
from bench.services import Service
from sandbox.azurite import Azurite
from shared.clients.campaign import KeyFilter
from shared.flows.ingress import INGRESS
from shared.settings import load_settings
from shared.wiring import Services, build_services

NAME = "ingress"
PARALLEL = 8
LATENCY = 0.03
REPO_EXAMPLE = "config/sync.example.json"


def run(ctx: Context) -> list[Figure]:
    changes = 1_000 if ctx.quick else 10_000
    sample = 100 if ctx.quick else 1_000
    dataverse = ctx.dataverse(changes)
    campaign = ctx.campaign()
    with Azurite.start() as azurite:
        cores.place(azurite.process.pid)
        svc = connector(dataverse, campaign, azurite.connection_string)
        ctx.log(f"ingress: initial load of {changes:,} contacts")
        [first] = INGRESS.run(svc, ["contacts"])
        if first.outcome != "completed":
            raise RuntimeError(f"initial load: {first.outcome} {first.reason}")

        ctx.log(f"ingress: {changes:,} contacts change in Dynamics")
        ids = [row["contactid"] for row in dataverse.control("GET", f"rows/contacts?limit={changes}")]
        for number, contact in enumerate(ids):
            dataverse.control("PATCH", f"rows/contacts/{contact}", {"lastname": f"Changed{number}"})
        campaign.control("POST", "faults", {"action": "stall", "seconds": LATENCY, "path": "/campaign/", "times": None})
        campaign.control("DELETE", "requests")
        started = time.monotonic()
        [increment] = INGRESS.run(svc, ["contacts"])
        elapsed = time.monotonic() - started
        if increment.outcome != "completed" or increment.counts.get("updated") != changes:
            raise RuntimeError(f"increment: {increment.outcome} {increment.counts} {increment.reason}")
        calls = api_calls(campaign)
        rate = changes / elapsed

        ctx.log(f"ingress: naive lookup-then-write on {sample:,} records")
        naive_rate = naive(svc, ids[:sample])

        campaign.control("DELETE", "requests")
        dataverse.control("DELETE", "requests")
        [idle] = INGRESS.run(svc, ["contacts"])
        idle_campaign = len(campaign.control("GET", "requests"))  # IMS included
        idle_dataverse = sum(1 for r in dataverse.control("GET", "requests") if "/api/data/" in r.get("path", ""))
    bound = PARALLEL / LATENCY
    return [
        Figure(NAME, f"increment of {changes:,} changed contacts", rate, "records/s", bound,
               f"parallelism {PARALLEL} / {LATENCY * 1000:.0f} ms",
               quick_floor(at_least(0.85), at_least(0.5), quick=ctx.quick), note=f"{elapsed:.1f} s"),
        Figure(NAME, "increment vs naive lookup-then-write", rate, "records/s", naive_rate,
               f"naive, {sample:,}-record sample", at_least(6.0)),
        Figure(NAME, "Campaign calls per changed record (index knows it)", len(calls) / changes, "calls",
               target=at_most(1.0), note=f"{len(calls):,} calls"),
        Figure(NAME, "idle tick: Campaign calls (IMS included)", idle_campaign, "calls", target=at_most(0),
               note=f"outcome {idle.outcome}"),
        Figure(NAME, "idle tick: Dataverse requests per table", idle_dataverse, "requests", target=at_most(1)),
    ]  # fmt: skip


def connector(dataverse: Service, campaign: Service, storage: str) -> Services:
    return build_services(load_settings(settings_env(dataverse, campaign, storage)))


def settings_env(dataverse: Service, campaign: Service, storage: str) -> dict[str, str]:
    """App settings for the connector against sandboxes in their own processes (contacts mapping only)."""
    dv, acs = dataverse.info, campaign.info
    root = urllib.parse.urlsplit(acs["base_url"])
    with open(REPO_EXAMPLE, encoding="utf-8") as handle:
        document = json.load(handle)
    document["ingress"]["tables"] = [t for t in document["ingress"]["tables"] if t["name"] == "contacts"]
    prefix = "bench" + uuid.uuid4().hex[:8]
    env = {
        "DATAVERSE_URL": dv["url"], "DATAVERSE_TENANT_ID": dv["tenant_id"], "DATAVERSE_CLIENT_ID": dv["client_id"],
        "DATAVERSE_CLIENT_SECRET": dv["client_secret"], "DATAVERSE_AUTHORITY_HOST": dv["authority_host"],
        "DATAVERSE_CA_BUNDLE": dv["ca_path"], "CAMPAIGN_BASE_URL": f"{root.scheme}://{root.netloc}",
        "CAMPAIGN_ORGANIZATION": root.path.strip("/").split("/")[0], "CAMPAIGN_IMS_URL": f"{root.scheme}://{root.netloc}",
        "CAMPAIGN_CLIENT_ID": acs["client_id"], "CAMPAIGN_CLIENT_SECRET": acs["client_secret"],
        "CAMPAIGN_MAX_PARALLEL": str(PARALLEL), "STATE_STORAGE_CONNECTION_STRING": storage,
        "STATE_TABLE_PREFIX": prefix, "STATE_CONTAINER": prefix, "SYNC_CONFIG": json.dumps(document),
    }  # fmt: skip
    return env


def naive(svc: Services, ids: list[str]) -> float:
    """What a simple sync does per changed record: find it by its key, then PATCH it, one at a time."""
    resource = svc.campaign.resource("profile")
    key = KeyFilter("byExternalId", "externalId_parameter")
    started = time.monotonic()
    for number, contact in enumerate(ids):
        href = resource.find_href(key, contact)
        assert href is not None
        resource.patch(href, {"lastName": f"Naive{number}"})
    return len(ids) / (time.monotonic() - started)


def api_calls(campaign: Service) -> list[dict[str, Any]]:
    return [r for r in campaign.control("GET", "requests") if "/ims/" not in r.get("path", "")]

"""Egress benchmark: Campaign email events onto the Dynamics timeline, against one request per event.

The Dataverse sandbox (20 ms added to every Web API request) and the Campaign sandbox (its SFTP root served by a
real sshd) run in their own processes, Azurite in its own. The Campaign sandbox delivers to synced profiles and
exports its logs (about `--events` events in two files); egress provisions its tables, then runs once over the
files. Baseline, in the same process on the same sandboxes: the same events, parsed and shaped the same way, each
row written by its own create-if-absent request, one after the other (on a sample: it is slow by design).

Figures: events/s of the flow against the baseline (target at least 50x per event), and Dynamics requests per 500
events of the flow run (at most 1).

    python -m bench.egress [--events 100000] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import cores
from bench.context import Context
from bench.figures import Figure, at_least, at_most, quick_floor, render
from bench.services import Service
from sandbox.azurite import Azurite
from sandbox.sshd import SshdServer
from shared.core.activities import Writes, decide_event
from shared.core.delimited import Dialect, Record, read_records
from shared.core.events import ColumnLayout, EmailEvent
from shared.flows import egress_provision
from shared.flows.egress import EGRESS, resolve_shape
from shared.wiring import Services, build_services, load_configuration

NAME = "egress"
LATENCY_MS = 20
EVENTS_PER_PROFILE = 1.65  # a delivery's logs at the sandbox's default rates: the send, ~0.43 opens, ~0.22 clicks
TABLES = {"send": "new_campaignsends", "open": "new_campaignopens", "click": "new_campaignclicks",
          "bounce": "new_campaignbounces"}  # fmt: skip


def run(ctx: Context) -> list[Figure]:
    events = 10_000 if ctx.quick else 100_000
    return measure(events, baseline_sample=400 if ctx.quick else 2000, log=ctx.log, quick=ctx.quick)


def measure(events: int, *, baseline_sample: int, log: Any = print, quick: bool = False) -> list[Figure]:
    profiles = math.ceil(events / EVENTS_PER_PROFILE)
    with tempfile.TemporaryDirectory(prefix="bench-egress-") as work, SshdServer() as sshd, Azurite.start() as azurite:
        cores.place(sshd.pid)
        cores.place(azurite.process.pid)
        root = sshd.root / "egress"
        root.mkdir()
        log(f"egress: starting the sandboxes ({profiles:,} contacts), {LATENCY_MS} ms per Dynamics request")
        with _dataverse(profiles) as dv, _campaign(root) as acs:
            contact_ids = [row["contactid"] for row in dv.control("GET", f"rows/contacts?limit={profiles}")]
            for start in range(0, len(contact_ids), 10_000):  # the profiles ingress would have made
                acs.control("POST", "seed/profile", {"rows": [{"externalId": i, "email": f"p{n}@example.org"}
                            for n, i in enumerate(contact_ids[start : start + 10_000], start)]})  # fmt: skip
            delivered = acs.control("POST", "deliveries", {"count": len(contact_ids), "seed": 1})
            async_bounces = sum(1 for e in delivered["events"] if e["asynchronous"])
            del delivered
            exported = acs.control("POST", "exports/logs")
            total = sum(exported["rows"].values())
            log(f"egress: {total:,} events exported in {', '.join(exported['files'].values())}")
            svc = _services(dv, acs, azurite, sshd, root, Path(work))
            egress_provision.apply(egress_provision.plan(svc.config.egress, svc.dataverse), svc.dataverse)
            dv.control("POST", "latency", {"ms": LATENCY_MS})

            sample = _sample(root / "d365_loads" / "exports", exported["files"].values(), baseline_sample)
            log(f"egress: baseline, one request per row, {len(sample):,} events")
            baseline_seconds, baseline_requests = _baseline(svc, sample)

            dv.control("DELETE", "requests")
            log(f"egress: the flow over {total:,} events")
            started = time.perf_counter()
            [summary] = EGRESS.run(svc)
            flow_seconds = time.perf_counter() - started
            requests = len(dv.control("GET", "requests"))
    if summary.outcome != "completed":
        raise RuntimeError(f"the egress run ended {summary.outcome}: {summary.reason}")
    counts = summary.counts
    written = counts.get("created", 0) + counts.get("unchanged", 0)
    flow_rate, baseline_rate = total / flow_seconds, len(sample) / baseline_seconds
    note = (f"{total:,} events ({written:,} activities, {counts.get('tasks_created', 0):,} tasks, "
            f"{counts.get('bounces_soft', 0) + counts.get('bounces_ignored', 0):,} soft/ignored bounces skipped; "
            f"{async_bounces} async bounces not yet due) in {flow_seconds:.1f} s; baseline {len(sample):,} events, "
            f"{baseline_requests:,} requests in {baseline_seconds:.1f} s")  # fmt: skip
    return [
        Figure(NAME, "events per second (flow vs one request per event)", round(flow_rate, 1), "events/s",
               round(baseline_rate, 1), "one request per event",
               quick_floor(at_least(50.0), at_least(20.0), quick=quick), note=note),
        Figure(NAME, "Dynamics requests per 500 events", round(requests * 500 / total, 3), "requests",
               target=at_most(1.0), note=f"{requests} requests for {total:,} events"),
    ]  # fmt: skip


def _dataverse(contacts: int) -> Service:
    return Service("dataverse sandbox", [sys.executable, "-m", "sandbox.dataverse", "--contacts", str(contacts)])


def _campaign(sftp_root: Path) -> Service:
    return Service("campaign sandbox", [sys.executable, "-m", "sandbox.campaign", "--port", "0", "--sftp-root",
                                        str(sftp_root)])  # fmt: skip


def _services(dv: Service, acs: Service, azurite: Azurite, sshd: SshdServer, root: Path, work: Path) -> Services:
    d, a = dv.info, acs.info
    config = json.loads((Path(__file__).resolve().parent.parent / "config" / "sync.example.json").read_text())
    config["ingress"]["tables"] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    config["egress"] = {"enabled": True, "events": dict.fromkeys(TABLES, True), "activityTables": TABLES,
                        "followUpTasks": {"onClick": True, "onBounce": True, "dueInDays": 2}}  # fmt: skip
    env = {
        "DATAVERSE_URL": d["url"], "DATAVERSE_TENANT_ID": d["tenant_id"], "DATAVERSE_CLIENT_ID": d["client_id"],
        "DATAVERSE_CLIENT_SECRET": d["client_secret"], "DATAVERSE_AUTHORITY_HOST": d["authority_host"],
        "DATAVERSE_CA_BUNDLE": d["ca_path"],
        "CAMPAIGN_BASE_URL": a["base_url"].split("/acme/")[0], "CAMPAIGN_ORGANIZATION": "acme",
        "CAMPAIGN_IMS_URL": a["base_url"].split("/acme/")[0], "CAMPAIGN_CLIENT_ID": a["client_id"],
        "CAMPAIGN_CLIENT_SECRET": a["client_secret"],
        "STATE_STORAGE_CONNECTION_STRING": azurite.connection_string, "STATE_TABLE_PREFIX": "b" + uuid.uuid4().hex[:8],
        "SFTP_HOST": sshd.host, "SFTP_PORT": str(sshd.port), "SFTP_USERNAME": sshd.username,
        "SFTP_PRIVATE_KEY": sshd.client_private_key, "SFTP_HOST_KEY": sshd.host_public_key,
        "SFTP_EXPORT_FOLDER": str(root / "d365_loads" / "exports"),
        "SFTP_ARCHIVE_FOLDER": str(root / "d365_loads" / "archive"),
        "SYNC_CONFIG": json.dumps(config),
    }  # fmt: skip
    return build_services(*load_configuration(env))


def _sample(folder: Path, names: Any, size: int) -> list[EmailEvent]:
    """The first `size` events of the exported files, read from the SFTP root, renamed so that their rows differ
    from the flow's (the baseline must create, as the flow does)."""
    layout, out = ColumnLayout(), []
    for name in names:
        with (folder / name).open("rb") as handle:
            for item in read_records(iter(lambda: handle.read(1 << 20), b""), Dialect(";")):
                if isinstance(item, Record):
                    event = layout.parse(item.values, name, item.line)
                    if isinstance(event, EmailEvent):
                        out.append(dataclasses.replace(event, event_id=f"baseline-{event.event_id}"))
                if len(out) >= size:
                    return out
    return out


def _baseline(svc: Services, events: list[EmailEvent]) -> tuple[float, int]:
    shape = resolve_shape(svc.config.egress, svc.dataverse)
    started = time.perf_counter()
    requests = 0
    for event in events:
        decision = decide_event(event, shape)
        if isinstance(decision, Writes):
            for write in decision.writes:
                svc.dataverse.create_if_absent(write.entity_set, write.id, write.body)
                requests += 1
    return time.perf_counter() - started, requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.egress", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=None, help="events to export (default 100,000; quick 10,000)")
    parser.add_argument("--baseline", type=int, default=None, help="events in the baseline's sample")
    parser.add_argument("--quick", action="store_true", help="the reduced variant")
    args = parser.parse_args(argv)
    cores.claim()
    events = args.events or (10_000 if args.quick else 100_000)
    sample = args.baseline or (400 if args.quick else 2000)
    figures = measure(events, baseline_sample=sample, quick=args.quick,
                      log=lambda m: print(f"bench: {m}", file=sys.stderr, flush=True))  # fmt: skip
    print(render(figures, f"egress, {events:,} events, {LATENCY_MS} ms per Dynamics request"))
    return 0 if all(f.status == "pass" for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Opt-out latency: from a Dynamics update to the Campaign profile changed, through the real path.

Each change is a Dynamics user's update of a contact's `donotbulkemail` in the Dataverse sandbox (its own
process), which fires its webhook after the commit; the webhook reaches the connector's HTTP function behind
the local stand-in of the host's front door (function key checked), which queues it on Azurite; the queue pump
(host.json's polling, batch and retry settings) runs the queue-triggered processor, which PATCHes the profile in
the Campaign sandbox (its own process, every call delayed by --latency-ms). A change's latency ends when the
processor returns, the PATCH answered. Prints the median, p95, p99 and max, and checks every profile.

    .venv/bin/python -m bench.optout [--changes 500] [--rate 20] [--latency-ms 20] [--quick]

Target: p99 under 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import requests

import function_app
import shared.wiring
from bench import cores
from bench.figures import Figure, at_most
from sandbox.azurite import Azurite
from sandbox.functions_host import LocalHttpHost, http_routes
from sandbox.queue_pump import QueueOptions, QueuePump
from shared.core.webhook import decode_message
from shared.entrypoints.optout import handle_message
from shared.flows.ingress import INGRESS
from shared.settings import load_settings
from shared.wiring import build_services
from tests.e2e.optout_harness import document

KEY = "bench-function-key"
TARGET_P99 = 5.0


@contextlib.contextmanager
def sandbox_process(module: str, *args: str) -> Iterator[dict[str, Any]]:
    """`python -m <module> --port 0 ...` in its own process; yields the settings line it prints."""
    command = [sys.executable, "-m", module, "--port", "0", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{module} did not start")
        cores.place(process.pid)
        yield json.loads(line)
    finally:
        process.terminate()
        process.wait(timeout=20)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(changes: int, rate: float, latency_ms: float) -> dict[str, Any]:
    """One run: `changes` Dynamics updates at `rate` per second; latencies to Campaign, what was lost or wrong."""
    args = argparse.Namespace(rate=rate, latency_ms=latency_ms)
    with (
        Azurite.start() as azurite,
        sandbox_process("sandbox.dataverse", "--contacts", str(changes)) as dv,
        sandbox_process("sandbox.campaign") as acs,
    ):
        cores.place(azurite.process.pid)
        dv_control, acs_control = dv["control_url"], acs["control_url"]
        dv_session = requests.Session()
        dv_session.verify = dv["ca_path"]  # the sandbox's own CA
        dv_session.trust_env = False
        root, organization = acs["base_url"].rstrip("/").rsplit("/campaign", 1)[0].rsplit("/", 1)
        queue = "bench" + uuid.uuid4().hex[:8]
        env = {
            "DATAVERSE_URL": dv["url"], "DATAVERSE_TENANT_ID": dv["tenant_id"], "DATAVERSE_CLIENT_ID": dv["client_id"],
            "DATAVERSE_CLIENT_SECRET": dv["client_secret"], "DATAVERSE_AUTHORITY_HOST": dv["authority_host"],
            "DATAVERSE_CA_BUNDLE": dv["ca_path"], "CAMPAIGN_BASE_URL": root, "CAMPAIGN_ORGANIZATION": organization,
            "CAMPAIGN_IMS_URL": root, "CAMPAIGN_CLIENT_ID": acs["client_id"],
            "CAMPAIGN_CLIENT_SECRET": acs["client_secret"],
            "STATE_STORAGE_CONNECTION_STRING": azurite.connection_string,
            "STATE_TABLE_PREFIX": "b" + uuid.uuid4().hex[:8], "SYNC_CONFIG": json.dumps(document("toCampaign")),
            "OPTOUT_QUEUE": queue,
        }  # fmt: skip
        svc = build_services(load_settings(env))
        shared.wiring._services = svc  # the functions use these services
        [load] = INGRESS.run(svc, ["contacts"])
        assert load.outcome == "completed", load.reason
        contacts = dv_session.get(dv_control + "rows/contacts", params={"limit": changes}, timeout=60).json()
        if args.latency_ms:
            requests.post(acs_control + "faults", json={"action": "stall", "seconds": args.latency_ms / 1000,
                                                        "times": None}, timeout=10).raise_for_status()  # fmt: skip

        done: dict[str, float] = {}
        lock = threading.Lock()

        def timed(msg: Any) -> None:
            handle_message(msg)
            contact = decode_message(msg.get_body().decode()).contact
            with lock:
                done.setdefault(contact, time.monotonic())

        with LocalHttpHost(http_routes(function_app.app), [KEY]) as host:
            pump = QueuePump(azurite.connection_string, queue, timed, QueueOptions.from_host_json())
            pump.start(min_interval=0.1)  # the host's minimum polling interval
            dv_session.post(dv_control + "webhooks", json={"url": host.url("optout/webhook"), "messages": ["Update"],
                                                         "filtering_attributes": ["donotbulkemail"],
                                                         "auth": "WebhookKey", "value": KEY}, timeout=10)  # fmt: skip
            started: dict[str, float] = {}
            wanted: dict[str, bool] = {}
            began = time.monotonic()
            for n, row in enumerate(contacts[:changes]):
                due = began + n / args.rate
                time.sleep(max(0.0, due - time.monotonic()))
                contact = row["contactid"]
                wanted[contact] = not row["donotbulkemail"]
                started[contact] = time.monotonic()
                dv_session.patch(dv_control + f"rows/contacts/{contact}", json={"donotbulkemail": wanted[contact]},
                              timeout=30).raise_for_status()  # fmt: skip
            deadline = time.monotonic() + 120
            while len(done) < len(started) and time.monotonic() < deadline:
                time.sleep(0.05)
            elapsed = time.monotonic() - began
            pump.stop()

        profiles = {p["externalId"]: p for p in requests.get(acs_control + "rows/profile", timeout=60).json()}
        wrong = [c for c, value in wanted.items() if profiles[c]["denyListEmail"] is not value]
        latencies = [done[c] - started[c] for c in started if c in done]
        return {"latencies": latencies, "missing": len(started) - len(latencies), "wrong": len(wrong),
                "elapsed": elapsed, "stats": pump.stats}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.optout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=500, help="Dynamics updates, one contact each")
    parser.add_argument("--rate", type=float, default=20.0, help="updates per second made in Dynamics")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every Campaign call")
    parser.add_argument("--quick", action="store_true", help="50 changes")
    args = parser.parse_args(argv)
    cores.claim()
    changes = 50 if args.quick else args.changes
    result = measure(changes, args.rate, args.latency_ms)
    latencies, missing, wrong, stats = result["latencies"], result["missing"], result["wrong"], result["stats"]
    p99 = percentile(latencies, 0.99) if latencies else float("inf")
    print(f"opt-out latency, Dynamics update -> Campaign profile changed ({changes} changes at {args.rate:g}/s, "
          f"Campaign +{args.latency_ms:g} ms per call)")  # fmt: skip
    print(f"  median {statistics.median(latencies):.3f} s   p95 {percentile(latencies, 0.95):.3f} s   "
          f"p99 {p99:.3f} s   max {max(latencies):.3f} s")  # fmt: skip
    print(f"  {len(latencies)} applied in {result['elapsed']:.1f} s; not applied: {missing}; profiles wrong: {wrong}; "
          f"pump: {stats.succeeded} ok, {stats.failed} failed, {stats.poisoned} poisoned")  # fmt: skip
    ok = p99 < TARGET_P99 and not missing and not wrong
    print(f"  target p99 < {TARGET_P99:g} s: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def run(ctx: Any) -> list[Figure]:
    """For `python -m bench`: 500 changes (50 with --quick) at 20/s, Campaign +20 ms."""
    changes = 50 if ctx.quick else 500
    ctx.log(f"optout: {changes} Dynamics opt-out changes through webhook, queue and processor")
    result = measure(changes, 20.0, 20.0)
    latencies = result["latencies"]
    return [
        Figure("optout", "latency, median", statistics.median(latencies), "s", note=f"{changes} changes at 20/s"),
        Figure("optout", "latency, p99", percentile(latencies, 0.99), "s", TARGET_P99, "bound", at_most(1.0)),
        Figure("optout", "changes not applied", result["missing"], "changes", target=at_most(0)),
        Figure("optout", "profiles left wrong", result["wrong"], "profiles", target=at_most(0)),
    ]


if __name__ == "__main__":
    raise SystemExit(main())

"""Throttle ceiling: Campaign writes from a thread pool against a request budget of R calls per window.

The Campaign sandbox runs in its own process with a budget (429 + Retry-After beyond R API calls in any
`window` seconds) and 30 ms added to every call (a stall rule: real calls are slower still). The connector's
CampaignClient (IMS token, Campaign classifier, HttpClient) creates profiles from CAMPAIGN_MAX_PARALLEL's
default of 8 threads for a fixed time. Figures: sustained writes/s against the budget R/window (target at least
0.9), the share of calls answered 429 (at most 1%), and failed writes (none). Measured with the learned rate
(PacingPolicy(learn_rate=True)); the full run also measures the gate alone (the shipped default) for comparison.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from bench.context import Context
from bench.figures import Figure, at_least, at_most
from bench.services import Service
from shared.clients.campaign import CampaignClient, build_campaign_client
from shared.http import PacingPolicy, RetryPolicy, build_session

NAME = "throttle"
PARALLEL = 8  # CAMPAIGN_MAX_PARALLEL's default
LATENCY = 0.03  # seconds added to every Campaign call
BUDGET = 1000  # calls ...
WINDOW = 10.0  # ... per window (seconds)
SCOPES = ["openid", "AdobeID", "campaign_sdk"]


def run(ctx: Context) -> list[Figure]:
    seconds = 20.0 if ctx.quick else 40.0
    variants = [("learned rate", PacingPolicy(learn_rate=True))]
    if not ctx.quick:
        variants.append(("gate only", PacingPolicy(learn_rate=False)))
    figures: list[Figure] = []
    for label, pacing in variants:
        campaign = ctx.campaign()
        ctx.log(f"throttle ({label}): {BUDGET} calls per {WINDOW:.0f} s, {PARALLEL} threads, {seconds:.0f} s")
        result = measure(campaign, pacing, seconds)
        campaign.stop()
        judged = label == "learned rate"
        figures += [
            Figure(NAME, f"{label}: sustained writes", result["rate"], "writes/s", BUDGET / WINDOW, "budget",
                   at_least(0.9) if judged else None, note=f"{result['ok']:,} writes in {seconds:.0f} s"),
            Figure(NAME, f"{label}: calls answered 429", result["share_429"], "%", 1.0, "bound",
                   at_most(1.0) if judged else None, note=f"{result['429']} of {result['calls']}"),
            Figure(NAME, f"{label}: failed writes", result["failed"], "writes", target=at_most(0) if judged else None),
        ]  # fmt: skip
    return figures


def measure(campaign: Service, pacing: PacingPolicy, seconds: float) -> dict[str, Any]:
    campaign.control("POST", "faults", {"action": "stall", "seconds": LATENCY, "path": "/campaign/", "times": None})
    client = connector_client(campaign, pacing)
    profiles = client.resource("profile")
    profiles.count()  # token and connection warm; before the budget, so it costs none of it
    campaign.control("POST", "budget", {"limit": BUDGET, "perSeconds": WINDOW})
    campaign.control("DELETE", "requests")
    numbers = itertools.count()
    lock = threading.Lock()
    done: list[float] = []
    failures: list[str] = []
    started = time.monotonic()
    end = started + seconds

    def write() -> None:
        while time.monotonic() < end:
            with lock:
                number = next(numbers)
            try:
                profiles.create({"externalId": f"bench-{number}", "email": f"bench.{number}@example.com"})
            except Exception as exc:  # counted: the target is that there is none
                with lock:
                    failures.append(type(exc).__name__)
                continue
            finished = time.monotonic()
            with lock:
                done.append(finished)

    threads = [threading.Thread(target=write, daemon=True) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 400)
    calls = [entry for entry in campaign.control("GET", "requests") if "/profile" in entry.get("path", "")]
    throttled = sum(1 for entry in calls if entry.get("status") == 429)
    ok = sum(1 for finished in done if finished <= end)  # a write still waiting at the end does not count
    return {
        "ok": ok,
        "rate": ok / seconds,
        "calls": len(calls),
        "429": throttled,
        "share_429": 100.0 * throttled / max(1, len(calls)),
        "failed": len(failures),
    }


def connector_client(campaign: Service, pacing: PacingPolicy) -> CampaignClient:
    info = campaign.info
    client = build_campaign_client(
        info["base_url"],
        info["ims_url"],
        info["client_id"],
        info["client_secret"],
        SCOPES,
        session=build_session(pool_size=PARALLEL),
        policy=RetryPolicy(),  # HTTP_MAX_RETRY_WAIT_SECONDS' default cap
    )
    # build_campaign_client takes no pacing yet: set it before the first request creates the host's learner.
    client.http.pacing = pacing
    return client

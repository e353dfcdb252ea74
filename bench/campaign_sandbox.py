"""Throughput of the sandbox for POST (create) and PATCH, through the product's CampaignClient.

    python -m bench.campaign_sandbox [--records 2000] [--threads 1 4] [--inprocess]

By default the sandbox runs in its own process (as in the demo), so client and server do not share
a GIL. Prints one JSON line per (verb, threads) with requests per second.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from sandbox.campaign.handle import CampaignSandbox
from shared.clients.campaign import CampaignClient, build_campaign_client
from shared.http import build_session


def _client(info: dict[str, str], pool: int) -> CampaignClient:
    return build_campaign_client(
        info["base_url"],
        info["ims_url"],
        info["client_id"],
        info["client_secret"],
        ["campaign_sdk"],
        session=build_session(pool_size=pool),
    )


def _timed(threads: int, count: int, work: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    if threads == 1:
        for i in range(count):
            work(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(count)))
    return count / (time.perf_counter() - started)


def _measure(client: CampaignClient, threads: int, records: int) -> list[dict[str, Any]]:
    profiles = client.resource("profile")
    prefix = f"b{threads}-{time.monotonic_ns()}-"
    hrefs: list[str] = [""] * records

    def create(i: int) -> None:
        hrefs[i] = profiles.create({"externalId": f"{prefix}{i}", "email": f"p{i}@example.com"}).href

    def patch(i: int) -> None:
        profiles.patch(hrefs[i], {"firstName": f"N{i}", "denyListEmail": i % 2 == 0})

    post_rate = _timed(threads, records, create)
    patch_rate = _timed(threads, records, patch)
    return [
        {"verb": "POST", "threads": threads, "records": records, "req_per_s": round(post_rate)},
        {"verb": "PATCH", "threads": threads, "records": records, "req_per_s": round(patch_rate)},
    ]


def run(info: dict[str, str], records: int, thread_counts: list[int]) -> list[dict[str, Any]]:
    results = []
    for threads in thread_counts:
        results.extend(_measure(_client(info, pool=max(threads, 4)), threads, records))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.campaign_sandbox", description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--inprocess", action="store_true", help="run the sandbox in this process")
    args = parser.parse_args(argv)

    if args.inprocess:
        with CampaignSandbox.start() as sandbox:
            info = {
                "base_url": sandbox.base_url,
                "ims_url": sandbox.ims_url,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
            }
            results = run(info, args.records, args.threads)
    else:
        server = subprocess.Popen([sys.executable, "-m", "sandbox.campaign"], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            info = json.loads(server.stdout.readline())
            results = run(info, args.records, args.threads)
        finally:
            server.terminate()
            server.wait(timeout=10)
    for line in results:
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())

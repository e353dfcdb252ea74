"""Measure the sandbox's page rate: rows/s reading 5000-row change-tracking pages of seeded contacts.

    python -m sandbox.dataverse.pagerate [--contacts 1000000] [--pages 40]

Prints the seeding time and two rates: over HTTPS with a plain requests client (JSON decoded, as a
real client pays) and the server's own work (generation, projection, JSON) without the network.
"""

from __future__ import annotations

import argparse
import json
import time

import requests

from sandbox.dataverse.server import DataverseSandbox
from sandbox.dataverse.webapi import Request

SELECT = "contactid,firstname,lastname,emailaddress1,telephone1,statecode,donotbulkemail,donotemail,modifiedon"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.dataverse.pagerate")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=40, help="5000-row pages to read")
    args = parser.parse_args(argv)
    with DataverseSandbox() as sandbox:
        started = time.perf_counter()
        sandbox.seed_contacts(args.contacts)
        seeded = time.perf_counter() - started

        session = requests.Session()
        session.trust_env = False
        session.verify = str(sandbox.ca_path)
        headers = {
            "Authorization": f"Bearer {sandbox.issue_token()}",
            "Accept": "application/json",
            "OData-Version": "4.0",
            "Prefer": "odata.track-changes,odata.maxpagesize=5000",
        }
        url: str | None = f"{sandbox.api_url}contacts?$select={SELECT}"
        rows, started = 0, time.perf_counter()
        for _ in range(args.pages):
            if url is None:
                break
            body = session.get(url, headers=headers, timeout=120).json()
            rows += len(body["value"])
            url = body.get("@odata.nextLink")
        https_rate = rows / (time.perf_counter() - started)

        assert sandbox.webapi is not None
        query, cookie_rows, started = f"$select={SELECT}", 0, time.perf_counter()
        prefer = {"prefer": "odata.track-changes,odata.maxpagesize=5000"}
        for _ in range(args.pages):
            response = sandbox.webapi.handle(Request("GET", "contacts", query, prefer))
            body = json.loads(response.body)
            cookie_rows += len(body["value"])
            following = body.get("@odata.nextLink")
            if following is None:
                break
            query = following.split("?", 1)[1]
        server_rate = cookie_rows / (time.perf_counter() - started)
    print(
        json.dumps(
            {
                "contacts": args.contacts,
                "seed_seconds": round(seeded, 4),
                "rows_read": rows,
                "https_rows_per_second": round(https_rate),
                "server_rows_per_second": round(server_rate),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

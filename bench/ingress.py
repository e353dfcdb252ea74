"""Ingress benchmark on the local stack: the flow against a naive baseline measured in the same run.

Baseline ("naive"): what a hand-written sync does without state, one record at a time: look the
record up by its custom key, then PATCH or POST. Measured on the same sandboxes, same data.
Product: the ingress flow (parallel writes, record index, payload hashes, checkpoints on Azurite).

Prints records/s of both and their ratio, then the Campaign calls of a re-run with nothing changed
(the naive sync repeats every call; the flow makes none).

    .venv/bin/python -m bench.ingress [--contacts 3000] [--parallel 8] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import time
import uuid

from sandbox.azurite import Azurite
from sandbox.campaign import CampaignSandbox, SandboxConfig
from sandbox.dataverse import DataverseSandbox
from shared.core.projection import project, record_key
from tests.e2e.conftest import make_stack
from tests.e2e.test_ingress import contacts_only


def naive_sync(stack, table) -> int:  # type: ignore[no-untyped-def]
    resource = stack.svc.campaign.resource(table.resource)
    calls = 0
    for page in stack.svc.dataverse.iter_changes(table.entity_set, table.source_attributes()):
        for row in page.rows:
            payload = project(row, table, full=True, source_types={}, target_types={})
            found = resource.find_by(table.lookup_filter, table.lookup_parameter, record_key(row, table))
            if found:
                resource.patch(found[0].href, payload)
            else:
                resource.create(payload)
            calls += 2
    return calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=20.0,
        help="added to every Campaign call; real calls take 100 ms and more (0: CPU cost only)",
    )
    args = parser.parse_args()
    with Azurite.start() as azurite, CampaignSandbox.start(SandboxConfig()) as acs, DataverseSandbox() as dv:
        dv.seed_contacts(args.contacts)

        def fresh_stack():  # type: ignore[no-untyped-def]
            acs.reset(SandboxConfig())
            if args.latency_ms:
                acs.fail(action="stall", seconds=args.latency_ms / 1000, times=None)
            return make_stack(dv, acs, azurite.connection_string, "b" + uuid.uuid4().hex[:8], contacts_only(),
                              DATAVERSE_PAGE_SIZE="1000", CAMPAIGN_MAX_PARALLEL=str(args.parallel))  # fmt: skip

        stack = fresh_stack()
        table = stack.table("contacts")
        started = time.perf_counter()
        naive_sync(stack, table)
        naive_seconds = time.perf_counter() - started
        acs.clear_requests()
        naive_sync(stack, table)
        naive_idle_calls = len(acs.requests())

        stack = fresh_stack()
        started = time.perf_counter()
        [summary] = stack.run()
        flow_seconds = time.perf_counter() - started
        assert summary.outcome == "completed", summary.reason
        acs.clear_requests()
        stack.run()
        flow_idle_calls = len(acs.requests())

    naive_rate, flow_rate = args.contacts / naive_seconds, args.contacts / flow_seconds
    print(f"contacts: {args.contacts}, flow parallelism: {args.parallel}, Campaign latency: {args.latency_ms} ms")
    ratio = flow_rate / naive_rate
    print(f"initial load   naive {naive_rate:8.0f} rec/s   flow {flow_rate:8.0f} rec/s   ratio {ratio:.2f}x")
    print(f"idle re-run    naive {naive_idle_calls:8d} calls   flow {flow_idle_calls:8d} calls")


if __name__ == "__main__":
    main()

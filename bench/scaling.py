"""Scaling of an initial load through the API path: time grows linearly with the rows, memory stays flat.

Figures: the connector process's own CPU per record (what the connector controls; target flat), its peak RSS
(target flat), and the wall time per record. The wall time also carries the state store's cost: on the
Azurite emulator a query costs time proportional to the whole table (it scans its in-memory collection),
so the index's reads and writes slow down as the table grows; Azure Table Storage answers them from its
PartitionKey/RowKey index. The wall-time figure is reported, not judged.

The connector runs as the operator CLI in its own process (`python -m shared.cli run ingress`), so its
peak RSS is its own; both sandboxes and Azurite run in their own processes too. Sizes: 10,000 and 100,000
contacts (add 1,000,000 with BENCH_SCALING_LARGE=1: about an hour against the Campaign sandbox). The file
path's scaling (initial transfer, 100,000 to 1,000,000 rows) is measured by the initial-transfer benchmark.
Not part of --quick.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cores
from bench.context import Context
from bench.figures import Figure, at_most
from bench.ingress_increment import settings_env
from bench.services import REPO, Service, campaign, dataverse
from sandbox.azurite import Azurite
from shared.settings import SPECS

NAME = "scaling"


def run(ctx: Context) -> list[Figure]:
    if ctx.quick:
        return []
    sizes = [10_000, 100_000] + ([1_000_000] if os.environ.get("BENCH_SCALING_LARGE") == "1" else [])
    if os.environ.get("BENCH_SCALING_SIZES"):  # exploring: e.g. BENCH_SCALING_SIZES=10000,40000
        sizes = [int(size) for size in os.environ["BENCH_SCALING_SIZES"].split(",")]
    results = {}
    with Azurite.start() as azurite:
        cores.place(azurite.process.pid)
        for size in sizes:
            ctx.log(f"scaling: initial load of {size:,} contacts through the API path (the CLI in its own process)")
            with dataverse(size) as dv, campaign() as acs:
                results[size] = load(dv, acs, azurite.connection_string)
            seconds, rss, cpu = results[size]
            ctx.log(f"scaling: {size:,} contacts in {seconds:.1f} s, CPU {cpu:.1f} s, peak RSS {rss:.0f} MB")
    figures = []
    for small, large in itertools.pairwise(sizes):
        (t_small, m_small, c_small), (t_large, m_large, c_large) = results[small], results[large]
        figures += [
            Figure(NAME, f"API path: connector CPU per record, {large:,} vs {small:,}", c_large / large * 1e6,
                   "µs/record", c_small / small * 1e6, f"{small:,} contacts", at_most(1.2)),
            Figure(NAME, f"API path: peak RSS, {large:,} vs {small:,}", m_large, "MB", m_small,
                   f"{small:,} contacts", at_most(1.2)),
            Figure(NAME, f"API path: wall time per record, {large:,} vs {small:,}", t_large / large * 1e6,
                   "µs/record", t_small / small * 1e6, f"{small:,} contacts",
                   note=f"{t_large:.0f} s vs {t_small:.0f} s; includes Azurite's per-table query cost"),
        ]  # fmt: skip
    return figures


def load(dv: Service, acs: Service, storage: str) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, CPU seconds) of one CLI run of ingress over the sandbox's contacts."""
    env = settings_env(dv, acs, storage)
    with tempfile.TemporaryDirectory() as folder:
        settings = Path(folder) / "local.settings.json"
        settings.write_text(json.dumps({"Values": {**env, "CAMPAIGN_MAX_PARALLEL": "16"}}))
        clean = {k: v for k, v in os.environ.items() if k not in {s.name for s in SPECS}}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "shared.cli", "--settings", str(settings), "run", "ingress",
                               "--json"], cwd=REPO, env=clean, capture_output=True, text=True, check=False)  # fmt: skip
        elapsed = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"the CLI run failed: {done.stderr[-1000:]}")
    if peak <= before:  # ru_maxrss of children is the largest child so far: a smaller one does not show
        raise RuntimeError("a later, smaller run cannot be measured after a larger one: run sizes upwards")
    return elapsed, peak / 1024, cpu

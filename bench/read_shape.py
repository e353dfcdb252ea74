"""Read and shape: rows per second of reading contacts, and of reading plus shaping them, against the baselines.

The Dataverse sandbox runs in its own process, seeded with 100,000 contacts (50,000 with --quick), read in
5,000-row change-tracking pages with the shipped example mapping's $select. Measured in the same run:
  (a) plain requests + JSON over the same pages, the same $select (the baseline: the page rate itself);
  (b) the connector's DataverseClient.iter_changes (MSAL token, HttpClient, classifier);
  (c) (b) plus the compiled filters and projection of the contacts mapping for every row;
  (d) Airbyte's Dataverse source, full refresh of contacts (bench/airbyte.py).
Targets: (c) at least 0.6 of (a); (c) at least 8 times (d). Each of (a)-(c) is the best of several reads,
interleaved: other work on a shared machine only ever slows a read down, so the best is the steadiest estimate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from bench import airbyte
from bench.context import Context
from bench.figures import Figure, at_least, quick_floor
from bench.rows import PAGE_SIZE, example_table, plain_pages, select_of
from bench.services import Service
from shared.clients.dataverse import DataverseClient, build_dataverse_client
from shared.core.filters import compile_filters
from shared.core.projection import compile_projection

NAME = "read"


def run(ctx: Context) -> list[Figure]:
    contacts = 50_000 if ctx.quick else 100_000
    repeats = 5
    dataverse = ctx.dataverse(contacts)
    table = example_table("contacts")
    select = select_of(table)
    client = connector_client(dataverse)
    projection = compile_projection(table, source_types={}, target_types={})
    keep = compile_filters(table.filters)
    session = requests.Session()
    session.trust_env = False
    session.verify = dataverse.info["ca_path"]

    def plain() -> int:
        return sum(len(page) for page in plain_pages(dataverse, select, session))

    def connector() -> int:
        return sum(len(page.rows) for page in client.iter_changes(table.entity_set, table.source_attributes()))

    def shaped() -> int:
        count = 0
        for page in client.iter_changes(table.entity_set, table.source_attributes()):
            for row in page.rows:
                if keep(row):
                    projection.project(row, full=True)
                count += 1
        return count

    connector()  # token and connections warm, as in a running Function App
    rates: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for _ in range(repeats):
        for key, read in (("a", plain), ("b", connector), ("c", shaped)):
            rates[key].append(rows_per_second(read, contacts))
    a, b, c = (max(rates[k]) for k in "abc")
    figures = [
        Figure(NAME, "(a) plain requests + JSON", a, "rows/s", note=f"{contacts:,} contacts, {PAGE_SIZE}-row pages"),
        Figure(NAME, "(b) DataverseClient.iter_changes", b, "rows/s", a, "(a)"),
        Figure(
            NAME,
            "(c) (b) + compiled filters and projection",
            c,
            "rows/s",
            a,
            "(a)",
            quick_floor(at_least(0.6), at_least(0.45), quick=ctx.quick),
        ),
    ]
    if ctx.quick:
        figures.append(Figure(NAME, "(c) vs (d) Airbyte full refresh", None, "rows/s", blocked="not in --quick"))
        return figures
    measured = airbyte.full_refresh_rate(ctx, dataverse, expected_rows=contacts)
    if measured.rate is None:
        figures.append(Figure(NAME, "(d) Airbyte source, full refresh", None, "rows/s", blocked=measured.failure))
        figures.append(Figure(NAME, "(c) vs (d)", None, "rows/s", target=at_least(8), blocked="needs (d)"))
    else:
        figures.append(Figure(NAME, "(d) Airbyte source, full refresh", measured.rate, "rows/s", note=measured.note))
        figures.append(Figure(NAME, "(c) vs (d)", c, "rows/s", measured.rate, "(d)", at_least(8)))
    return figures


def connector_client(dataverse: Service) -> DataverseClient:
    info = dataverse.info
    return build_dataverse_client(
        url=info["url"],
        tenant_id=info["tenant_id"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        authority_host=info["authority_host"],
        page_size=PAGE_SIZE,
        verify=info["ca_path"],
    )


def rows_per_second(read: Callable[[], int], expected: int) -> float:
    started = time.perf_counter()
    count = read()
    seconds = time.perf_counter() - started
    if count != expected:
        raise RuntimeError(f"read {count} rows, expected {expected}")
    return count / seconds

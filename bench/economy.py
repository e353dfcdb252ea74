"""Dataverse API economy of the connector's client: requests per page, counted in the sandbox's request log.

A change-tracking read of every contact must cost one Web API request per page (the token comes from the
sandbox's Entra endpoint, not the Web API, and is cached); a delta read with nothing changed one request;
a delta read of a few changed rows one request too.
"""

from __future__ import annotations

from bench.context import Context
from bench.figures import Figure, at_most
from bench.read_shape import connector_client
from bench.rows import example_table
from bench.services import Service

NAME = "economy"


def run(ctx: Context) -> list[Figure]:
    contacts = 50_000 if ctx.quick else 100_000  # the read benchmark's sandbox
    dataverse = ctx.dataverse(contacts)
    table = example_table("contacts")
    client = connector_client(dataverse)
    select = table.source_attributes()

    dataverse.control("DELETE", "requests")
    pages = list(client.iter_changes(table.entity_set, select))
    full_requests = web_api_requests(dataverse)
    delta = pages[-1].delta_link
    assert delta is not None, "a change-tracking read ends with a delta link"

    dataverse.control("DELETE", "requests")
    idle = list(client.iter_changes(table.entity_set, select, link=delta))
    idle_requests = web_api_requests(dataverse)

    changed = [row[table.primary_key] for row in pages[0].rows[:10]]
    for number, contact_id in enumerate(changed):
        dataverse.control("PATCH", f"rows/contacts/{contact_id}", {"firstname": f"Changed{number}"})
    dataverse.control("DELETE", "requests")
    increment = list(client.iter_changes(table.entity_set, select, link=idle[-1].delta_link or delta))
    increment_requests = web_api_requests(dataverse)
    seen = sum(len(page.rows) for page in increment)
    if seen != len(changed):
        raise RuntimeError(f"the delta read returned {seen} rows, {len(changed)} changed")

    return [
        Figure(NAME, f"full read of {contacts:,} contacts: requests per page", full_requests / len(pages),
               "requests", target=at_most(1.0), note=f"{full_requests} requests, {len(pages)} pages"),
        Figure(NAME, "delta read, nothing changed: requests", idle_requests, "requests", target=at_most(1.0)),
        Figure(NAME, "delta read, 10 contacts changed: requests", increment_requests, "requests",
               target=at_most(1.0)),
    ]  # fmt: skip


def web_api_requests(dataverse: Service) -> int:
    return sum(1 for entry in dataverse.control("GET", "requests") if "/api/data/" in entry.get("path", ""))

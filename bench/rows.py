"""Inputs several benchmarks share: the shipped example mapping, and pages of sandbox contacts read plainly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from bench.context import Context
from bench.services import REPO, Service
from shared.config import load_sync_config
from shared.config.model import TableMapping

EXAMPLE = REPO / "config" / "sync.example.json"
PAGE_SIZE = 5000


def example_table(name: str) -> TableMapping:
    return load_sync_config(str(EXAMPLE)).table(name)


def select_of(table: TableMapping) -> str:
    """The $select the connector sends for a table (DataverseClient joins source_attributes with commas)."""
    return ",".join(table.source_attributes())


def plain_pages(dataverse: Service, select: str, session: requests.Session | None = None) -> Iterator[list[Any]]:
    """A change-tracking read with plain requests: the same URL, headers and page size as the connector's."""
    session = session or dataverse.session
    token = dataverse.control("POST", "tokens")["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "If-None-Match": "null",
        "Prefer": f"odata.track-changes,odata.maxpagesize={PAGE_SIZE}",
    }
    url: str | None = f"{dataverse.info['api_url']}contacts?$select={select}"
    while url:
        response = session.get(url, headers=headers, timeout=120)
        response.raise_for_status()
        body = response.json()
        yield body["value"]
        url = body.get("@odata.nextLink")


def contact_page(ctx: Context, table: TableMapping) -> list[dict[str, Any]]:
    """One page of contacts with the table's columns."""
    dataverse = ctx.dataverse(PAGE_SIZE)
    return list(next(plain_pages(dataverse, select_of(table))))

"""The table client's own HTTP pipeline, for the requests this package encodes and decodes itself.

`TableClient._client.send_request` is the generated client's public method behind the SDK's private attribute:
authentication (shared key or Entra token), retries, transport and tracing stay the SDK's. A client without it,
or whose URL carries a SAS (the SDK signs that into each URL), gets None: callers then use the SDK's own call.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any, NamedTuple

from azure.core.rest import HttpRequest
from azure.data.tables import TableClient


class TablePipeline(NamedTuple):
    send: Callable[..., Any]  # the pipeline's send_request
    base: str  # scheme://host[/account], no trailing slash

    def fetch(self, request: HttpRequest) -> tuple[Any, bytes]:
        """The response and its whole body. Streamed, as the SDK sends its own: the pipeline neither tries to
        decode a multipart answer nor decodes the JSON a second time."""
        response = self.send(request, stream=True)
        try:
            return response, response.read()
        finally:
            response.close()


def pipeline_of(table: TableClient) -> TablePipeline | None:
    send = getattr(getattr(table, "_client", None), "send_request", None)
    base = table_url(table)
    return TablePipeline(send, base) if send is not None and base is not None else None


def table_url(table: TableClient) -> str | None:
    """scheme://host[/account] of the table client, or None when the URL carries a SAS (the SDK signs that)."""
    parts = urllib.parse.urlsplit(table.url)
    if parts.query:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"

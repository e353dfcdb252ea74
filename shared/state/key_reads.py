"""Entities of one partition by their RowKeys (up to 14 per query), read through the SDK's pipeline and
decoded here.

Why not `TableClient.query_entities`: for each entity the SDK runs its generated deserializer (type lookups,
`eval`), then converts every property and parses the Timestamp with strptime: about 0.5 ms of CPU per
entity under the GIL, paid twice per changed contact by ingress (the index, the newest-applied record).
The answer is plain JSON (`value`, one object per entity; a continuation in the x-ms-continuation-* headers,
which a query may return at any point, even with few results). The request goes through the table client's
own pipeline (`_client.send_request`): authentication, retries and transport stay the SDK's; without that
client, or with a SAS URL, `query_entities` answers instead.

Properties come back as the service typed them: strings, booleans, int32 and doubles as JSON has them,
Edm.Int64 as int, Edm.Double spelled as a string (NaN, Infinity) as float; other typed values (DateTime,
Guid, Binary) stay the strings the service sent: the tables read here hold none.
"""

from __future__ import annotations

import concurrent.futures
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient

from shared.state.table_pipeline import pipeline_of

MAX_KEYS = 14  # a filter may hold at most 15 comparisons: the PartitionKey and 14 RowKeys
_ACCEPT = "application/json;odata=minimalmetadata"
_CONTINUATION = (
    ("NextPartitionKey", "x-ms-continuation-NextPartitionKey"),
    ("NextRowKey", "x-ms-continuation-NextRowKey"),
)


class Entity(dict[str, Any]):
    """An entity's properties, and its metadata (the etag) where the SDK's TableEntity keeps it."""

    def __init__(self, properties: dict[str, Any], etag: str | None) -> None:
        super().__init__(properties)
        self.metadata: dict[str, Any] = {"etag": etag}


def read_by_keys(table: TableClient, partition_key: str, row_keys: Sequence[str]) -> list[Any]:
    """The entities of `partition_key` among `row_keys` (missing ones are left out), in no promised order."""
    if not 0 < len(row_keys) <= MAX_KEYS:
        raise ValueError(f"between 1 and {MAX_KEYS} row keys per query, not {len(row_keys)}")
    rows = " or ".join(f"RowKey eq {_literal(key)}" for key in row_keys)
    query_filter = f"PartitionKey eq {_literal(partition_key)} and ({rows})"
    pipeline = pipeline_of(table)
    if pipeline is None:
        return list(table.query_entities(query_filter))
    out: list[Any] = []
    continuation: dict[str, str] = {}
    while True:
        params = {"$filter": query_filter, **continuation}
        url = f"{pipeline.base}/{table.table_name}()?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"
        request = HttpRequest("GET", url, headers={
            "x-ms-version": table.api_version, "DataServiceVersion": "3.0", "Accept": _ACCEPT,
        })  # fmt: skip
        response, body = pipeline.fetch(request)
        out += decode_page(response.status_code, body, response)
        continuation = {name: value for name, header in _CONTINUATION if (value := response.headers.get(header))}
        if not continuation:
            return out


def read_many(table: TableClient, keys: Mapping[str, Sequence[str]], parallel: int = 8) -> list[Any]:
    """The entities among `keys` (partition -> row keys): one query per 14 keys of a partition, `parallel` at once."""
    chunks = [(pk, rows[i : i + MAX_KEYS]) for pk, rows in keys.items() for i in range(0, len(rows), MAX_KEYS)]
    if not chunks:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(parallel, len(chunks)))) as pool:
        return [found for page in pool.map(lambda chunk: read_by_keys(table, *chunk), chunks) for found in page]


def decode_page(status: int, body: bytes, response: Any) -> list[Entity]:
    if status == 404:
        raise ResourceNotFoundError(message="the table does not exist", response=response)
    if status != 200:
        raise HttpResponseError(message=f"query answered {status}", response=response)
    try:
        values = orjson.loads(body)["value"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise HttpResponseError(message="the query's answer is not an OData entity list", response=response) from exc
    return [entity(item) for item in values]


def entity(item: dict[str, Any]) -> Entity:
    properties: dict[str, Any] = {}
    for name, value in item.items():
        if name.startswith("odata.") or name.endswith("@odata.type"):
            continue
        kind = item.get(f"{name}@odata.type")
        if kind == "Edm.Int64":
            value = int(value)
        elif kind == "Edm.Double":
            value = float(value)
        properties[name] = value
    return Entity(properties, item.get("odata.etag"))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"

"""Entity-group transactions (Table Storage `$batch`), encoded and decoded here, sent through the SDK's pipeline.

Why not `TableClient.submit_transaction`: the SDK builds and parses the multipart body with the stdlib
`email` package, about 0.4 ms of CPU per entity under the GIL. Ingress with the opt-out safety net writes
two transactions' worth of entities per changed contact (the index, the newest-applied record), so that
encoding was half the connector's CPU. The format is small and documented (Performing entity group
transactions, Table service REST API): one changeset of HTTP sub-requests in a multipart/mixed body, answered
by one part per operation, or by a single part for the operation that failed (its message starts with its
index, "1:The specified entity already exists.").

The request goes through the table client's own pipeline (`_client.send_request`, the generated client's
public method behind the SDK's private attribute): authentication (shared key or Entra token), retries,
transport and tracing stay the SDK's. Whatever this codec does not cover (MERGE, types other than
str/bool/int32/finite float, a SAS URL, an SDK without that client) goes to `submit_transaction` unchanged,
so the outcome is the SDK's either way: success, or the same exception types (TableTransactionError with
`index` and `error_code` for a failed operation; ResourceNotFoundError, HttpResponseError otherwise).
"""

from __future__ import annotations

import concurrent.futures
import math
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.state.table_pipeline import pipeline_of

MAX_OPERATIONS = 100  # per entity-group transaction, the service's limit
T = TypeVar("T")
R = TypeVar("R")
_INT32 = range(-(2**31), 2**31)
_BOUNDARY = re.compile(rb'boundary="?([^";\s]+)"?', re.IGNORECASE)
_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
_INDEX = re.compile(r"^(\d+):")


class Unsupported(Exception):
    """An operation this codec does not encode: the SDK sends the whole transaction instead."""


def submit_transaction(table: TableClient, operations: Sequence[tuple[Any, ...]]) -> None:
    """`table.submit_transaction(operations)`, with the body encoded here when every operation allows it.
    Operations use the SDK's tuple form: ("create", entity), ("upsert", entity, {"mode": UpdateMode.REPLACE}),
    ("update", entity, {"mode": REPLACE, "etag": ..., "match_condition": IfNotModified}), ("delete", entity)."""
    pipeline = pipeline_of(table)
    try:
        if pipeline is None or not operations:
            raise Unsupported("no pipeline client")
        boundary = f"batch_{uuid.uuid4()}"
        body = encode(pipeline.base, table.table_name, operations, boundary, f"changeset_{uuid.uuid4()}",
                      table.api_version)  # fmt: skip
    except Unsupported:
        table.submit_transaction(operations)
        return
    request = HttpRequest("POST", f"{pipeline.base}/$batch", content=body, headers={
        "x-ms-version": table.api_version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": f"multipart/mixed; boundary={boundary}", "Accept": "application/json",
    })  # fmt: skip
    response, body = pipeline.fetch(request)
    raise_for_answer(response.status_code, response.headers.get("Content-Type", ""), body, len(operations), response)


def in_transactions(
    items: Iterable[T], partition: Callable[[T], str], save: Callable[[Sequence[T]], R], *, parallel: int = 8
) -> list[R]:
    """`save` per group of at most 100 items (the service's limit) of one partition (a transaction's scope),
    the groups sent in parallel: a bulk write waits about one round trip instead of one per partition."""
    by_partition: dict[str, list[T]] = {}
    for item in items:
        by_partition.setdefault(partition(item), []).append(item)
    groups = [group[i : i + MAX_OPERATIONS] for group in by_partition.values()
              for i in range(0, len(group), MAX_OPERATIONS)]  # fmt: skip
    if len(groups) <= 1 or parallel <= 1:
        return [save(group) for group in groups]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(parallel, len(groups))) as pool:
        return list(pool.map(save, groups))


def encode(
    base: str, table_name: str, operations: Sequence[tuple[Any, ...]], boundary: str, changeset: str,
    api_version: str,
) -> bytes:  # fmt: skip
    """The multipart/mixed body of one changeset holding `operations` in order (raises Unsupported)."""
    out = [f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode()]
    for number, operation in enumerate(operations):
        method, url, headers, payload = _sub_request(base, table_name, operation)
        lines = [f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                 f"Content-ID: {number}", "", f"{method} {url} HTTP/1.1"]  # fmt: skip
        if payload is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        lines += [f"x-ms-version: {api_version}", "DataServiceVersion: 3.0",
                  "Accept: application/json;odata=minimalmetadata", *headers, "", ""]  # fmt: skip
        out.append("\r\n".join(lines).encode())
        out.append((payload or b"") + b"\r\n")
    out.append(f"--{changeset}--\r\n\r\n--{boundary}--\r\n".encode())
    return b"".join(out)


def _sub_request(base: str, table_name: str, operation: tuple[Any, ...]) -> tuple[str, str, list[str], bytes | None]:
    kind, entity = str(operation[0]).lower(), operation[1]
    options: Mapping[str, Any] = operation[2] if len(operation) > 2 else {}
    if kind == "create":
        if options:
            raise Unsupported("create options")
        return "POST", f"{base}/{table_name}", ["Prefer: return-no-content"], entity_json(entity)
    address = f"{base}/{table_name}(PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}')"
    if kind == "delete":
        return "DELETE", address, [f"If-Match: {_if_match(options)}"], None
    if options.get("mode", UpdateMode.MERGE) is not UpdateMode.REPLACE:
        raise Unsupported("merge")  # MERGE sub-requests: left to the SDK
    if kind == "upsert":
        if set(options) - {"mode"}:
            raise Unsupported("upsert options")
        return "PUT", address, [], entity_json(entity)
    if kind == "update":
        return "PUT", address, [f"If-Match: {_if_match(options)}"], entity_json(entity)
    raise Unsupported(kind)


def _if_match(options: Mapping[str, Any]) -> str:
    unknown = set(options) - {"mode", "etag", "match_condition"}
    condition = options.get("match_condition", MatchConditions.Unconditionally)
    if unknown:
        raise Unsupported(f"options {sorted(unknown)}")
    if condition is MatchConditions.Unconditionally:
        return "*"
    if condition is MatchConditions.IfNotModified and options.get("etag"):
        return str(options["etag"])
    raise Unsupported(f"match condition {condition}")


def _key(value: Any) -> str:
    if not isinstance(value, str):
        raise Unsupported("key type")
    return urllib.parse.quote(value.replace("'", "''"), safe="")


def entity_json(entity: Mapping[str, Any]) -> bytes:
    """The entity as the Table service's JSON: strings, booleans and int32 as they are (strings typed, as the
    SDK sends them), floats as Edm.Double; None left out."""
    body: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        kind = type(value)
        if kind is str:
            body[name], body[f"{name}@odata.type"] = value, "Edm.String"
        elif kind is bool or (kind is int and value in _INT32):
            body[name] = value
        elif kind is float and math.isfinite(value):
            body[name], body[f"{name}@odata.type"] = value, "Edm.Double"
        else:
            raise Unsupported(f"value of type {kind.__name__}")
    return orjson.dumps(body)


# ----------------------------------------------------------------------------------------- answer


def raise_for_answer(status: int, content_type: str, body: bytes, operations: int, response: Any) -> None:
    """Nothing when every operation succeeded; otherwise the SDK's exception for the failure."""
    if status == 404:
        raise ResourceNotFoundError(message=_describe(status, body), response=response)
    if status != 202:
        raise HttpResponseError(message=_describe(status, body), response=response)
    answers = parse_parts(content_type.encode(), body)
    failed = [(code, text) for code, text in answers if not 200 <= code < 300]
    if failed:
        code, text = failed[0]
        message, error_code = _odata_error(text)
        error = TableTransactionError(message=message or f"operation failed with {code}", response=response)
        error.status_code, error.error_code = code, error_code  # type: ignore[attr-defined]  # as the SDK sets it
        found = _INDEX.match(message or "")
        error.index = int(found.group(1)) if found else 0
        raise error
    if len(answers) != operations:
        raise HttpResponseError(
            message=f"the transaction was answered with {len(answers)} parts for {operations} operations",
            response=response,
        )


def parse_parts(content_type: bytes, body: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each application/http part, nested multiparts flattened, in order."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise HttpResponseError(message="the transaction's answer is not multipart")
    delimiter = b"--" + found.group(1)
    out: list[tuple[int, bytes]] = []
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, _, content = _split_head(part.lstrip(b"\r\n"))
        part_type = _header(head, b"content-type")
        if part_type.lower().startswith(b"multipart/"):
            out += parse_parts(part_type, content)
        elif part_type.lower().startswith(b"application/http"):
            status_line, _, rest = _split_head(content.lstrip(b"\r\n"))
            status = _STATUS.match(status_line)
            if status is None:
                raise HttpResponseError(message="a part of the transaction's answer has no HTTP status line")
            out.append((int(status.group(1)), rest.strip()))
    return out


def _split_head(block: bytes) -> tuple[bytes, bytes, bytes]:
    head, sep, rest = block.partition(b"\r\n\r\n")
    if not sep:
        head, sep, rest = block.partition(b"\n\n")
    return head, sep, rest


def _header(head: bytes, name: bytes) -> bytes:
    for line in head.splitlines():
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return b""


def _odata_error(text: bytes) -> tuple[str, str | None]:
    """Message and code of an `odata.error` body (the status line's headers sit before it)."""
    start = text.find(b"{")
    try:
        error = orjson.loads(text[start:])["odata.error"] if start >= 0 else {}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "", None
    message = error.get("message")
    value = message.get("value") if isinstance(message, dict) else message
    return str(value or ""), error.get("code")


def _describe(status: int, body: bytes) -> str:
    message, code = _odata_error(body)
    return f"transaction answered {status}" + (f" ({code})" if code else "") + (f": {message}" if message else "")

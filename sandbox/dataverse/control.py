"""The control API (/_control/..., loopback only, no auth): the DataverseSandbox methods over JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sandbox.dataverse.odata import ODataError
from sandbox.dataverse.webapi import Response

if TYPE_CHECKING:
    from sandbox.dataverse.server import DataverseSandbox

ROUTES = """\
GET    /_control/health
GET    /_control/settings                       connection settings (url, tenant, client id/secret, CA path)
GET    /_control/stats                          version counter, row counts, max requests in flight
POST   /_control/seed                           {"table": "contact", "count": 1000000, "seed": 1}
GET    /_control/rows/<entity set>?limit=N      rows as the Web API returns them
POST   /_control/rows/<entity set>              create as a Dynamics user -> {"id": ...}
GET    /_control/rows/<entity set>/<id>
PATCH  /_control/rows/<entity set>/<id>         update as a Dynamics user
DELETE /_control/rows/<entity set>/<id>         delete as a Dynamics user
GET    /_control/requests                       request log (method, path, query, selected headers, status)
DELETE /_control/requests
POST   /_control/faults                         {"path": "/contacts", "kind": "429|500|503|drop|stall", "count": 2,
                                                 "method": "GET", "retry_after": 3, "stall_seconds": 5}
DELETE /_control/faults
POST   /_control/throttle                       {"kind": "requests|execution_time|concurrency", "limit": 100,
                                                 "window_seconds": 300, "retry_after": null}
DELETE /_control/throttle
POST   /_control/expire-delta-tokens
POST   /_control/expire-access-tokens
POST   /_control/clock/advance                  {"seconds": 3600}
POST   /_control/tokens                         -> {"access_token": ...} without MSAL
"""


def _ok(payload: Any, status: int = 200) -> Response:
    return Response(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def _error(status: int, message: str, code: str = "") -> Response:
    return _ok({"error": {"code": code, "message": message}}, status)


def handle(sandbox: DataverseSandbox, method: str, path: str, query: str, body: bytes) -> Response:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return _error(400, "body must be JSON")
    params = dict(parse_qsl(query))
    parts = [p for p in path.split("/") if p]
    try:
        return _route(sandbox, method, parts, params, data)
    except ODataError as error:
        return _error(error.status, error.message, error.code)
    except KeyError as error:
        return _error(404, str(error))
    except (ValueError, TypeError) as error:
        return _error(400, str(error))


def _route(
    sandbox: DataverseSandbox, method: str, parts: list[str], params: dict[str, str], data: dict[str, Any]
) -> Response:
    route = (method, parts[0] if parts else "")
    if route == ("GET", "health"):
        return _ok({"status": "ok"})
    if route == ("GET", "settings"):
        return _ok(sandbox.settings())
    if route == ("GET", "stats"):
        return _ok(sandbox.stats())
    if route == ("POST", "seed"):
        return _ok(sandbox.seed(data.get("table", "contact"), int(data["count"]), int(data.get("seed", 1))))
    if parts and parts[0] == "rows" and len(parts) >= 2:
        entity_set = parts[1]
        if len(parts) == 2 and method == "GET":
            limit = int(params["limit"]) if "limit" in params else None
            return _ok(sandbox.rows(entity_set, limit))
        if len(parts) == 2 and method == "POST":
            return _ok({"id": sandbox.create(entity_set, data)}, 201)
        if len(parts) == 3:
            row_id = parts[2]
            if method == "GET":
                row = sandbox.get(entity_set, row_id)
                return _ok(row) if row is not None else _error(404, "no such row")
            if method == "PATCH":
                sandbox.update(entity_set, row_id, data)
                return _ok({"id": row_id})
            if method == "DELETE":
                sandbox.delete(entity_set, row_id)
                return _ok({"id": row_id})
    if route == ("GET", "requests"):
        return _ok(sandbox.requests())
    if route == ("DELETE", "requests"):
        sandbox.clear_requests()
        return _ok({})
    if route == ("POST", "faults"):
        sandbox.inject_fault(
            str(data["path"]),
            str(data["kind"]),
            int(data.get("count", 1)),
            method=data.get("method"),
            retry_after=int(data.get("retry_after", 1)),
            stall_seconds=float(data.get("stall_seconds", 5.0)),
        )
        return _ok({})
    if route == ("DELETE", "faults"):
        sandbox.clear_faults()
        return _ok({})
    if route == ("POST", "throttle"):
        retry_after = data.get("retry_after")
        sandbox.set_throttle(
            str(data.get("kind", "requests")),
            float(data["limit"]),
            float(data.get("window_seconds", 300)),
            int(retry_after) if retry_after is not None else None,
        )
        return _ok({})
    if route == ("DELETE", "throttle"):
        sandbox.clear_throttle()
        return _ok({})
    if route == ("POST", "expire-delta-tokens"):
        sandbox.expire_delta_tokens()
        return _ok({})
    if route == ("POST", "expire-access-tokens"):
        sandbox.expire_access_tokens()
        return _ok({})
    if route == ("POST", "clock") and parts[1:] == ["advance"]:
        sandbox.advance_clock(float(data["seconds"]))
        return _ok({})
    if route == ("POST", "tokens"):
        return _ok({"access_token": sandbox.issue_token(), "token_type": "Bearer"})
    return _error(404, "unknown control route; see GET /_control/health and the README")

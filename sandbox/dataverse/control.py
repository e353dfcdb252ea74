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
POST   /_control/rows/<entity set>[?as_user=U]  create as a Dynamics user -> {"id": ...}
GET    /_control/rows/<entity set>/<id>
PATCH  /_control/rows/<entity set>/<id>[?as_user=U]  update as a Dynamics user (U: systemuserid or domainname)
DELETE /_control/rows/<entity set>/<id>[?as_user=U]  delete as a Dynamics user
GET    /_control/users                          systemusers (application user and named Dynamics users)
POST   /_control/users                          {"fullname": "...", "domainname": "x@example.com"} -> {"id": ...}
POST   /_control/latency                        {"ms": 20}  added to every Web API answer
POST   /_control/keys/hold                      {"hold": true}  new alternate keys stay Pending
POST   /_control/keys/activate                  run pending key index jobs -> [{"entity","key","status"}]
GET    /_control/webhooks                       registrations (no secrets)
POST   /_control/webhooks                       {"url", "entity", "messages", "filtering_attributes", "auth",
                                                 "value", "pre_image", "post_image"} -> {"id": ...}
DELETE /_control/webhooks/<id>
GET    /_control/webhooks/deliveries            delivery log (body, headers, attempts, status)
DELETE /_control/webhooks/deliveries
POST   /_control/webhooks/flush                 {"timeout": 10}  wait until every queued delivery is done
POST   /_control/webhooks/pause
POST   /_control/webhooks/resume                {"order": "fifo" | "lifo" | [delivery ids]}
POST   /_control/webhooks/duplicate             {"count": 1}  the next deliveries are sent twice
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


def _webhooks(sandbox: DataverseSandbox, method: str, parts: list[str], data: dict[str, Any]) -> Response:
    route = (method, parts[0] if parts else "")
    if route == ("GET", ""):
        return _ok(sandbox.webhook_registrations())
    if route == ("POST", ""):
        options = {
            k: data[k]
            for k in ("entity", "filtering_attributes", "auth", "value", "pre_image", "post_image")
            if k in data
        }
        if "messages" in data:
            options["messages"] = tuple(data["messages"])
        return _ok({"id": sandbox.register_webhook(str(data["url"]), **options)}, 201)
    if route == ("GET", "deliveries"):
        return _ok(sandbox.webhook_deliveries())
    if route == ("DELETE", "deliveries"):
        sandbox.clear_webhook_deliveries()
        return _ok({})
    if route == ("POST", "flush"):
        sandbox.flush_webhooks(float(data.get("timeout", 10.0)))
        return _ok({})
    if route == ("POST", "pause"):
        sandbox.pause_webhooks()
        return _ok({})
    if route == ("POST", "resume"):
        sandbox.resume_webhooks(data.get("order", "fifo"))
        return _ok({})
    if route == ("POST", "duplicate"):
        sandbox.duplicate_webhooks(int(data.get("count", 1)))
        return _ok({})
    if method == "DELETE" and len(parts) == 1:
        sandbox.unregister_webhook(parts[0])
        return _ok({})
    return _error(404, "unknown webhook control route; see the README")


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
    except TimeoutError as error:
        return _error(504, str(error))
    except RuntimeError as error:
        return _error(409, str(error))
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
        as_user = params.get("as_user")
        if len(parts) == 2 and method == "POST":
            return _ok({"id": sandbox.create(entity_set, data, as_user=as_user)}, 201)
        if len(parts) == 3:
            row_id = parts[2]
            if method == "GET":
                row = sandbox.get(entity_set, row_id)
                return _ok(row) if row is not None else _error(404, "no such row")
            if method == "PATCH":
                sandbox.update(entity_set, row_id, data, as_user=as_user)
                return _ok({"id": row_id})
            if method == "DELETE":
                sandbox.delete(entity_set, row_id, as_user=as_user)
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
    if route == ("GET", "users"):
        return _ok(sandbox.systemusers())
    if route == ("POST", "users"):
        return _ok({"id": sandbox.add_user(str(data["fullname"]), str(data["domainname"]))}, 201)
    if route == ("POST", "latency"):
        sandbox.set_latency(float(data["ms"]))
        return _ok({})
    if route == ("POST", "keys") and parts[1:] == ["hold"]:
        sandbox.hold_new_keys(bool(data.get("hold", True)))
        return _ok({})
    if route == ("POST", "keys") and parts[1:] == ["activate"]:
        return _ok(sandbox.activate_keys())
    if parts and parts[0] == "webhooks":
        return _webhooks(sandbox, method, parts[1:], data)
    return _error(404, "unknown control route; see GET /_control/health and the README")

"""The control API (`/_control/...`): the HTTP twin of the in-process handle, for the demo and other processes.

Every route answers JSON. See README.md for the list; the handle (handle.py) has a method per route.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from sandbox.campaign.config import SandboxConfig
from sandbox.campaign.faults import Budget, FaultRule
from sandbox.campaign.state import CampaignState


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def handle_control(state: CampaignState, method: str, route: str, query_string: str, body: Any) -> Any:
    state.settle_imports()
    parts = [urllib.parse.unquote(p) for p in route.strip("/").split("/") if p]
    query = dict(urllib.parse.parse_qsl(query_string))
    body = body or {}
    head = parts[0] if parts else ""
    key = (method, head, len(parts))

    if key == ("POST", "reset", 1):
        state.reset(SandboxConfig.from_mapping(body["config"]) if body.get("config") else None)
        return {"ok": True}
    if key == ("GET", "config", 1):
        with state.lock:
            return state.config.to_mapping()
    if key == ("POST", "seed", 2):
        return state.seed(parts[1], body["rows"], attribute_times=body.get("attributeTimes"))
    if key == ("GET", "rows", 2):
        return state.rows(parts[1])
    if head == "attributeTimes" and len(parts) == 3:
        if method == "GET":
            return state.attribute_times(parts[1], parts[2])
        if method == "POST":
            state.set_attribute_times(parts[1], parts[2], body)
            return state.attribute_times(parts[1], parts[2])
    if head == "requests" and len(parts) == 1:
        if method == "GET":
            with state.lock:
                entries = list(state.requests)
            needle = query.get("path")
            return [e for e in entries if not needle or needle in e["path"]]
        if method == "DELETE":
            with state.lock:
                state.requests.clear()
            return {"ok": True}
    if head == "faults" and len(parts) == 1:
        if method == "POST":
            rules = body.get("rules") if "rules" in body else [body]
            for raw in rules:
                state.add_fault(FaultRule.from_mapping(raw))
            return {"ok": True}
        if method == "GET":
            with state.lock:
                return [rule.describe() for rule in state.faults]
        if method == "DELETE":
            with state.lock:
                state.faults.clear()
            return {"ok": True}
    if head == "budget" and len(parts) == 1:
        with state.lock:
            if method == "POST":
                state.budget = Budget(int(body["limit"]), float(body.get("perSeconds", 1.0)))
                return {"ok": True}
            if method == "DELETE":
                state.budget = None
                return {"ok": True}
            if method == "GET":
                budget = state.budget
                return (
                    None
                    if budget is None
                    else {"limit": budget.limit, "perSeconds": budget.per_seconds, "refused": budget.refused}
                )
    if key == ("POST", "tokens", 2) and parts[1] == "expire":
        with state.lock:
            return {"expired": state.tokens.expire_all()}
    if key == ("POST", "optoutSpelling", 1):
        state.set_optout_spelling(str(body["spelling"]))
        return {"ok": True}
    if head == "clock" and len(parts) in (1, 2):
        with state.lock:
            if method == "POST" and parts[1:] == ["advance"]:
                state.clock_offset += float(body["seconds"])
            return {"now": state.now(), "offset": state.clock_offset}
    if head == "imports":
        if key == ("GET", "imports", 1):
            return state.import_history(query.get("workflow"))
        if key == ("POST", "imports", 2) and parts[1] == "failNext":
            state.fail_next_import(str(body["reason"]))
            return {"ok": True}
        if key == ("POST", "imports", 2) and parts[1] == "delay":
            state.set_import_delay(float(body["seconds"]))
            return {"ok": True}
    if key == ("GET", "workflows", 2):
        return state.workflow_snapshot(parts[1])
    if key == ("POST", "deliveries", 1):
        allowed = {
            "externalIds",
            "pkeys",
            "count",
            "withoutExternalId",
            "seed",
            "campaignLabel",
            "deliveryLabel",
            "rates",
            "urls",
            "mirrorPage",
            "sentAgo",
        }
        unknown = set(body) - allowed
        if unknown:
            raise ValueError(f"unknown delivery fields: {', '.join(sorted(unknown))}")
        return state.deliver(
            external_ids=list(body.get("externalIds") or []),
            pkeys=list(body.get("pkeys") or []),
            count=int(body.get("count", 0)),
            without_external_id=int(body.get("withoutExternalId", 0)),
            seed=int(body.get("seed", 0)),
            campaign_label=body.get("campaignLabel"),
            delivery_label=body.get("deliveryLabel"),
            rates=body.get("rates"),
            urls=body.get("urls"),
            mirror_page=bool(body.get("mirrorPage", True)),
            sent_ago=float(body.get("sentAgo", 3600.0)),
        )
    if key == ("GET", "deliveries", 2) and parts[1] == "logs":
        return state.delivery_logs()
    if key == ("POST", "exports", 2) and parts[1] == "logs":
        return state.export_logs()
    if key == ("POST", "exports", 2) and parts[1] == "optouts":
        return state.export_optouts()
    if key == ("GET", "exports", 1):
        return state.export_history()
    if key == ("POST", "profiles", 2) and parts[1] == "unsubscribe":
        return state.unsubscribe(external_id=body.get("externalId"), pkey=body.get("PKey"), changes=body.get("changes"))
    if key == ("GET", "triggers", 2):
        with state.lock:
            return list(_workflow(state, parts[1]).triggers)
    if key == ("POST", "workflows", 3) and parts[2] == "state":
        with state.lock:
            _workflow(state, parts[1]).state = str(body["state"])
            return {"ok": True}
    raise ControlError(404, f"no control route {method} /_control/{route}")


def _workflow(state: CampaignState, ident: str) -> Any:
    try:
        return state.workflows[ident]
    except KeyError:
        raise ControlError(404, f"unknown workflow {ident!r}") from None

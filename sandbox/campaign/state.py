"""Everything the Campaign sandbox knows, behind one lock: resources, tokens, workflows, faults, log.

The HTTP layer (server.py) and the in-process handle (handle.py) both call into this object, so the
control API and Python tests see and change exactly the same state.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from sandbox.campaign import errors
from sandbox.campaign.auth import TokenStore
from sandbox.campaign.config import SandboxConfig
from sandbox.campaign.faults import Budget, FaultRule
from sandbox.campaign.schema import (
    FilterSpec,
    ResourceSpec,
    custom_resource_from_config,
    format_datetime,
    optout_rename_map,
    parse_datetime,
    profile_resource,
    rename_optouts,
)
from sandbox.campaign.store import SERVER_MAINTAINED, Row, Table, decode_cursor, encode_cursor
from sandbox.campaign.workflows import Workflow

STANDARD = "profileAndServices"
EXTENDED = "profileAndServicesExt"
UNLINKED = "customResources"
ROOTS = (STANDARD, EXTENDED, UNLINKED)
REQUEST_LOG_LIMIT = 200_000
# Real endpoints and resources the sandbox does not imitate: a call gets 501 with this name, never a wrong answer.
UNMODELLED_ENDPOINTS = {
    "privacy": "privacy requests (/privacy/privacyTool)",
    "history": "marketing history (/history)",
}
UNMODELLED_RESOURCES = {
    "service": "services (/profileAndServices/service)",
    "history": "a profile's marketing history (/profileAndServices/history)",
    "orgUnitBase": "organizational units (/profileAndServicesExt/orgUnitBase)",
    "geoUnitBase": "geographical units (/profileAndServicesExt/geoUnitBase)",
    "subscriptions": "subscriptions",
}


@dataclasses.dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON; str -> text; None -> empty
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class CampaignState:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.lock = threading.RLock()
        self.public_base = "http://127.0.0.1:0"
        self.clock_offset = 0.0
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self._request_seq = 0
        self.reset(config or SandboxConfig())

    # ------------------------------------------------------------------ lifecycle and clock

    def reset(self, config: SandboxConfig | None = None) -> None:
        with self.lock:
            if config is not None:
                self.config = config
            cfg = self.config
            profile_filters = tuple(FilterSpec(f["name"], f["attribute"], f["param"]) for f in cfg.profile_filters)
            profile = profile_resource(
                cfg.optout_spelling,
                key=cfg.profile_key,
                extension_attributes=cfg.profile_extension_attributes,
                custom_filters=profile_filters,
            )
            specs: list[ResourceSpec] = [profile, *(custom_resource_from_config(r) for r in cfg.custom_resources)]
            self.tables: dict[str, Table] = {spec.name: Table(spec) for spec in specs}
            self.tokens = TokenStore(cfg.client_id, cfg.client_secret, cfg.token_lifetime)
            self.workflows: dict[str, Workflow] = {}
            for raw in cfg.workflows:
                workflow = Workflow.from_config(raw)
                self.workflows[workflow.id] = workflow
            self.faults: list[FaultRule] = []
            self.budget: Budget | None = None
            self.clock_offset = 0.0
            self.requests.clear()

    def now(self) -> float:
        return time.time() + self.clock_offset

    @property
    def api_base(self) -> str:
        return f"{self.public_base}/{self.config.organization}/campaign/"

    # ------------------------------------------------------------------ request pipeline helpers

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        with self.lock:
            for rule in self.faults:
                if rule.take(method, path):
                    return rule
            return None

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self._request_seq += 1
            entry["seq"] = self._request_seq
            self.requests.append(entry)

    def issue_token(self, form: Mapping[str, str]) -> Reply:
        with self.lock:
            status, body = self.tokens.issue(form, self.now())
            return Reply(status, body)

    # ------------------------------------------------------------------ the REST API

    def handle_api(
        self, method: str, segments: list[str], query: Mapping[str, str], headers: Mapping[str, str], raw: bytes
    ) -> Reply:
        """One call under /<org>/campaign/. `segments` are the path parts after `campaign/`."""
        with self.lock:
            now = self.now()
            if self.budget is not None:
                retry_after = self.budget.admit(now)
                if retry_after is not None:
                    raise errors.throttled(retry_after)
            self.tokens.check(headers.get("authorization"), headers.get("x-api-key"), now)
            body = _parse_json(raw) if raw else None
            if segments and segments[0] == "workflow":
                return self._workflow(method, segments[1:], body, raw, now)
            if segments and segments[0] in UNMODELLED_ENDPOINTS:
                raise errors.not_modelled(UNMODELLED_ENDPOINTS[segments[0]])
            if segments and segments[0] == f"mc{self.config.organization}":
                raise errors.not_modelled("transactional messages (/mc<ORGANIZATION>/<event>)")
            if not segments or segments[0] not in ROOTS:
                raise errors.not_found("/".join(segments) or "campaign")
            return self._resources(method, segments[0], segments[1:], query, body, now)

    def _resources(
        self, method: str, root: str, rest: list[str], query: Mapping[str, str], body: Any, now: float
    ) -> Reply:
        if not rest or rest == [""]:
            if method != "GET":
                raise errors.bad_request("Only GET is allowed on a root.")
            names = [name for name in self.tables if self._served(root, name)]
            return Reply(200, {"content": [{"name": n, "href": f"{self.api_base}{root}/{n}"} for n in names]})
        if rest[0] in UNMODELLED_RESOURCES and rest[0] not in self.tables:
            raise errors.not_modelled(UNMODELLED_RESOURCES[rest[0]])
        if rest[0] == "resourceType":
            if method != "GET" or len(rest) < 2:
                raise errors.not_found("resourceType")
            if rest[1] in UNMODELLED_RESOURCES and rest[1] not in self.tables:
                raise errors.not_modelled(UNMODELLED_RESOURCES[rest[1]])
            table = self._table(root, rest[1])
            if len(rest) == 2:
                return Reply(200, self._metadata(root, table.spec))
            if len(rest) == 3 and rest[2] == "filters":
                return Reply(200, self._filter_metadata(root, table.spec))
            raise errors.not_found("/".join(rest))
        table = self._table(root, rest[0])
        extended = root != STANDARD
        tail = [part for part in rest[1:] if part]
        if not tail:
            if method == "GET":
                return self._list(root, table, [], query, count_only=False)
            if method == "POST":
                row = table.create(body, now, table.spec.visible(extended), self._link_exists)
                return Reply(201, self._render(root, table, row))
            raise errors.bad_request(f"{method} is not allowed on a collection.")
        if tail[0].startswith("@"):
            if len(tail) != 1:
                raise errors.not_found("/".join(rest))
            pkey = tail[0]
            if method == "GET":
                return Reply(200, self._render(root, table, table.by_pkey(pkey)))
            if method == "PATCH":
                row = table.patch(pkey, body, now, table.spec.visible(extended), self._link_exists)
                return Reply(200, {"PKey": row.pkey, "href": self._href(root, table.spec.name, row.pkey)})
            if method == "DELETE":
                table.delete(pkey)
                return Reply(200, None)
            raise errors.bad_request(f"{method} is not allowed on a record.")
        if method != "GET":
            raise errors.bad_request(f"{method} is not allowed on a filter.")
        count_only = tail[-1] == "_count"
        filter_names = tail[:-1] if count_only else tail
        column = None
        if filter_names and table.spec.filter(filter_names[-1], extended) is None:
            attr = table.spec.attribute(filter_names[-1])
            if attr is not None and attr in table.spec.visible(extended) and not count_only:
                # GET /profile/email: that one column of every record (sorting.md samples).
                column = attr.name
                filter_names = filter_names[:-1]
        filters: list[tuple[FilterSpec, str]] = []
        for index, name in enumerate(filter_names):
            spec = table.spec.filter(name, extended)
            if spec is None:
                by_key = index == 0 and len(filter_names) == 1 and column is None and not count_only
                if by_key and extended and table.spec.key:
                    return self._by_custom_key(root, table, name)
                raise errors.not_found(f"{table.spec.name}/{name}")
            if spec.param not in query:
                raise errors.bad_request(f"The '{spec.param}' parameter of the '{spec.name}' filter is missing.")
            filters.append((spec, query[spec.param]))
        path = [*filter_names, column] if column else filter_names
        return self._list(root, table, filters, query, count_only=count_only, filter_path=path, column=column)

    def _by_custom_key(self, root: str, table: Table, value: str) -> Reply:
        # GET /profileAndServicesExt/<resource>/<customKey> (must-read.md).
        row = table.by_key(value)
        if row is None:
            raise errors.not_found(f"{table.spec.name}/{value}")
        return Reply(200, self._render(root, table, row))

    def _list(
        self,
        root: str,
        table: Table,
        filters: list[tuple[FilterSpec, str]],
        query: Mapping[str, str],
        *,
        count_only: bool,
        filter_path: list[str] | None = None,
        column: str | None = None,
    ) -> Reply:
        if count_only:
            return Reply(200, {"count": table.count(filters)})
        try:
            line_count = int(query.get("_lineCount", self.config.default_line_count))
        except ValueError:
            raise errors.bad_request("The '_lineCount' parameter is not valid.") from None
        if line_count < 1:
            raise errors.bad_request("The '_lineCount' parameter is not valid.")
        order = self._order(root, table, query.get("_order"))
        cursor: Any
        if order:
            after = decode_cursor(query["_lineStart"], sorted_=True) if "_lineStart" in query else None
            rows, cursor = table.page_sorted(filters, order, after, line_count)
        else:
            rows, cursor = table.page(
                filters, decode_cursor(query["_lineStart"]) if "_lineStart" in query else 0, line_count
            )
        path = "/".join([root, table.spec.name, *(filter_path or [])])
        params = {k: v for k, v in query.items() if k != "_lineStart"}
        rendered = [self._render(root, table, row) for row in rows]
        reply: dict[str, Any] = {
            "content": [record[column] for record in rendered] if column else rendered,
            "count": {"href": f"{self.api_base}{path}/_count?{urllib.parse.urlencode(params)}"},
            "serverSidePagination": True,
        }
        forced = query.get("_forcePagination", "").lower() == "true"
        big = len(table) > self.config.big_table_threshold
        if cursor is not None and (forced or not big):
            # Above XtkBigTableThreshold `next` is only given with _forcePagination=true (pagination.md).
            params["_lineStart"] = encode_cursor(cursor)
            reply["next"] = {"href": f"{self.api_base}{path}?{urllib.parse.urlencode(params)}"}
        return Reply(200, reply)

    def _order(self, root: str, table: Table, raw: str | None) -> list[tuple[str, bool]]:
        """`_order=<field>[ asc|desc]` (sorting.md) as (attribute, descending); [] when absent.

        Adobe's SDK appends a literal `%20desc`, which its HTTP layer encodes again (`%2520desc`): after the
        one decoding of the query the sandbox still sees `%20`, so it decodes a second time [U: what the
        real server does with it]. Sorting on several fields is not documented, so it is refused loudly."""
        if raw is None or raw == "":
            return []
        text = urllib.parse.unquote(raw).strip()
        if "," in text:
            raise errors.not_modelled("sorting on several fields (_order with ',')")
        words = text.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise errors.bad_request(
                "The '_order' parameter is not valid: use <field>, <field>%20asc or <field>%20desc."
            )
        name = words[0]
        attr = table.spec.attribute(name)
        if attr is None or attr not in table.spec.visible(root != STANDARD):
            raise errors.unknown_property(name, table.spec.name)
        if not attr.sortable:
            raise errors.not_sortable(name, table.spec.name)
        return [(name, len(words) == 2 and words[1].lower() == "desc")]

    def _workflow(self, method: str, rest: list[str], body: Any, raw: bytes, now: float) -> Reply:
        rest = [part for part in rest if part]
        if len(rest) < 2 or rest[0] != "execution":
            raise errors.not_found("workflow")
        workflow = self._find_workflow(rest[1])
        if len(rest) == 2 and method == "GET":
            return Reply(200, workflow.render(self.api_base))
        if len(rest) == 3 and rest[2] == "commands" and method == "POST":
            workflow.command(body)
            return Reply(200, {"PKey": workflow.pkey, "state": workflow.state})
        if len(rest) == 6 and rest[2:4] == ["activities", "activity"] and rest[5] == "trigger" and method == "POST":
            answer = workflow.trigger(rest[4], raw, body, now, self.config.signal_window)
            return Reply(200, answer)
        raise errors.not_found("/".join(rest))

    def _find_workflow(self, ident: str) -> Workflow:
        for workflow in self.workflows.values():
            if ident in (workflow.id, workflow.pkey):
                return workflow
        raise errors.not_found(ident)

    # ------------------------------------------------------------------ rendering

    def _served(self, root: str, name: str) -> bool:
        spec = self.tables[name].spec
        if name == "profile":
            return root in (STANDARD, EXTENDED)
        return root == (EXTENDED if spec.linked else UNLINKED)

    def _table(self, root: str, name: str) -> Table:
        if name not in self.tables or not self._served(root, name):
            raise errors.not_found(name)
        return self.tables[name]

    def _root_of(self, name: str) -> str:
        if name == "profile":
            return EXTENDED
        return EXTENDED if self.tables[name].spec.linked else UNLINKED

    def _href(self, root: str, name: str, pkey: str) -> str:
        return f"{self.api_base}{root}/{name}/{pkey}"

    def _link_exists(self, target: str, pkey: str) -> bool:
        table = self.tables.get(target)
        return table is not None and pkey in table._by_pkey

    def _render(self, root: str, table: Table, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {"PKey": row.pkey, "href": self._href(root, table.spec.name, row.pkey)}
        for attr in table.spec.visible(root != STANDARD):
            if attr.name == "PKey":
                continue
            if attr.name == "created":
                out["created"] = format_datetime(row.created)
            elif attr.name == "lastModified":
                out["lastModified"] = format_datetime(row.last_modified)
            elif attr.type == "link":
                target_pkey = row.values.get(attr.name)
                target = attr.target or ""
                out[attr.name] = (
                    {"PKey": target_pkey, "href": self._href(self._root_of(target), target, target_pkey)}
                    if target_pkey
                    else None
                )
            else:
                out[attr.name] = row.values.get(attr.name, attr.default())
        return out

    def _metadata(self, root: str, spec: ResourceSpec) -> dict[str, Any]:
        content: dict[str, Any] = {}
        for attr in spec.visible(root != STANDARD):
            item: dict[str, Any] = {
                "apiName": attr.name,
                "label": attr.name,
                "type": attr.high_level,
                "resType": attr.res_type,
                "readOnly": attr.read_only,
                "sortable": attr.sortable,
                "category": "0_profile",
            }
            if attr.length is not None:
                item["length"] = attr.length
            if attr.data_policy:
                item["dataPolicy"] = attr.data_policy
            if attr.type == "enumeration":
                item["values"] = {v: {"name": v, "label": v} for v in attr.values}
            if attr.type == "link":
                item["resTarget"] = attr.target
            content[attr.name] = item
        return {
            "content": content,
            "data": f"/{root}/{spec.name}/",
            "filters": {"href": f"{self.api_base}{root}/resourceType/{spec.name}/filters"},
            "href": f"{self.api_base}{root}/{spec.name}/metadata",
            "label": spec.label or spec.name,
            "name": spec.name,
            "schema": spec.schema,
            "type": "item",
            "readOnly": False,
            "mandatory": False,
        }

    def _filter_metadata(self, root: str, spec: ResourceSpec) -> dict[str, Any]:
        extended = root != STANDARD
        return {
            f.name: {
                "label": f.name,
                "category": "99_none",
                "formType": "none",
                "data": f"/{root}/{spec.name}/{f.name}?{f.param}=$value",
            }
            for f in spec.filters
            if extended or not f.custom
        }

    # ------------------------------------------------------------------ control operations

    def seed(
        self,
        resource: str,
        rows: list[Mapping[str, Any]],
        *,
        attribute_times: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Insert rows as they are (values are still type-checked). `created`/`lastModified` may be given."""
        with self.lock:
            table = self._any_table(resource)
            out = []
            now = self.now()
            for raw in rows:
                values = dict(raw)
                created = _timestamp(values.pop("created", None), now)
                last_modified = _timestamp(values.pop("lastModified", None), created)
                values.pop("PKey", None)
                values.pop("href", None)
                checked = table._checked(values, {a.name: a for a in table.spec.attributes}, self._link_exists)
                times = {k: _timestamp(v, created) for k, v in dict(attribute_times or {}).items()}
                row = table.seed(checked, created=created, last_modified=last_modified, attribute_times=times)
                out.append(self._render(self._root_of(resource), table, row))
            return out

    def rows(self, resource: str) -> list[dict[str, Any]]:
        with self.lock:
            table = self._any_table(resource)
            root = self._root_of(resource)
            return [self._render(root, table, row) for row in table.rows.values()]

    def attribute_times(self, resource: str, pkey: str) -> dict[str, str]:
        with self.lock:
            row = self._any_table(resource).by_pkey(pkey)
            return {name: format_datetime(ts) for name, ts in row.attribute_times.items()}

    def set_attribute_times(self, resource: str, pkey: str, times: Mapping[str, Any]) -> None:
        with self.lock:
            table = self._any_table(resource)
            row = table.by_pkey(pkey)
            for name, value in times.items():
                if table.spec.attribute(name) is None or name in SERVER_MAINTAINED:
                    raise ValueError(f"unknown attribute {name!r}")
                row.attribute_times[name] = _timestamp(value, self.now())

    def set_optout_spelling(self, spelling: str) -> None:
        with self.lock:
            table = self.tables["profile"]
            table.spec = rename_optouts(table.spec, spelling)
            table.rename(optout_rename_map(spelling))
            self.config.optout_spelling = spelling

    def add_fault(self, rule: FaultRule) -> None:
        with self.lock:
            self.faults.append(rule)

    def _any_table(self, resource: str) -> Table:
        table = self.tables.get(resource)
        if table is None:
            raise KeyError(f"unknown resource {resource!r}")
        return table


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise errors.bad_request("The request body is not valid JSON.") from None


def _timestamp(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is not None:
            return parsed.timestamp()
    raise ValueError(f"not a timestamp: {value!r}")

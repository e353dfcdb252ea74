"""Everything the Campaign sandbox knows, behind one lock: resources, tokens, workflows, faults, log.

The HTTP layer (server.py) and the in-process handle (handle.py) both call into this object, so the
control API and Python tests see and change exactly the same state.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.campaign import errors
from sandbox.campaign.auth import TokenStore
from sandbox.campaign.config import DEFAULT_WORKFLOWS, SandboxConfig
from sandbox.campaign.events import Target
from sandbox.campaign.faults import Budget, FaultRule
from sandbox.campaign.files import check_folder
from sandbox.campaign.imports import PREPARE_TIMEOUT
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
from sandbox.campaign.sftp_workflows import SftpWorkflows, optout_attribute_names
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
        """Start afresh (with `config` if given). A bad config changes nothing and lists every problem at once."""
        cfg = config if config is not None else self.config
        tables, workflows, files = _build(cfg)
        with self.lock:
            self.config = cfg
            self.tables = tables
            self.tokens = TokenStore(cfg.client_id, cfg.client_secret, cfg.token_lifetime)
            # Old workflows' import threads may still run: their jobs are no longer reachable, so never applied.
            self.workflows = workflows
            self.files = files
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
        self.settle_imports()
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
            if workflow.import_spec is not None:
                self.files.require_area("file imports")
            answer = workflow.trigger(rest[4], raw, body, now, self.config.signal_window)
            if workflow.import_spec is not None:
                table = self.tables[workflow.import_spec.resource]
                self.files.start_import(workflow, workflow.triggers[-1], table, now)
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
        self.settle_imports()
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

    # ------------------------------------------------------------------ file workflows (sftp_workflows.py)

    def settle_imports(self) -> None:
        """End every import whose time has come. Waits for its background preparation outside the lock."""
        with self.lock:
            files = self.files
            due = files.due_jobs(self.workflows, self.now())
        for job in due:
            if not job.prepared.wait(PREPARE_TIMEOUT):
                job.failure = job.failure or f"the sandbox could not prepare the import in {PREPARE_TIMEOUT:.0f} s"
        if not due:
            return
        with self.lock:
            if self.files is not files:
                return  # reset meanwhile: those jobs belong to a forgotten state
            for workflow in self.workflows.values():
                job = workflow.job
                if job is not None and job in due and not job.settled and workflow.import_spec is not None:
                    table = self.tables[workflow.import_spec.resource]
                    files.finish_import(workflow, job, table, self.now())

    def import_history(self, workflow_id: str | None = None) -> list[dict[str, Any]]:
        self.settle_imports()
        with self.lock:
            runs = [run for run in self.files.imports if workflow_id in (None, run["workflow"])]
            return json.loads(json.dumps(runs))  # a copy the caller can keep

    def fail_next_import(self, reason: str) -> None:
        if not reason:
            raise ValueError("fail_next_import needs a reason")
        with self.lock:
            self.files.failures_queued.append(str(reason))

    def set_import_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the import delay must be >= 0")
        with self.lock:
            self.files.import_delay = float(seconds)

    def workflow_snapshot(self, workflow_id: str) -> dict[str, Any]:
        self.settle_imports()
        with self.lock:
            workflow = self.workflows.get(workflow_id)
            if workflow is None:
                raise KeyError(f"unknown workflow {workflow_id!r}")
            return workflow.render(self.api_base)

    def deliver(
        self,
        *,
        external_ids: Sequence[str] = (),
        pkeys: Sequence[str] = (),
        count: int = 0,
        without_external_id: int = 0,
        seed: int = 0,
        campaign_label: str | None = None,
        delivery_label: str | None = None,
        rates: Mapping[str, float] | None = None,
        urls: Sequence[str] | None = None,
        mirror_page: bool = True,
        sent_ago: float = 3600.0,
    ) -> dict[str, Any]:
        """Send one email delivery (events.py) and return every event it makes."""
        self.settle_imports()
        with self.lock:
            now = self.now()
            profiles = self.tables["profile"]
            chosen = self._delivery_targets(profiles, external_ids, pkeys, count, without_external_id, seed, now)
            deny = (self.config.optout_spelling, self.config.optout_spelling + "Email")
            targets = []
            excluded = []
            for row in chosen:
                external_id = str(row.values.get("externalId") or "")
                if any(row.values.get(name) for name in deny):
                    excluded.append({"PKey": row.pkey, "externalId": external_id, "reason": "Denylisted address"})
                    continue
                targets.append(Target(row.pkey, external_id, str(row.values.get("email") or "")))
            return self.files.deliver(
                targets,
                excluded,
                now=now,
                seed=seed,
                campaign_label=campaign_label,
                delivery_label=delivery_label,
                rates=rates,
                urls=urls,
                mirror_page=mirror_page,
                sent_ago=sent_ago,
                external_id=self._external_id,
            )

    def _delivery_targets(
        self,
        profiles: Table,
        external_ids: Sequence[str],
        pkeys: Sequence[str],
        count: int,
        without_external_id: int,
        seed: int,
        now: float,
    ) -> list[Row]:
        chosen: list[Row] = []
        missing = [value for value in external_ids if profiles.by_key(value) is None]
        if missing:
            raise KeyError(f"no profile has externalId {', '.join(map(repr, missing))}")
        chosen.extend(row for value in external_ids if (row := profiles.by_key(value)) is not None)
        chosen.extend(profiles.by_pkey(pkey) for pkey in pkeys)
        taken = {row.seq for row in chosen}
        rng = random.Random(f"targets-{seed}")
        if count:
            eligible = [r for r in profiles.rows.values() if r.values.get("externalId") and r.seq not in taken]
            if len(eligible) < count:
                raise ValueError(f"only {len(eligible)} more profiles have an externalId ({count} asked)")
            chosen.extend(sorted(rng.sample(eligible, count), key=lambda r: r.seq))
        if without_external_id:
            # Profiles that did not come from Dynamics (made in Campaign): existing ones first, then new ones.
            native = [r for r in profiles.rows.values() if not r.values.get("externalId") and r.seq not in taken]
            native = native[:without_external_id]
            while len(native) < without_external_id:
                index = len(profiles) + 1
                values = {"email": f"campaign.only.{index}@example.net", "lastName": f"Campaign only {index}"}
                native.append(profiles.insert_imported(values, now))
            chosen.extend(native)
        if not chosen:
            raise ValueError("a delivery needs profiles: external_ids, pkeys, count or without_external_id")
        return chosen

    def _external_id(self, pkey: str) -> str:
        # The export's Enrichment reads the profile as it is now; a deleted profile leaves the column empty.
        seq = self.tables["profile"]._by_pkey.get(pkey)
        row = self.tables["profile"].rows.get(seq) if seq is not None else None
        return str(row.values.get("externalId") or "") if row is not None else ""

    def delivery_logs(self) -> dict[str, Any]:
        with self.lock:
            return self.files.log_snapshot(self.now(), self._external_id)

    def export_logs(self) -> dict[str, Any]:
        self.settle_imports()
        with self.lock:
            return self.files.export_logs(self.now(), self._external_id)

    def export_optouts(self) -> dict[str, Any]:
        self.settle_imports()
        with self.lock:
            profiles = list(self.tables["profile"].rows.values())
            return self.files.export_optouts(self.now(), profiles, self.config.optout_spelling)

    def export_history(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry) for entry in self.files.exports]

    def unsubscribe(
        self,
        *,
        external_id: str | None = None,
        pkey: str | None = None,
        changes: Mapping[str, bool] | None = None,
    ) -> dict[str, Any]:
        """What a Campaign user does (unsubscription link, profile screen): opt-outs change, lastModified moves."""
        self.settle_imports()
        with self.lock:
            table = self.tables["profile"]
            if (external_id is None) == (pkey is None):
                raise ValueError("unsubscribe needs exactly one of external_id and pkey")
            row = table.by_key(external_id) if external_id is not None else table.by_pkey(str(pkey))
            if row is None:
                raise KeyError(f"no profile has externalId {external_id!r}")
            names = optout_attribute_names(self.config.optout_spelling)
            wanted = dict(changes) if changes is not None else {self.config.optout_spelling + "Email": True}
            problems = [f"{k!r} is not an opt-out attribute ({', '.join(names)})" for k in wanted if k not in names]
            problems += [f"{k!r} must be true or false" for k, v in wanted.items() if not isinstance(v, bool)]
            if problems:
                raise ValueError("; ".join(problems))
            table.change(row, wanted, self.now())
            return self._render(EXTENDED, table, row)

    def _any_table(self, resource: str) -> Table:
        table = self.tables.get(resource)
        if table is None:
            raise KeyError(f"unknown resource {resource!r}")
        return table


def _build(cfg: SandboxConfig) -> tuple[dict[str, Table], dict[str, Workflow], SftpWorkflows]:
    """Tables, workflows and file workflows of a config, or ValueError listing every problem."""
    problems: list[str] = []
    profile_filters = tuple(FilterSpec(f["name"], f["attribute"], f["param"]) for f in cfg.profile_filters)
    specs: list[ResourceSpec] = [
        profile_resource(
            cfg.optout_spelling,
            key=cfg.profile_key,
            extension_attributes=cfg.profile_extension_attributes,
            custom_filters=profile_filters,
        )
    ]
    for raw in cfg.custom_resources:
        try:
            specs.append(custom_resource_from_config(raw))
        except (ValueError, KeyError) as problem:
            problems.append(str(problem))
    tables = {spec.name: Table(spec) for spec in specs}
    workflows: dict[str, Workflow] = {}
    for raw in cfg.workflows:
        try:
            workflow = Workflow.from_config(raw)
        except (ValueError, KeyError, LookupError) as problem:
            problems.append(f"workflow {raw.get('id')!r}: {problem}")
            continue
        workflows[workflow.id] = workflow
        spec = workflow.import_spec
        if spec is None:
            continue
        table = tables.get(spec.resource)
        if table is None and tuple(cfg.workflows) == DEFAULT_WORKFLOWS:
            del workflows[workflow.id]  # a default import for a resource this config left out
            continue
        if table is None:
            problems.append(f"workflow {workflow.id!r}: import resource {spec.resource!r} does not exist")
            continue
        attr = table.spec.attribute(spec.key)
        if attr is None or attr.type == "link" or spec.key in SERVER_MAINTAINED:
            problems.append(f"workflow {workflow.id!r}: import key {spec.key!r} is not a plain attribute")
    for name in ("import_folder", "export_folder"):
        try:
            check_folder(getattr(cfg, name))
        except ValueError as problem:
            problems.append(f"{name}: {problem}")
    files = None
    try:
        files = SftpWorkflows(cfg)
    except ValueError as problem:
        problems.append(str(problem))
    if cfg.import_delay < 0:
        problems.append("import_delay must be >= 0")
    if problems or files is None:
        raise ValueError("sandbox configuration: " + "; ".join(problems))
    return tables, workflows, files


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

"""The Dataverse Web API surface of the sandbox, independent of HTTP plumbing (also serves $batch parts).

Behaviour and sources (PA = MicrosoftDocs/powerapps-docs developer/data-platform):
- paging: Prefer odata.maxpagesize (default and max 5000), opaque @odata.nextLink (webapi/query/page-results.md);
- change tracking: Prefer odata.track-changes, deltaLink only on the last page, `$deletedEntity` rows, delta
  context ending `/$delta`, $filter/$orderby/$expand/$top rejected, ExpiredVersionStamp 0x80044352
  (use-change-tracking-synchronize-data-external-systems.md). The initial read's delta link names the
  version at the *start* of the read, so rows changed while it was paging come back in the next delta;
- writes: create 204 + OData-EntityId (201 with return=representation), PATCH with If-Match: * never
  creates (404), PATCH without it upserts, If-None-Match: * never updates (412), lookups via @odata.bind
  to existing rows (webapi/create-entity-web-api.md, update-delete-entities-using-web-api.md,
  use-upsert-insert-update-record.md);
- $batch: at most 1000 requests, change sets atomic, Content-ID references, stop at the first error
  unless Prefer odata.continue-on-error (webapi/execute-batch-operations-using-web-api.md).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from sandbox.dataverse import metadata, multipart
from sandbox.dataverse.odata import (
    DUPLICATE_RECORD,
    EXPIRED_VERSION_STAMP,
    JSON_TYPE,
    ODATA_PARSE,
    OPTION_OUT_OF_RANGE,
    VALIDATION,
    ODataError,
    compile_filter,
    not_found_segment,
    parse_prefer,
    parse_query,
    project,
    record_not_found,
    select_columns,
    table_resolver,
    unknown_property,
)
from sandbox.dataverse.schema import Column, TableDef
from sandbox.dataverse.store import Store, Table

API_PREFIX = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
MAX_BATCH = 1000
INVALID_ARGUMENT = "0x80040203"  # generic "invalid argument" (unverified for these exact cases)
CONCURRENCY_MISMATCH = "0x80060882"  # ConcurrencyVersionMismatch (unverified code)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ENTITY = re.compile(r"^(?P<set>[A-Za-z_][\w]*)(?:\((?P<key>[^)]*)\))?(?:/(?P<rest>.*))?$")
_TRACK_FORBIDDEN = ("$filter", "$orderby", "$expand", "$top")


@dataclasses.dataclass
class Request:
    method: str
    path: str  # below /api/data/v9.2/, percent-decoded
    query: str  # raw query string
    headers: dict[str, str]  # lower-cased names; repeated Prefer headers joined with ","
    body: bytes = b""


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    out = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
    out.update(headers or {})
    return Response(status, out, json.dumps(payload, separators=(",", ":")).encode())


def error_response(error: ODataError) -> Response:
    headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **error.headers}
    return Response(error.status, headers, error.body())


def _encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise ODataError(400, INVALID_ARGUMENT, "The paging cookie is not valid.") from exc
    if not isinstance(value, dict):
        raise ODataError(400, INVALID_ARGUMENT, "The paging cookie is not valid.")
    return value


class WebApi:
    def __init__(self, store: Store, org_url: str, *, wall_clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.org_url = org_url.rstrip("/")
        self.api_root = self.org_url + API_PREFIX
        self.wall_clock = wall_clock
        self.expire_change_tracking_days = 7

    # -- entry ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except ODataError as error:
            return error_response(error)

    def _route(self, request: Request) -> Response:
        path = request.path
        method = request.method
        if path == "$batch":
            if method != "POST":
                raise ODataError(405, INVALID_ARGUMENT, "$batch accepts POST only.")
            return self._batch(request)
        if path == "$metadata":
            return Response(200, {"Content-Type": "application/xml", "OData-Version": "4.0"}, metadata.csdl(self.store))
        if path in ("WhoAmI", "WhoAmI()"):
            return json_response(200, metadata.who_am_i(self.api_root))
        if path.startswith("RetrieveTotalRecordCount("):
            return json_response(200, metadata.total_record_count(self.store, self.api_root, path, request.query))
        if path.startswith("EntityDefinitions"):
            if method != "GET":
                raise ODataError(405, INVALID_ARGUMENT, "Metadata is read-only in the sandbox.")
            return json_response(200, metadata.entity_definitions(self.store, self.api_root, path, request.query))
        if path == "organizations" and method == "GET":
            return json_response(200, metadata.organizations(self.api_root, self.expire_change_tracking_days))
        match = _ENTITY.match(path)
        if match is None:
            raise not_found_segment(path.split("/")[0])
        table = self.store.by_set.get(match["set"])
        if table is None:
            raise not_found_segment(match["set"])
        key, rest = match["key"], match["rest"]
        if key is None:
            if rest == "$count" and method == "GET":
                return self._count(table, request)
            if rest:
                raise not_found_segment(rest)
            if method == "GET":
                return self._read(table, request)
            if method == "POST":
                return self._create(table, request)
            raise ODataError(405, INVALID_ARGUMENT, f"{method} is not allowed on an entity set.")
        row_id = self._key(table.definition, key)
        if rest:
            raise not_found_segment(rest)
        if method == "GET":
            return self._read_one(table, row_id, request)
        if method == "PATCH":
            return self._patch(table, row_id, request)
        if method == "DELETE":
            return self._delete(table, row_id)
        raise ODataError(405, INVALID_ARGUMENT, f"{method} is not allowed on an entity.")

    def _key(self, table: TableDef, key: str) -> str:
        key = key.strip()
        if key.startswith(table.primary_key + "="):
            key = key.split("=", 1)[1]
        if _GUID.match(key):
            return key.lower()
        # Alternate keys are not defined on the sandbox tables (PA use-alternate-key-reference-record.md).
        raise ODataError(
            400,
            ODATA_PARSE,
            f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table.logical_name}'. "
            "Ensure that the names and number of key properties match the declared or alternate key properties "
            f"for the resource 'Microsoft.Dynamics.CRM.{table.logical_name}'.",
        )

    # -- reads ---------------------------------------------------------------------------------
    def _read(self, table: Table, request: Request) -> Response:
        query = parse_query(request.query)
        prefer = parse_prefer([request.headers.get("prefer", "")])
        page_size = _page_size(prefer)
        definition = table.definition
        tracking = "$deltatoken" in query or "odata.track-changes" in prefer
        if tracking and definition.change_tracking:
            for option in _TRACK_FORBIDDEN:
                if option in query:
                    raise ODataError(
                        400,
                        INVALID_ARGUMENT,
                        f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.',
                    )
            columns = select_columns(definition, query.get("$select"))
            if "$deltatoken" in query:
                return self._delta(table, query, columns, page_size)
            return self._initial(table, query, columns, page_size)
        if "$deltatoken" in query:
            # No delta link is ever issued for such a table; a hand-made one is refused.
            raise ODataError(
                400, INVALID_ARGUMENT, f"Entity: {definition.logical_name} isn't enabled for change tracking."
            )
        columns = select_columns(definition, query.get("$select"))
        return self._plain(table, query, columns, page_size, prefer)

    def _context(self, definition: TableDef, query: dict[str, str], suffix: str = "") -> str:
        select = query.get("$select")
        shape = f"({select})" if select else ""
        return f"{self.api_root}$metadata#{definition.entity_set}{shape}{suffix}"

    def _link(self, definition: TableDef, query: dict[str, str], **extra: str) -> str:
        params = {k: v for k, v in query.items() if k not in ("$skiptoken", "$deltatoken")}
        params.update(extra)
        encoded = "&".join(f"{k}={quote(v, safe=',()*')}" for k, v in params.items())
        return f"{self.api_root}{definition.entity_set}?{encoded}"

    def _delta_token(self, version: int) -> str:
        # Shape of the documented token: "<version>!<MM/dd/yyyy HH:mm:ss>" (use-change-tracking... .md).
        return f"{version}!{time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime(self.wall_clock()))}"

    def _initial(self, table: Table, query: dict[str, str], columns: list[Column], page_size: int) -> Response:
        definition = table.definition
        cookie = _decode_token(query["$skiptoken"]) if "$skiptoken" in query else None
        with self.store.lock:
            # The snapshot version is fixed on the first page and travels in the paging cookie.
            snapshot = int(cookie["w"]) if cookie else self.store.version
            cursor = tuple(cookie["c"]) if cookie else ("s", 0)
            rows, next_cursor = _take(table.scan(cursor, _names(columns)), page_size)  # type: ignore[arg-type]
            value = [project(row, columns) for row in rows]
        payload: dict[str, Any] = {"@odata.context": self._context(definition, query), "value": value}
        if next_cursor is not None:
            payload["@odata.nextLink"] = self._link(
                definition, query, **{"$skiptoken": _encode_token({"t": 1, "w": snapshot, "c": list(next_cursor)})}
            )
        else:
            payload["@odata.deltaLink"] = self._link(definition, query, **{"$deltatoken": self._delta_token(snapshot)})
        return json_response(200, payload, {"Preference-Applied": _applied(page_size)})

    def _since(self, token: str) -> int:
        head = token.split("!", 1)[0]
        if not head.isdigit() or int(head) > self.store.version:
            raise ODataError(400, INVALID_ARGUMENT, "The delta token is not valid.")
        since = int(head)
        if since < self.store.expired_before:
            # ExpiredVersionStamp. The Web API status for it is not documented; 400 is assumed
            # (reference/dataverse.md section 3).
            raise ODataError(
                400,
                EXPIRED_VERSION_STAMP,
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        return since

    def _delta(self, table: Table, query: dict[str, str], columns: list[Column], page_size: int) -> Response:
        definition = table.definition
        cookie = _decode_token(query["$skiptoken"]) if "$skiptoken" in query else None
        deleted_context = f"{self.api_root}$metadata#{definition.entity_set}/$deletedEntity"
        with self.store.lock:
            since = self._since(query["$deltatoken"])
            until = int(cookie["u"]) if cookie else self.store.version
            position = int(cookie["p"]) if cookie else 0
            window = table.window(since, until)
            names = _names(columns)
            value: list[dict[str, Any]] = []
            seeded = window.seeded
            upserts = len(window.upserts)
            total = len(window)
            while position < total and len(value) < page_size:
                if position < seeded:
                    segment, index = _locate(window.segments, position)
                    row_id = _seeded_id(segment, index)
                    if row_id not in window.touched:
                        row = table.seeded_row(index, segment, names)
                        if row is not None:
                            value.append(project(row, columns))
                elif position < seeded + upserts:
                    row_id = window.upserts[position - seeded]
                    current = table.get(row_id)
                    if current is not None:
                        value.append(project(current, columns))
                    else:  # deleted after the window closed: say so now, the next delta repeats it
                        value.append({"@odata.context": deleted_context, "id": row_id, "reason": "deleted"})
                else:
                    row_id = window.deletes[position - seeded - upserts]
                    value.append({"@odata.context": deleted_context, "id": row_id, "reason": "deleted"})
                position += 1
        payload: dict[str, Any] = {"@odata.context": self._context(definition, query, "/$delta"), "value": value}
        if position < total:
            token = _encode_token({"u": until, "p": position})
            payload["@odata.nextLink"] = self._link(
                definition, query, **{"$deltatoken": query["$deltatoken"], "$skiptoken": token}
            )
        else:
            payload["@odata.deltaLink"] = self._link(definition, query, **{"$deltatoken": self._delta_token(until)})
        return json_response(200, payload, {"Preference-Applied": _applied(page_size)})

    def _plain(
        self, table: Table, query: dict[str, str], columns: list[Column], page_size: int, prefer: dict[str, str]
    ) -> Response:
        definition = table.definition
        if "$expand" in query:
            raise ODataError(400, INVALID_ARGUMENT, "$expand is not supported by the sandbox.")
        predicate = compile_filter(query["$filter"], table_resolver(definition)) if "$filter" in query else None
        top = int(query["$top"]) if query.get("$top", "").isdigit() else None
        if "odata.maxpagesize" in prefer:
            top = None  # $top is ignored together with maxpagesize (PA page-results.md)
        cookie = _decode_token(query["$skiptoken"]) if "$skiptoken" in query else None
        payload: dict[str, Any] = {"@odata.context": self._context(definition, query)}
        with self.store.lock:
            if "$orderby" in query or top is not None or query.get("$count") == "true":
                matching = [row for _, row in table.scan(("s", 0)) if predicate is None or predicate(row)]
                if "$orderby" in query:
                    matching = _order(definition, matching, query["$orderby"])
                if top is not None:
                    matching = matching[:top]
                offset = int(cookie["o"]) if cookie else 0
                rows = matching[offset : offset + page_size]
                following = offset + page_size if offset + page_size < len(matching) else None
                next_token = {"o": following} if following is not None else None
                if query.get("$count") == "true":
                    payload["@odata.count"] = min(len(matching), 5000)  # capped (PA count-rows.md)
            else:
                cursor = tuple(cookie["c"]) if cookie else ("s", 0)
                names = _names(columns) if predicate is None else None  # a filter may read any column
                scan = ((c, r) for c, r in table.scan(cursor, names) if predicate is None or predicate(r))  # type: ignore[arg-type]
                rows, next_cursor = _take(scan, page_size)
                next_token = {"c": list(next_cursor)} if next_cursor is not None else None
            payload["value"] = [project(row, columns) for row in rows]
        if next_token is not None:
            payload["@odata.nextLink"] = self._link(definition, query, **{"$skiptoken": _encode_token(next_token)})
        headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if "odata.maxpagesize" in prefer else {}
        return json_response(200, payload, headers)

    def _count(self, table: Table, request: Request) -> Response:
        query = parse_query(request.query)
        with self.store.lock:
            if "$deltatoken" in query:
                count = len(table.window(self._since(query["$deltatoken"]), self.store.version))
            else:
                count = min(table.live, 5000)  # capped like $count (PA count-rows.md)
        return Response(200, {"Content-Type": "text/plain", "OData-Version": "4.0"}, str(count).encode())

    def _read_one(self, table: Table, row_id: str, request: Request) -> Response:
        query = parse_query(request.query)
        definition = table.definition
        columns = select_columns(definition, query.get("$select"))
        with self.store.lock:
            row = table.get(row_id)
            if row is None:
                raise record_not_found(definition.logical_name, row_id)
            payload = {"@odata.context": self._context(definition, query, "/$entity"), **project(row, columns)}
        return json_response(200, payload)

    # -- writes --------------------------------------------------------------------------------
    def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ODataError(400, ODATA_PARSE, "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise ODataError(400, ODATA_PARSE, "The request body must be a JSON object.")
        return body

    def _entity_url(self, definition: TableDef, row_id: str) -> str:
        return f"{self.api_root}{definition.entity_set}({row_id})"

    def _written(self, table: Table, row_id: str, request: Request, created: bool) -> Response:
        prefer = parse_prefer([request.headers.get("prefer", "")])
        url = self._entity_url(table.definition, row_id)
        headers = {"OData-EntityId": url, "Location": url}
        if prefer.get("return") == "representation":
            query = parse_query(request.query)
            columns = select_columns(table.definition, query.get("$select"))
            with self.store.lock:
                row = table.get(row_id) or {}
                payload = {
                    "@odata.context": self._context(table.definition, query, "/$entity"),
                    **project(row, columns),
                }
            headers["Preference-Applied"] = "return=representation"
            return json_response(201 if created else 200, payload, headers)
        return Response(204, {"OData-Version": "4.0", **headers})

    def _create(self, table: Table, request: Request) -> Response:
        body = self._body(request)
        definition = table.definition
        with self.store.lock:
            row_id = str(body.get(definition.primary_key) or uuid.uuid4()).lower()
            if not _GUID.match(row_id):
                raise ODataError(
                    400, ODATA_PARSE, f"Cannot convert the value of '{definition.primary_key}' to Edm.Guid."
                )
            if table.get(row_id) is not None:
                raise ODataError(412, DUPLICATE_RECORD, "A record with matching key values already exists.")
            self.store.insert(table, self.new_row(table, row_id, body))
        return self._written(table, row_id, request, created=True)

    def _patch(self, table: Table, row_id: str, request: Request) -> Response:
        body = self._body(request)
        definition = table.definition
        if_match = request.headers.get("if-match")
        if_none_match = request.headers.get("if-none-match")
        with self.store.lock:
            current = table.get(row_id)
            if if_match is not None:
                if current is None:  # If-Match prevents an accidental create (update-delete-entities...md)
                    raise record_not_found(definition.logical_name, row_id)
                if if_match.strip() != "*" and if_match.strip() != f'W/"{current.get("versionnumber")}"':
                    raise ODataError(
                        412,
                        CONCURRENCY_MISMATCH,
                        "The version of the existing record doesn't match the RowVersion property provided.",
                    )
            if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
                raise ODataError(412, DUPLICATE_RECORD, "A record with matching key values already exists.")
            if current is None:
                self.store.insert(table, self.new_row(table, row_id, body))
                created = True
            else:
                self.store.replace(table, row_id, self.changed_row(table, current, body))
                created = False
        return self._written(table, row_id, request, created=created)

    def _delete(self, table: Table, row_id: str) -> Response:
        with self.store.lock:
            if table.get(row_id) is None:
                raise record_not_found(table.definition.logical_name, row_id)
            self.store.remove(table, row_id)
        return Response(204, {"OData-Version": "4.0"})

    # Row building is shared with the control API (changes "made by a Dynamics user").
    def new_row(self, table: Table, row_id: str, body: dict[str, Any]) -> dict[str, Any]:
        definition = table.definition
        now = _iso_now(self.wall_clock())
        row: dict[str, Any] = {c.name: None for c in definition.columns}
        for column in definition.columns:
            if column.type == "Boolean":
                row[column.name] = False
        row.update(
            {definition.primary_key: row_id, "createdon": now, "modifiedon": now, "statecode": 0, "statuscode": 1}
        )
        if definition.is_activity:
            row["activitytypecode"] = definition.logical_name
        self._apply(table, row, body)
        return row

    def changed_row(self, table: Table, current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        row = dict(current)
        self._apply(table, row, body)
        row["modifiedon"] = _iso_now(self.wall_clock())
        return row

    def _apply(self, table: Table, row: dict[str, Any], body: dict[str, Any]) -> None:
        definition = table.definition
        for key, value in body.items():
            if key.endswith("@odata.bind"):
                self._bind(definition, row, key[: -len("@odata.bind")], value)
                continue
            if key.startswith("@") or "@" in key:
                continue  # instance annotations such as @odata.type
            column = definition.column(key)
            if column is None or column.type == "Lookup":
                raise unknown_property(definition, key)
            if column.read_only or column.name == definition.primary_key:
                continue  # system columns are set by the platform
            row[column.name] = _checked(definition, column, value)
        if definition.logical_name == "contact":
            row["fullname"] = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p) or None

    def _bind(self, definition: TableDef, row: dict[str, Any], navigation: str, value: Any) -> None:
        target = definition.navigation(navigation)
        if target is None:
            raise ODataError(
                400,
                ODATA_PARSE,
                f"An undeclared property '{navigation}' which only has property annotations in the payload but no "
                "property value was found in the payload.",
            )
        column, target_logical = target
        if value is None:
            row[column.name] = None
            return
        match = re.search(r"([A-Za-z_]\w*)\(([^)]*)\)$", str(value))
        target_table = self.store.tables[target_logical]
        if match is None or match.group(1) != target_table.definition.entity_set or not _GUID.match(match.group(2)):
            raise ODataError(
                400, ODATA_PARSE, f"The @odata.bind value of '{navigation}' is not a valid entity reference."
            )
        target_id = match.group(2).lower()
        if target_table.get(target_id) is None:
            raise record_not_found(target_logical, target_id)
        row[column.name] = target_id

    # -- $batch --------------------------------------------------------------------------------
    def _batch(self, request: Request) -> Response:
        try:
            items = multipart.parse_batch(request.body, request.headers.get("content-type", ""))
        except (multipart.MultipartError, UnicodeDecodeError) as exc:
            raise ODataError(400, INVALID_ARGUMENT, f"The batch request is malformed: {exc}") from exc
        count = sum(len(i.parts) if isinstance(i, multipart.ChangeSet) else 1 for i in items)
        if count > MAX_BATCH:
            raise ODataError(
                400,
                INVALID_ARGUMENT,
                f"The number of requests in the batch ({count}) exceeds the limit of {MAX_BATCH}.",
            )
        continue_on_error = "odata.continue-on-error" in parse_prefer([request.headers.get("prefer", "")])
        out: list[multipart.ResponsePart | list[multipart.ResponsePart]] = []
        status = 200
        for item in items:
            failed: multipart.ResponsePart | None = None
            if isinstance(item, multipart.ChangeSet):
                done, failed = self._changeset(item)
                out.append(failed if failed is not None else done)
            else:
                if item.url.startswith("$"):
                    failed = _part(item, error_response(_undeclared(item.url.split("/")[0])))
                    out.append(failed)
                else:
                    response = self._part(item)
                    out.append(_part(item, response))
                    failed = out[-1] if response.status >= 400 else None  # type: ignore[assignment]
            if failed is not None and not continue_on_error:
                # The batch answers with the first failure's error and stops (batch doc, Handling errors).
                status = failed.status
                break
        content_type, body = multipart.format_batch(out)
        return Response(status, {"Content-Type": content_type, "OData-Version": "4.0"}, body)

    def _changeset(
        self, changeset: multipart.ChangeSet
    ) -> tuple[list[multipart.ResponsePart], multipart.ResponsePart | None]:
        done: list[multipart.ResponsePart] = []
        references: dict[str, str] = {}
        failure: list[multipart.ResponsePart] = []
        try:
            with self.store.transaction():
                for part in changeset.parts:
                    if part.method == "GET":
                        raise _Rollback(
                            _part(
                                part,
                                error_response(
                                    ODataError(400, INVALID_ARGUMENT, "GET requests are not allowed in a change set.")
                                ),
                            )
                        )
                    try:
                        resolved = _resolve_references(part, references)
                    except ODataError as error:
                        raise _Rollback(_part(part, error_response(error))) from error
                    response = self._part(resolved)
                    if response.status >= 400:
                        raise _Rollback(_part(part, response))
                    if part.content_id is not None and "OData-EntityId" in response.headers:
                        references[part.content_id] = response.headers["OData-EntityId"]
                    done.append(_part(part, response))
        except _Rollback as rollback:
            failure.append(rollback.response)
        return done, (failure[0] if failure else None)

    def _part(self, part: multipart.RequestPart) -> Response:
        url = part.url
        for prefix in (self.api_root, self.org_url + API_PREFIX, API_PREFIX):
            if url.startswith(prefix):
                url = url[len(prefix) :]
                break
        if url.startswith("http") or url.startswith("/"):
            return error_response(not_found_segment(url))
        path, _, query = url.partition("?")
        return self.handle(Request(part.method, unquote(path), query, part.headers, part.body))


class _Rollback(Exception):
    def __init__(self, response: multipart.ResponsePart) -> None:
        super().__init__("change set failed")
        self.response = response


def _undeclared(reference: str) -> ODataError:
    return ODataError(
        400, INVALID_ARGUMENT, f"Content-ID Reference: '{reference}' does not exist in the batch context."
    )


def _resolve_references(part: multipart.RequestPart, references: dict[str, str]) -> multipart.RequestPart:
    """Replace `$n` in the URL and in @odata.bind values by the URL of the entity created by Content-ID n."""

    def resolve(text: str) -> str:
        name, sep, rest = text[1:].partition("/")
        if name not in references:
            raise _undeclared("$" + name)
        return references[name] + sep + rest

    url = resolve(part.url) if part.url.startswith("$") else part.url
    body = part.body
    if b'"$' in body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key, value in list(data.items()):
                if key.endswith("@odata.bind") and isinstance(value, str) and value.startswith("$"):
                    data[key] = resolve(value)
            body = json.dumps(data).encode()
    return dataclasses.replace(part, url=url, body=body)


def _part(part: multipart.RequestPart, response: Response) -> multipart.ResponsePart:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return multipart.ResponsePart(response.status, headers, response.body, part.content_id)


def _names(columns: list[Column]) -> tuple[str, ...]:
    """Stored column names a projection needs (the version feeds @odata.etag)."""
    return tuple(dict.fromkeys([*(c.name for c in columns), "versionnumber"]))


def _page_size(prefer: dict[str, str]) -> int:
    raw = prefer.get("odata.maxpagesize", "")
    if not raw:
        return MAX_PAGE_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise ODataError(400, INVALID_ARGUMENT, "odata.maxpagesize must be a positive integer.")
    return min(int(raw), MAX_PAGE_SIZE)


def _applied(page_size: int) -> str:
    return f"odata.track-changes,odata.maxpagesize={page_size}"


def _take(scan: Any, page_size: int) -> tuple[list[dict[str, Any]], tuple[str, int] | None]:
    """Up to page_size rows, and the cursor to continue from (None when the scan is exhausted)."""
    rows: list[dict[str, Any]] = []
    cursor: tuple[str, int] | None = None
    for next_cursor, row in scan:
        if len(rows) == page_size:
            return rows, cursor
        rows.append(row)
        cursor = next_cursor
    return rows, None


def _locate(segments: tuple[Any, ...], position: int) -> tuple[Any, int]:
    for segment in segments:
        if position < segment.count:
            return segment, segment.start + position
        position -= segment.count
    raise IndexError(position)


def _seeded_id(segment: Any, index: int) -> str:
    from sandbox.dataverse.generate import guid_for

    return guid_for(index, segment.seed)


def _order(definition: TableDef, rows: list[dict[str, Any]], orderby: str) -> list[dict[str, Any]]:
    for clause in reversed([c.strip() for c in orderby.split(",") if c.strip()]):
        name, _, direction = clause.partition(" ")
        column = definition.by_select_name(name) or definition.column(name)
        if column is None:
            raise unknown_property(definition, name)
        key = column.name
        rows = sorted(
            rows, key=lambda r: (r.get(key) is not None, r.get(key) or 0), reverse=direction.strip().lower() == "desc"
        )
    return rows


def _iso_now(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


_EDM = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "Boolean": "Edm.Boolean",
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "Decimal": "Edm.Decimal",
    "Double": "Edm.Double",
    "Money": "Edm.Decimal",
    "DateTime": "Edm.DateTimeOffset",
    "Uniqueidentifier": "Edm.Guid",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")


def _checked(definition: TableDef, column: Column, value: Any) -> Any:
    """Validate one written value. Messages never echo the value (it may be personal data)."""
    if value is None:
        return None
    kind = column.type
    ok = {
        "String": isinstance(value, str),
        "Memo": isinstance(value, str),
        "Boolean": isinstance(value, bool),
        "Integer": isinstance(value, int) and not isinstance(value, bool),
        "BigInt": isinstance(value, int) and not isinstance(value, bool),
        "Picklist": isinstance(value, int) and not isinstance(value, bool),
        "State": isinstance(value, int) and not isinstance(value, bool),
        "Status": isinstance(value, int) and not isinstance(value, bool),
        "Decimal": isinstance(value, (int, float)) and not isinstance(value, bool),
        "Double": isinstance(value, (int, float)) and not isinstance(value, bool),
        "Money": isinstance(value, (int, float)) and not isinstance(value, bool),
        "DateTime": isinstance(value, str) and bool((_DATE if column.date_only else _DATETIME).match(value)),
        "Uniqueidentifier": isinstance(value, str) and bool(_GUID.match(value)),
    }.get(kind, True)
    if not ok:
        raise ODataError(
            400,
            ODATA_PARSE,
            f"Cannot convert the value of property '{column.name}' to the expected type '{_EDM.get(kind)}'.",
        )
    if column.max_length is not None and isinstance(value, str) and len(value) > column.max_length:
        raise ODataError(
            400,
            VALIDATION,
            f"A validation error occurred.  The length of the '{column.name}' attribute of the "
            f"'{definition.logical_name}' entity exceeded the maximum allowed length of '{column.max_length}'.",
        )
    if kind in ("Picklist", "State", "Status") and column.options and value not in {v for v, _ in column.options}:
        raise ODataError(
            400,
            OPTION_OUT_OF_RANGE,
            f"A validation error occurred. The value {value} of '{column.name}' on record of type "
            f"'{definition.logical_name}' is outside the valid range.",
        )
    return value.lower() if kind == "Uniqueidentifier" else value

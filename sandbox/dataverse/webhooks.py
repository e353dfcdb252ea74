"""Webhooks as Dataverse sends them: registrations, the RemoteExecutionContext body, asynchronous delivery.

Sources: PA use-webhooks.md and register-web-hook.md (reference/dataverse.md section 7).
- A step is registered for a message (Create, Update, Delete) on a table, with optional filtering attributes
  (Update fires only when the request set one of them) and pre/post entity images.
- Asynchronous steps (Mode 1) run after the operation committed, PostOperation (Stage 40).
- The body is the JSON of a RemoteExecutionContext; headers x-ms-dynamics-organization (the environment's
  domain name), x-ms-dynamics-entity-name, x-ms-dynamics-request-name, x-ms-correlation-request-id.
- WebhookKey auth sends `?code=<key>`, HttpQueryString arbitrary query pairs, HttpHeader arbitrary headers.
- Timeout 60 s; any non-2xx answer is a failure; only 502, 503 and 504 get exactly one more attempt.
- A payload over 256 KB goes without ParentContext, InputParameters, PreEntityImages, PostEntityImages and
  with the header x-ms-dynamics-msg-size-exceeded.
[U] marks in the README: value serialisation of booleans, option sets and money, the order of Target
attributes, the header value for size-exceeded, retry delay.

Delivery is deterministic for tests: one worker delivers in order; it can be paused and resumed in another
order, told to deliver the next messages twice, and flushed.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from sandbox.dataverse.schema import TableDef
from sandbox.dataverse.users import BUSINESS_UNIT_ID, ORGANIZATION_ID
from sandbox.dataverse.writes import WriteEvent

AUTH_KINDS = ("WebhookKey", "HttpHeader", "HttpQueryString")
MESSAGES = ("Create", "Update", "Delete")
SIZE_LIMIT = 256 * 1024
RETRIED_STATUSES = frozenset({502, 503, 504})
_CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"


@dataclasses.dataclass(frozen=True)
class Registration:
    id: str  # the sdkmessageprocessingstep id (OwningExtension)
    url: str
    entity: str
    messages: tuple[str, ...]
    filtering_attributes: tuple[str, ...] | None
    auth: str
    value: Any  # WebhookKey: the key; HttpHeader / HttpQueryString: {name: value}
    pre_image: tuple[str, ...] | None  # attribute names, () = all attributes, None = no image
    post_image: tuple[str, ...] | None

    def public(self) -> dict[str, Any]:
        """The registration without its secret (Dataverse never reads auth values back either)."""
        return {
            "id": self.id,
            "url": self.url,
            "entity": self.entity,
            "messages": list(self.messages),
            "filtering_attributes": list(self.filtering_attributes) if self.filtering_attributes else None,
            "auth": self.auth,
            "pre_image": list(self.pre_image) if self.pre_image is not None else None,
            "post_image": list(self.post_image) if self.post_image is not None else None,
        }

    def fires_for(self, event: WriteEvent) -> bool:
        if event.table.logical_name != self.entity or event.message not in self.messages:
            return False
        if event.message == "Update" and self.filtering_attributes:
            return bool(set(self.filtering_attributes) & set(event.changed))
        return True


def make_registration(
    url: str,
    *,
    entity: str = "contact",
    messages: tuple[str, ...] | list[str] = ("Create", "Update"),
    filtering_attributes: tuple[str, ...] | list[str] | str | None = None,
    auth: str = "WebhookKey",
    value: Any = None,
    pre_image: Any = None,
    post_image: Any = None,
    tables: Mapping[str, TableDef],
) -> Registration:
    """Validate a registration; raises ValueError naming every problem."""
    problems: list[str] = []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append("url must be an http(s) URL")
    elif not _loopback(parts.hostname):
        problems.append("url must point at loopback (the sandbox only calls local receivers)")
    table = tables.get(entity)
    if table is None:
        problems.append(f"entity {entity!r} is not a table of the sandbox")
    bad = [m for m in messages if m not in MESSAGES]
    if bad or not messages:
        problems.append(f"messages must be among {list(MESSAGES)}")
    if auth not in AUTH_KINDS:
        problems.append(f"auth must be one of {list(AUTH_KINDS)}")
    elif auth == "WebhookKey" and not isinstance(value, str):
        problems.append("WebhookKey needs value=<the key> (a string)")
    elif auth != "WebhookKey" and not (isinstance(value, Mapping) and value):
        problems.append(f"{auth} needs value={{name: value, ...}}")
    if isinstance(filtering_attributes, str):
        filtering_attributes = [a.strip() for a in filtering_attributes.split(",") if a.strip()]
    images = {"pre_image": _image(pre_image), "post_image": _image(post_image)}
    if table is not None:
        named = list(filtering_attributes or []) + [a for v in images.values() if v for a in v]
        unknown = [a for a in named if table.column(a) is None]
        if unknown:
            problems.append(f"unknown attributes of {entity}: {sorted(set(unknown))}")
    if problems:
        raise ValueError("; ".join(problems))
    return Registration(
        id=str(uuid.uuid4()),
        url=url,
        entity=entity,
        messages=tuple(messages),
        filtering_attributes=tuple(filtering_attributes) if filtering_attributes else None,
        auth=auth,
        value=dict(value) if isinstance(value, Mapping) else value,
        pre_image=images["pre_image"],
        post_image=images["post_image"],
    )


def _image(spec: Any) -> tuple[str, ...] | None:
    """None: no image; True or "*" or []: every attribute; a list or comma string: those attributes."""
    if spec is None or spec is False:
        return None
    if spec is True or spec == "*":
        return ()
    if isinstance(spec, str):
        return tuple(a.strip() for a in spec.split(",") if a.strip())
    return tuple(spec)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the body: a RemoteExecutionContext -----------------------------------------------------------
def ms_date(timestamp: float) -> str:
    return f"/Date({round(timestamp * 1000)})/"


def _iso_to_ms(value: str) -> str:
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:  # date-only values and naive times are UTC here
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return ms_date(parsed.timestamp())


def reference(logical_name: str, row_id: str) -> dict[str, Any]:
    return {
        "__type": f"EntityReference:{_CONTRACTS}",
        "Id": row_id,
        "KeyAttributes": [],
        "LogicalName": logical_name,
        "Name": None,
        "RowVersion": None,
    }


def attribute_value(table: TableDef, name: str, row: Mapping[str, Any]) -> Any:
    """One attribute as the SDK's DataContract JSON carries it [U for booleans, option sets and money]."""
    value = row.get(name)
    column = table.column(name)
    if value is None or column is None:
        return value
    kind = column.type
    if kind in ("Lookup", "Owner"):
        target = row.get(f"{name}@logicalname") or (column.targets[0] if column.targets else "")
        return reference(str(target), str(value))
    if kind in ("Picklist", "State", "Status"):
        return {"__type": f"OptionSetValue:{_CONTRACTS}", "Value": value}
    if kind == "Money":
        return {"__type": f"Money:{_CONTRACTS}", "Value": value}
    if kind == "DateTime" and isinstance(value, str):
        return _iso_to_ms(value)
    return value


def entity(table: TableDef, row_id: str, row: Mapping[str, Any], names: list[str], typed: bool) -> dict[str, Any]:
    attributes = [{"key": n, "value": attribute_value(table, n, row)} for n in names]
    out: dict[str, Any] = {}
    if typed:
        out["__type"] = f"Entity:{_CONTRACTS}"
    out.update(
        {
            "Attributes": attributes,
            "EntityState": None,
            "FormattedValues": [],
            "Id": row_id,
            "KeyAttributes": [],
            "LogicalName": table.logical_name,
            "RelatedEntities": [],
            "RowVersion": None,
        }
    )
    return out


def _target_names(event: WriteEvent) -> list[str]:
    """Create: every attribute the new row has. Update: what the request set, the primary key and the
    platform's modifiedon/modifiedby/modifiedonbehalfby (the shape of the doc's example)."""
    table = event.table
    post = event.post or {}
    if event.message == "Create":
        return [c.name for c in table.columns if post.get(c.name) is not None]
    names = [*event.changed, table.primary_key, "modifiedon", "modifiedby", "modifiedonbehalfby"]
    return [n for n in dict.fromkeys(names) if table.column(n) is not None]


def _image_names(table: TableDef, spec: tuple[str, ...], row: Mapping[str, Any]) -> list[str]:
    names = list(spec) if spec else [c.name for c in table.columns]
    if table.primary_key not in names:
        names.append(table.primary_key)
    return [n for n in names if spec or row.get(n) is not None]


def context(event: WriteEvent, registration: Registration, organization_name: str, operation_id: str) -> dict[str, Any]:
    """The RemoteExecutionContext of one step execution (a plain dict, JSON-ready)."""
    table = event.table
    if event.message == "Delete":
        target: dict[str, Any] = reference(table.logical_name, event.row_id)
        target["__type"] = f"EntityReference:{_CONTRACTS}"
    else:
        target = entity(table, event.row_id, event.post or {}, _target_names(event), typed=True)
        target["RowVersion"] = str((event.post or {}).get("versionnumber"))
    pre_images: list[dict[str, Any]] = []
    post_images: list[dict[str, Any]] = []
    if registration.pre_image is not None and event.pre is not None and event.message != "Create":
        names = _image_names(table, registration.pre_image, event.pre)
        pre_images.append({"key": "PreImage", "value": entity(table, event.row_id, event.pre, names, False)})
    if registration.post_image is not None and event.post is not None:
        names = _image_names(table, registration.post_image, event.post)
        post_images.append({"key": "PostImage", "value": entity(table, event.row_id, event.post, names, False)})
    user = event.caller.user_id
    base = {
        "BusinessUnitId": BUSINESS_UNIT_ID,
        "CorrelationId": event.correlation_id,
        "Depth": 1,
        "InitiatingUserId": user,
        "InputParameters": [{"key": "Target", "value": target}],
        "IsExecutingOffline": False,
        "IsInTransaction": False,
        "IsOfflinePlayback": False,
        "IsolationMode": 1,
        "MessageName": event.message,
        "Mode": 1,
        "OperationCreatedOn": ms_date(event.at),
        "OperationId": operation_id,
        "OrganizationId": ORGANIZATION_ID,
        "OrganizationName": organization_name,
        "OutputParameters": ([{"key": "id", "value": event.row_id}] if event.message == "Create" else []),
        "OwningExtension": {
            "Id": registration.id,
            "KeyAttributes": [],
            "LogicalName": "sdkmessageprocessingstep",
            "Name": None,
            "RowVersion": None,
        },
    }
    parent = copy.deepcopy(base)
    parent.update({"Stage": 30, "ParentContext": None, "PostEntityImages": [], "PreEntityImages": []})
    parent.update(_primary(event))
    body = dict(base)
    body["ParentContext"] = parent
    body["PostEntityImages"] = post_images
    body["PreEntityImages"] = pre_images
    body.update(_primary(event))
    body["Stage"] = 40
    body["UserId"] = user
    parent["UserId"] = user
    return body


def _primary(event: WriteEvent) -> dict[str, Any]:
    return {
        "PrimaryEntityId": event.row_id,
        "PrimaryEntityName": event.table.logical_name,
        "RequestId": None,
        "SecondaryEntityName": "none",
        "SharedVariables": [],
    }


def encode(body: dict[str, Any]) -> tuple[bytes, bool]:
    """(bytes to send, size exceeded?). Serialised like DataContractJsonSerializer: '/' escaped as '\\/'."""
    text = json.dumps(body, separators=(",", ":")).replace("/", "\\/")
    if len(text.encode()) <= SIZE_LIMIT:
        return text.encode(), False
    slim = {
        k: v
        for k, v in body.items()
        if k not in ("ParentContext", "InputParameters", "PreEntityImages", "PostEntityImages")
    }
    return json.dumps(slim, separators=(",", ":")).replace("/", "\\/").encode(), True


def target_url(registration: Registration) -> str:
    parts = urlsplit(registration.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if registration.auth == "WebhookKey":
        query.append(("code", registration.value))
    elif registration.auth == "HttpQueryString":
        query.extend((str(k), str(v)) for k, v in registration.value.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redacted_url(registration: Registration) -> str:
    parts = urlsplit(target_url(registration))
    secret_names = {"code"} if registration.auth == "WebhookKey" else set()
    if registration.auth == "HttpQueryString":
        secret_names = set(registration.value)
    query = [(k, "***" if k in secret_names else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- delivery ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Delivery:
    id: str
    registration: Registration
    message: str
    entity: str
    primary_id: str
    body: bytes
    headers: dict[str, str]
    size_exceeded: bool
    duplicate_of: str | None = None
    status: str = "queued"  # queued, sending, delivered, failed
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    enqueued_at: float = 0.0
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        """The log entry: what was sent (auth values hidden), each attempt's status, the outcome."""
        shown = dict(self.headers)
        if self.registration.auth == "HttpHeader":
            shown.update({name: "***" for name in self.registration.value})
        return {
            "id": self.id,
            "registration_id": self.registration.id,
            "message": self.message,
            "entity": self.entity,
            "primary_id": self.primary_id,
            "url": _redacted_url(self.registration),
            "headers": shown,
            "body": json.loads(self.body),
            "size_exceeded": self.size_exceeded,
            "duplicate_of": self.duplicate_of,
            "status": self.status,
            "attempts": list(self.attempts),
            "enqueued_at": self.enqueued_at,
            "finished_at": self.finished_at,
        }


class Dispatcher:
    """Turns committed writes into deliveries and sends them from one background thread."""

    def __init__(
        self,
        *,
        organization_name: str,
        organization_host: str,
        clock: Callable[[], float],
        timeout: float = 60.0,
        send: Callable[..., Any] | None = None,
    ) -> None:
        self.organization_name = organization_name
        self.organization_host = organization_host
        self.clock = clock
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # loopback receivers: never through a proxy
        self._send = send or self._session.post
        self.registrations: dict[str, Registration] = {}
        self.log: list[Delivery] = []
        self._queue: collections.deque[Delivery] = collections.deque()
        self._cond = threading.Condition()
        self._paused = False
        self._duplicates = 0
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- registrations ---------------------------------------------------------------------------
    def register(self, registration: Registration) -> str:
        with self._cond:
            self.registrations[registration.id] = registration
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dataverse-webhooks", daemon=True)
                self._thread.start()
        return registration.id

    def unregister(self, registration_id: str) -> None:
        with self._cond:
            if self.registrations.pop(registration_id, None) is None:
                raise KeyError(f"no webhook registration {registration_id}")

    # -- events (called under the store lock, after commit: only queue work here) ----------------
    def on_write(self, event: WriteEvent) -> None:
        with self._cond:
            matching = [r for r in self.registrations.values() if r.fires_for(event)]
            for registration in matching:
                operation_id = str(uuid.uuid4())
                body, exceeded = encode(context(event, registration, self.organization_name, operation_id))
                headers = {
                    "Content-Type": "application/json",
                    "x-ms-dynamics-organization": self.organization_host,
                    "x-ms-dynamics-entity-name": event.table.logical_name,
                    "x-ms-dynamics-request-name": event.message,
                    "x-ms-correlation-request-id": event.correlation_id,
                }
                if exceeded:
                    headers["x-ms-dynamics-msg-size-exceeded"] = "true"  # [U] the header's value
                if registration.auth == "HttpHeader":
                    headers.update({str(k): str(v) for k, v in registration.value.items()})
                delivery = Delivery(
                    str(uuid.uuid4()),
                    registration,
                    event.message,
                    event.table.logical_name,
                    event.row_id,
                    body,
                    headers,
                    exceeded,
                    enqueued_at=self.clock(),
                )
                self._enqueue(delivery)
                if self._duplicates > 0:
                    self._duplicates -= 1
                    again = dataclasses.replace(delivery, id=str(uuid.uuid4()), duplicate_of=delivery.id, attempts=[])
                    self._enqueue(again)
            if matching:
                self._cond.notify_all()

    def _enqueue(self, delivery: Delivery) -> None:
        self.log.append(delivery)
        self._queue.append(delivery)

    # -- knobs -------------------------------------------------------------------------------------
    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self, order: str | list[str] = "fifo") -> None:
        """Deliver what is queued: "fifo", "lifo" (newest first) or an explicit list of delivery ids first."""
        with self._cond:
            queued = list(self._queue)
            if order == "lifo":
                queued.reverse()
            elif isinstance(order, list):
                position = {delivery_id: i for i, delivery_id in enumerate(order)}
                unknown = set(order) - {d.id for d in queued}
                if unknown:
                    raise KeyError(f"not queued: {sorted(unknown)}")
                queued.sort(key=lambda d: position.get(d.id, len(position)))
            elif order != "fifo":
                raise ValueError("order must be 'fifo', 'lifo' or a list of queued delivery ids")
            self._queue = collections.deque(queued)
            self._paused = False
            self._cond.notify_all()

    def duplicate_next(self, count: int = 1) -> None:
        with self._cond:
            self._duplicates += count

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery is done (delivered or failed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                if self._paused and self._queue and not self._busy:
                    raise RuntimeError("webhook delivery is paused; resume it before flushing")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._queue)} webhook deliveries still queued after {timeout} s")
                self._cond.wait(min(left, 0.05))

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [d.public() for d in self.log]

    def clear_log(self) -> None:
        with self._cond:
            self.log = [d for d in self.log if d.status in ("queued", "sending")]

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._session.close()

    # -- the worker ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (self._paused or not self._queue):
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                delivery = self._queue.popleft()
                delivery.status = "sending"
                self._busy = True
            try:
                self._deliver(delivery)
            finally:
                with self._cond:
                    self._busy = False
                    delivery.finished_at = self.clock()
                    self._cond.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        url = target_url(delivery.registration)
        for attempt in (1, 2):
            started = time.monotonic()
            status, error = 0, None
            try:
                response = self._send(url, data=delivery.body, headers=delivery.headers, timeout=self.timeout)
                status = int(response.status_code)
            except requests.Timeout:
                error = "timeout"
            except requests.RequestException as exc:
                error = type(exc).__name__
            delivery.attempts.append(
                {"status": status, "error": error, "elapsed_ms": round((time.monotonic() - started) * 1000, 1)}
            )
            if 200 <= status < 300:
                delivery.status = "delivered"
                return
            if attempt == 1 and status in RETRIED_STATUSES:
                continue  # the one documented retry [U: Dataverse's delay before it]
            break
        delivery.status = "failed"

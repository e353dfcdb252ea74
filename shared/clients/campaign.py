"""Adobe Campaign Standard REST client: profiles, custom resources, metadata and workflow signals.

Facts used here come from Adobe's ACS API docs (AdobeDocs/campaign-standard.en, help/api/using/*.md):

- Base URL `https://mc.adobe.io/<ORGANIZATION>/campaign/`; every call carries `Authorization: Bearer`,
  `X-Api-Key` and `Cache-Control: no-cache` (setting-up-api-access.md).
- Records are addressed by the `href` Campaign returns; URLs are never built from PKeys (must-read.md).
  Campaign has no upsert: callers look a record up by its custom key filter, then PATCH or POST.
- Lists page with `_lineCount` and the opaque `next.href`; tables above XtkBigTableThreshold only page
  with `_forcePagination=true` (pagination.md).
- Metadata: `GET <root>/resourceType/<name>` lists attributes (`apiName`, `type`, `resType`) and a
  `filters.href` (metadata-mechanism.md, filtering.md).
- External signals: read the execution, POST `{source, parameters}` to the activity's `trigger.href`;
  at most one trigger every 10 minutes (triggering-a-signal-activity.md).

Error bodies can echo record values (e-mail addresses, names): only codes and whitelisted schema
names (attribute/parameter identifiers) ever reach an exception message or a log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from shared.auth.ims_token import ImsTokenProvider
from shared.clients.ttl_cache import TtlCache
from shared.http import ApiError, HttpClient, Outcome, RetryPolicy, TransportError, build_session, classify_status

log = logging.getLogger("sync.campaign")

PROFILE_AND_SERVICES = "profileAndServices"
PROFILE_AND_SERVICES_EXT = "profileAndServicesExt"
CUSTOM_RESOURCES = "customResources"

SIGNAL_WINDOW_SECONDS = 600.0  # "cannot be triggered more often than every 10 minutes"
SIGNAL_TOO_SOON = "SIGNAL_TOO_SOON"  # ApiError.code of a trigger refused by the 10-minute rule

# Factory opt-out attributes: the D365 pages say denyList*, the data model and API samples blackList*.
OPTOUT_PREFIXES = ("denyList", "blackList")

# Campaign relays PostgreSQL's unique violation under the generic PGS-220000 with no code of its own; the
# classifier names it once, here, so callers test a code and never the message text.
DUPLICATE_KEY = "duplicate-key"
_UNIQUE_VIOLATION = re.compile(r"duplicate key value violates unique constraint", re.IGNORECASE)
_GENERIC_CODES = frozenset({"RST-360011"})  # "An error has occurred": the prefix of every engine error

_ENGINE_CODE = re.compile(r"\b([A-Z]{3})-(\d{6})\b")
_TOO_SOON = re.compile(r"10 minutes|too many triggers|too often", re.IGNORECASE)
# Schema identifiers worth keeping from an engine message; values are never kept.
_SAFE_DETAILS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"'(\w+)' property is not valid for the '(\w+)' resource"), "unknown attribute '{0}' on '{1}'"),
    (re.compile(r"Cannot update the '(\w+)' property that is read-only"), "read-only attribute '{0}'"),
    (re.compile(r"'(\w+)' parameter isn't defined in signal activity"), "undeclared signal parameter '{0}'"),
    (re.compile(r"value of the '(\w+)' (?:property|parameter) is not valid"), "invalid value for '{0}'"),
    (re.compile(r"duplicate key", re.IGNORECASE), "duplicate key"),
    (re.compile(r"is not a valid constant"), "unknown or invalid PKey"),
    (re.compile(r"'(\w+)' link target does not exist"), "link '{0}' points to no record"),
)


class CampaignConfigError(Exception):
    """The configuration does not match this Campaign instance (unknown attribute, type, filter...)."""

    def __init__(self, resource: str, problems: list[str]) -> None:
        self.resource = resource
        self.problems = list(problems)
        super().__init__(f"Campaign resource '{resource}': " + "; ".join(self.problems))


class SignalRateLimitedError(ApiError):
    """A signal still refused by the 10-minute rule after every allowed wait."""


# --------------------------------------------------------------------------- classification


def _engine_codes(text: str) -> list[str]:
    return ["-".join(m) for m in _ENGINE_CODE.findall(text)]


def _safe_summary(text: str) -> str:
    found = []
    for pattern, template in _SAFE_DETAILS:
        for match in pattern.finditer(text):
            found.append(template.format(*match.groups()))
    return "; ".join(dict.fromkeys(found))


def campaign_classifier(response: requests.Response) -> tuple[Outcome, str, str]:
    """(outcome, code, safe message) for a Campaign response. See module doc for the error shapes.

    - Gateway (Adobe I/O) errors are JSON `{"error_code", "message"}`: 401013 token invalid or expired
      -> AUTH_EXPIRED; 403023 (IMS provisioning), 403003 (API key) and other 403 -> FATAL
      (troubleshooting.md). `{"code":500,"message":"Oops... Check your URI"}` means a wrong organization
      in the URL -> FATAL.
    - Engine errors carry `RST-`/`XTK-` codes in their text; on 400/404 they speak of the one record ->
      RECORD_ERROR. 5xx -> RETRY, 429 -> RATE_LIMITED.
    - A trigger refused by the 10-minute rule -> code SIGNAL_TOO_SOON (whatever the status: the docs
      do not give it), left to WorkflowClient.
    """
    status = response.status_code
    if 200 <= status < 400:
        return Outcome.OK, "", ""
    text = response.text or ""
    gateway_code = ""
    gateway_message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        gateway_code = str(body.get("error_code") or "")
        message_field = body.get("message")
        if gateway_code and isinstance(message_field, str):
            gateway_message = message_field[:120]  # fixed gateway texts, not record data
        if isinstance(message_field, str):
            text = message_field
    codes = _engine_codes(text)
    summary = _safe_summary(text)

    if _TOO_SOON.search(text):
        # Not retryable at the HTTP level: the wait is a whole window, far beyond HttpClient's retry
        # budget. WorkflowClient.trigger_signal owns that wait and reports RATE_LIMITED if it gives up.
        return Outcome.FATAL, SIGNAL_TOO_SOON, "external signal refused: one trigger per 10 minutes"
    if gateway_code:
        message = f"gateway {gateway_code}: {gateway_message}"
        if status == 401:
            return Outcome.AUTH_EXPIRED, gateway_code, message
        if status == 403:
            return Outcome.FATAL, gateway_code, message
        return classify_status(status), gateway_code, message
    if status >= 500 and "Check your URI" in text:
        return Outcome.FATAL, str(status), "gateway: unknown organization or URI (check the base URL)"

    outcome = classify_status(status)
    specific = [c for c in codes if c not in _GENERIC_CODES]
    code = specific[0] if specific else (codes[0] if codes else "")
    if outcome is Outcome.RECORD_ERROR and _UNIQUE_VIOLATION.search(text):
        code = DUPLICATE_KEY
    parts = [summary] if summary else []
    if codes:
        parts.append("[" + " ".join(codes) + "]")
    message = " ".join(parts) or (response.reason or f"HTTP {status}")
    return outcome, code, message


def is_duplicate_key(error: ApiError) -> bool:
    """True when Campaign refused a create because the custom key already exists."""
    return error.code == DUPLICATE_KEY


def _configuration_problem(error: ApiError) -> ApiError:
    """A 400/404 on a collection or filter URL speaks of the configuration or the service, not of one record."""
    if error.outcome is not Outcome.RECORD_ERROR:
        return error
    return ApiError(Outcome.FATAL, error.status, error.message, code=error.code, method=error.method, url=error.url)


# --------------------------------------------------------------------------- values


@dataclasses.dataclass(frozen=True)
class Record:
    pkey: str
    href: str
    body: dict[str, Any]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Record:
        return cls(pkey=str(body.get("PKey", "")), href=str(body.get("href", "")), body=dict(body))


@dataclasses.dataclass(frozen=True)
class Written:
    """Where an upsert by key left the record, and whether it made it."""

    href: str
    created: bool


@dataclasses.dataclass(frozen=True)
class Attribute:
    api_name: str
    type: str  # high-level type: string, number, boolean, date, datetime, enumeration, link...
    res_type: str  # technical type: string, memo, long, double, byte, date, datetime, boolean...
    read_only: bool = False
    values: tuple[str, ...] = ()  # enumeration value names
    length: int | None = None  # maximum characters of a string attribute, when the metadata gives it


@dataclasses.dataclass(frozen=True)
class ResourceType:
    name: str
    details: Mapping[str, Attribute]
    filters: Mapping[str, tuple[str, ...]]  # filter name -> its parameter names

    @property
    def attributes(self) -> dict[str, str]:
        """apiName -> high-level type (string, number, boolean, date, datetime, enumeration, link...)."""
        return {name: attr.type for name, attr in self.details.items()}

    @property
    def res_types(self) -> dict[str, str]:
        """apiName -> technical type (string, memo, byte, short, long, int64, float, double, date...)."""
        return {name: attr.res_type for name, attr in self.details.items()}


@dataclasses.dataclass(frozen=True)
class WorkflowExecution:
    pkey: str
    status: str
    triggers: Mapping[str, str]  # signal activity name -> trigger href
    body: dict[str, Any]


_INTEGER_RANK = {"byte": 1, "short": 2, "long": 3, "int64": 4}
_FLOATS = frozenset({"float", "double"})


def type_compatible(expected: str, attribute: Attribute) -> bool:
    """Can values of the configured `expected` type be written into `attribute`?

    `expected` is a technical type (string, boolean, byte, short, long, int64, float, double, date,
    datetime, memo, uuid) or a high-level one (number, enumeration, link).
    """
    actual = attribute.res_type
    if expected in (attribute.type, actual):
        return True
    if expected in _INTEGER_RANK:
        return actual in _FLOATS or (actual in _INTEGER_RANK and _INTEGER_RANK[expected] <= _INTEGER_RANK[actual])
    if expected in _FLOATS:
        return actual in _FLOATS
    if expected == "number":
        return actual in _FLOATS or actual in _INTEGER_RANK
    if expected in ("string", "memo", "uuid"):
        # Enumerations are written with their value names (strings).
        return actual in ("string", "memo", "uuid") or attribute.type == "enumeration"
    if expected == "date":
        return actual == "datetime"
    return False


# --------------------------------------------------------------------------- clients


class CampaignClient:
    """Entry point: one per Campaign instance. `http` should use `campaign_classifier` and an IMS token."""

    def __init__(self, base_url: str, http: HttpClient, api_key: str) -> None:
        if not api_key:
            raise ValueError("Campaign API key (the IMS client id) is required")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.http = http
        self.api_key = api_key
        parts = urllib.parse.urlsplit(self.base_url)
        self._origin = (parts.scheme, parts.netloc)
        self._types: TtlCache[tuple[str, str], ResourceType] = TtlCache()

    # -- plumbing

    def url(self, path: str) -> str:
        return urllib.parse.urljoin(self.base_url, path.lstrip("/"))

    def check_href(self, href: str) -> str:
        """Hrefs come from responses; never send our token to another host."""
        parts = urllib.parse.urlsplit(href)
        if (parts.scheme, parts.netloc) != self._origin:
            raise ValueError("href does not belong to the configured Campaign base URL")
        return href

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        allow: frozenset[int] = frozenset(),
        idempotent: bool = True,
    ) -> requests.Response:
        headers = {"X-Api-Key": self.api_key, "Cache-Control": "no-cache", "Accept": "application/json"}
        if json_body is not None:
            headers["Content-Type"] = "application/json;charset=utf-8"
        return self.http.request(
            method, self.check_href(url), headers=headers, params=params, json=json_body, allow=allow,
            idempotent=idempotent,
        )  # fmt: skip

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        return _json(self.request("GET", url, params=params))

    # -- resources

    def resource(self, name: str, *, root: str | None = None) -> ResourceClient:
        """`profile` or `cus<Name>`. Default root is profileAndServicesExt: it serves extended profile
        fields, custom resources linked to profile and custom filters. Pass root=PROFILE_AND_SERVICES
        for standard profile fields only, or CUSTOM_RESOURCES for resources not linked to profile."""
        return ResourceClient(self, name, root or PROFILE_AND_SERVICES_EXT)

    def resource_type(self, name: str, *, root: str | None = None, refresh: bool = False) -> ResourceType:
        root = root or PROFILE_AND_SERVICES_EXT
        key = (root, name)
        cached = None if refresh else self._types.get(key)
        if cached is not None:
            return cached
        body = self.get_json(self.url(f"{root}/resourceType/{name}"))
        filters: dict[str, tuple[str, ...]] = {}
        filters_href = (body.get("filters") or {}).get("href")
        if filters_href:
            filters = _parse_filters(self.get_json(filters_href))
        return self._types.put(key, ResourceType(name=name, details=_parse_attributes(body), filters=filters))

    def validate_targets(
        self, resource: str, targets: Mapping[str, str | None], *, root: str | None = None
    ) -> dict[str, str]:
        """Check mapping targets against the instance's metadata before any write.

        `targets` maps configured attribute names to an expected type (None: any type). Opt-out
        attributes may use either spelling. Returns configured name -> the instance's apiName.
        Raises CampaignConfigError listing every unknown, read-only or type-mismatched attribute.
        """
        rtype = self.resource_type(resource, root=root)
        resolved: dict[str, str] = {}
        problems: list[str] = []
        for configured, expected in targets.items():
            actual_name = _resolve_optout(configured, rtype) or configured
            attribute = rtype.details.get(actual_name)
            if attribute is None:
                problems.append(f"unknown target attribute '{configured}'")
                continue
            if attribute.read_only:
                problems.append(f"target attribute '{configured}' is read-only")
                continue
            if expected and not type_compatible(expected, attribute):
                problems.append(
                    f"target attribute '{configured}' is {attribute.type}/{attribute.res_type}, "
                    f"mapping expects {expected}"
                )
                continue
            resolved[configured] = actual_name
        if problems:
            raise CampaignConfigError(resource, problems)
        return resolved

    def validate_filter(self, resource: str, filter_name: str, param_name: str, *, root: str | None = None) -> None:
        """Check that a (custom key) lookup filter and its parameter exist on the instance."""
        filters = self.resource_type(resource, root=root).filters
        if filter_name not in filters:
            raise CampaignConfigError(resource, [f"unknown filter '{filter_name}'"])
        if filters[filter_name] and param_name not in filters[filter_name]:
            raise CampaignConfigError(
                resource,
                [f"filter '{filter_name}' has no parameter '{param_name}' (has: {', '.join(filters[filter_name])})"],
            )

    def resolve_optout_attribute(self, name: str) -> str:
        """denyList*/blackList* -> the spelling this instance's profile metadata uses."""
        rtype = self.resource_type("profile")
        resolved = _resolve_optout(name, rtype)
        if resolved is None:
            if name in rtype.details:
                return name
            raise CampaignConfigError("profile", [f"unknown opt-out attribute '{name}'"])
        return resolved

    def workflows(self, **kwargs: Any) -> WorkflowClient:
        return WorkflowClient(self, **kwargs)


@dataclasses.dataclass(frozen=True)
class KeyFilter:
    """A custom key filter and its parameter, e.g. KeyFilter("byExternalId", "externalId_parameter")."""

    filter: str
    parameter: str


class ResourceClient:
    """CRUD, lookups and listing on one resource (profile or cus<Name>) under one root."""

    def __init__(self, client: CampaignClient, name: str, root: str) -> None:
        self.client = client
        self.name = name
        self.root = root
        self.collection_url = client.url(f"{root}/{name}")

    def create(self, body: Mapping[str, Any]) -> Record:
        """POST a new record (201). Campaign has no upsert: look the key up first (see upsert_by_key).

        Not resent after a lost connection (TransportError): the record may exist; look it up again.
        A 404 on the collection means the resource does not exist: a configuration problem, not the record's."""
        try:
            response = self.client.request("POST", self.collection_url, json_body=dict(body), idempotent=False)
        except ApiError as exc:
            raise (_configuration_problem(exc) if exc.status == 404 else exc) from None
        return Record.from_json(_json(response))

    def upsert_by_key(self, key: KeyFilter, value: str, body: Mapping[str, Any], *, href: str | None = None) -> Written:
        """Write a record identified by its custom key, never creating it twice.

        Campaign has no upsert: a known `href` is PATCHed (a stale one that answers 404 is resolved again);
        otherwise the key is looked up first, so a write whose caller lost track of it becomes a PATCH. A
        POST whose answer was lost (TransportError) or that met an existing key (duplicate key) is followed
        by another lookup, never by a blind second POST."""
        if href is not None:
            try:
                return Written(self.patch(href, body).href or href, created=False)
            except ApiError as exc:
                if exc.status != 404:
                    raise
        found = self.find_href(key, value)
        if found is not None:
            return Written(self.patch(found, body).href or found, created=False)
        try:
            return Written(self.create(body).href, created=True)
        except ApiError as exc:
            if not (isinstance(exc, TransportError) or is_duplicate_key(exc)):
                raise
        found = self.find_href(key, value)
        if found is not None:
            return Written(self.patch(found, body).href or found, created=True)
        return Written(self.create(body).href, created=True)

    def delete_by_key(self, key: KeyFilter, value: str, *, href: str | None = None) -> bool:
        """Delete the record with this key (its known href, else a lookup); False when there was none."""
        target = href or self.find_href(key, value)
        if target is None:
            return False
        return self.delete(target, missing_ok=True)

    def find_href(self, key: KeyFilter, value: str) -> str | None:
        """The href of the record whose custom key is `value`, if any.

        Several matches would mean the key is not unique on the instance; the first wins and it is logged."""
        found = self.find_by(key.filter, key.parameter, value)
        if len(found) > 1:
            log.warning("campaign.key_not_unique resource=%s filter=%s matches=%d", self.name, key.filter, len(found))
        return found[0].href if found else None

    def get(self, href: str) -> Record:
        body = _json(self.client.request("GET", href))
        # Some doc samples wrap a single record in "content"; accept both shapes.
        if isinstance(body, dict) and "PKey" not in body and isinstance(body.get("content"), list):
            content = body["content"]
            body = content[0] if content else {}
        return Record.from_json(body)

    def patch(self, href: str, body: Mapping[str, Any]) -> Record:
        """PATCH the record's href; Campaign answers `{PKey, href}`."""
        return Record.from_json(_json(self.client.request("PATCH", href, json_body=dict(body))))

    def delete(self, href: str, *, missing_ok: bool = False) -> bool:
        """DELETE by href. With missing_ok, a record already gone (404) counts as deleted: returns False."""
        try:
            self.client.request("DELETE", href)
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return False
            raise
        return True

    def find_by(self, filter_name: str, param_name: str, value: Any) -> list[Record]:
        """Records matching a filter, e.g. find_by("byExternalId", "externalId_parameter", id).

        A 400 or 404 on a filter URL means the filter or its parameter is wrong: the run stops."""
        url = f"{self.collection_url}/{filter_name}"
        try:
            return list(self._pages(url, {param_name: value}))
        except ApiError as exc:
            raise _configuration_problem(exc) from None

    def find_by_email(self, email: str) -> list[Record]:
        return self.find_by("byEmail", "email", email)

    def iter_all(self, *, line_count: int = 100, force_pagination: bool = True) -> Iterator[Record]:
        """Every record, page by page, following `next.href`.

        force_pagination defaults to True: without it Campaign drops `next` on tables above
        XtkBigTableThreshold (100,000 rows by default) and the listing silently stops after one page.
        """
        params: dict[str, Any] = {"_lineCount": line_count}
        if force_pagination:
            params["_forcePagination"] = "true"
        return self._pages(self.collection_url, params)

    def count(self) -> int:
        """Record count through the list's `count.href`."""
        first = self.client.get_json(self.collection_url, {"_lineCount": 1})
        href = (first.get("count") or {}).get("href")
        if not href:
            raise ApiError(Outcome.FATAL, 200, "list response has no count.href", method="GET", url=self.collection_url)
        return int(self.client.get_json(href)["count"])

    def _pages(self, url: str, params: Mapping[str, Any] | None) -> Iterator[Record]:
        next_url: str | None = url
        next_params = params
        while next_url:
            page = self.client.get_json(next_url, next_params)
            for item in page.get("content") or []:
                yield Record.from_json(item)
            # The next href carries an opaque _lineStart token and every parameter: follow it as is.
            next_url = (page.get("next") or {}).get("href")
            next_params = None


class WorkflowClient:
    """Workflow executions: status, and external-signal triggers under the 10-minute rule.

    The rule is enforced on both sides: this client waits until `signal_window` has passed since its
    own last trigger of an activity, and when Campaign still refuses (another process triggered, or
    this one restarted) it logs why, waits a whole window and tries again, at most `max_waits` times,
    then raises SignalRateLimitedError. It never gives up silently.
    """

    def __init__(
        self,
        client: CampaignClient,
        *,
        signal_window: float = SIGNAL_WINDOW_SECONDS,
        max_waits: int = 3,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.client = client
        self.signal_window = signal_window
        self.max_waits = max_waits
        self.sleep = sleep or client.http.sleep
        self.clock = clock or client.http.clock
        self._last_trigger: dict[tuple[str, str], float] = {}

    def execution(self, workflow_id: str) -> WorkflowExecution:
        body = self.client.get_json(self.client.url(f"workflow/execution/{workflow_id}"))
        activities = ((body.get("activities") or {}).get("activity")) or {}
        triggers = {
            name: str(activity["trigger"]["href"])
            for name, activity in activities.items()
            if isinstance(activity, dict)
            and isinstance(activity.get("trigger"), dict)
            and activity["trigger"].get("href")
        }
        # The status field of an execution is not documented [U]: accept the names seen in the wild.
        status = str(body.get("state") or body.get("status") or body.get("execState") or "")
        return WorkflowExecution(pkey=str(body.get("PKey", "")), status=status, triggers=triggers, body=body)

    def workflow_status(self, workflow_id: str) -> str:
        return self.execution(workflow_id).status

    def trigger_signal(
        self, workflow_id: str, activity_name: str, source: str, parameters: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Trigger an External signal activity; returns Campaign's (undocumented) JSON answer or {}."""
        if not source:
            raise ValueError("'source' is mandatory for a signal trigger")
        key = (workflow_id, activity_name)
        payload: dict[str, Any] = {"source": source}
        if parameters:
            payload["parameters"] = dict(parameters)
        waits = 0
        while True:
            self._respect_window(key)
            href = self._trigger_href(workflow_id, activity_name)
            try:
                response = self.client.request("POST", href, json_body=payload)
                break
            except ApiError as exc:
                if exc.code != SIGNAL_TOO_SOON:
                    if exc.outcome is Outcome.RECORD_ERROR:
                        # A trigger is no record: an undeclared parameter, a missing source or a stopped
                        # workflow is a configuration problem that retrying later will not fix.
                        raise ApiError(
                            Outcome.FATAL, exc.status, exc.message, code=exc.code, method="POST", url=href
                        ) from exc
                    raise
                waits += 1
                if waits > self.max_waits:
                    raise SignalRateLimitedError(
                        Outcome.RATE_LIMITED,
                        exc.status,
                        f"signal '{activity_name}' of workflow '{workflow_id}' still refused after {self.max_waits} "
                        f"waits of {self.signal_window:.0f}s (Campaign allows one trigger per 10 minutes)",
                        code=SIGNAL_TOO_SOON,
                        method="POST",
                        url=href,
                    ) from exc
                log.warning(
                    "campaign.signal_wait %s",
                    json.dumps(
                        {
                            "workflow": workflow_id,
                            "activity": activity_name,
                            "wait_s": self.signal_window,
                            "attempt": waits,
                            "reason": "Campaign refused the trigger: one trigger per 10 minutes; waiting a window",
                        }
                    ),
                )
                self.sleep(self.signal_window)
        self._last_trigger[key] = self.clock()
        log.info("campaign.signal_triggered %s", json.dumps({"workflow": workflow_id, "activity": activity_name}))
        try:
            answer = response.json()
        except ValueError:
            return {}
        return answer if isinstance(answer, dict) else {}

    def command(self, workflow_id: str, method: str) -> None:
        """start, pause, resume or stop (asynchronous in Campaign; controlling-a-workflow.md)."""
        if method not in ("start", "pause", "resume", "stop"):
            raise ValueError(f"unknown workflow command {method!r}")
        self.client.request(
            "POST", self.client.url(f"workflow/execution/{workflow_id}/commands"), json_body={"method": method}
        )

    def _respect_window(self, key: tuple[str, str]) -> None:
        last = self._last_trigger.get(key)
        if last is None:
            return
        remaining = self.signal_window - (self.clock() - last)
        if remaining > 0:
            log.info(
                "campaign.signal_wait %s",
                json.dumps(
                    {
                        "workflow": key[0],
                        "activity": key[1],
                        "wait_s": round(remaining, 3),
                        "reason": "own last trigger",
                    }
                ),
            )
            self.sleep(remaining)

    def _trigger_href(self, workflow_id: str, activity_name: str) -> str:
        execution = self.execution(workflow_id)
        href = execution.triggers.get(activity_name)
        if not href:
            raise CampaignConfigError(
                f"workflow/{workflow_id}",
                [f"no external signal activity '{activity_name}' (has: {', '.join(execution.triggers) or 'none'})"],
            )
        return href


# --------------------------------------------------------------------------- wiring


def build_campaign_client(
    base_url: str,
    ims_url: str,
    client_id: str,
    client_secret: str,
    scopes: str | list[str],
    *,
    session: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    timeout: tuple[float, float] = (10.0, 120.0),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> CampaignClient:
    """A CampaignClient with an IMS token provider, the Campaign classifier and one pooled session."""
    session = session or build_session()
    tokens = ImsTokenProvider(ims_url, client_id, client_secret, scopes, session=session, clock=clock, sleep=sleep)
    http = HttpClient(
        session=session,
        token_provider=tokens,
        classifier=campaign_classifier,
        policy=policy,
        timeout=timeout,
        sleep=sleep,
        clock=clock,
    )
    return CampaignClient(base_url, http, api_key=client_id)


# --------------------------------------------------------------------------- parsing helpers


def _json(response: requests.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(
            Outcome.RETRY,
            response.status_code,
            "response is not JSON",
            method=str(response.request.method or "") if response.request is not None else "",
            url=response.url,
        ) from exc


def _parse_attributes(body: Mapping[str, Any]) -> dict[str, Attribute]:
    content = body.get("content") or {}
    items = content.values() if isinstance(content, dict) else content
    result: dict[str, Attribute] = {}
    for item in items:
        if not isinstance(item, dict) or not item.get("apiName"):
            continue
        values = item.get("values") or {}
        names = tuple(values) if isinstance(values, dict) else tuple(str(v.get("name", v)) for v in values)
        name = str(item["apiName"])
        result[name] = Attribute(
            api_name=name,
            type=str(item.get("type", "")),
            res_type=str(item.get("resType", item.get("type", ""))),
            read_only=bool(item.get("readOnly", False)),
            values=names,
            length=int(item["length"]) if isinstance(item.get("length"), int) and item["length"] > 0 else None,
        )
    return result


def _parse_filters(body: Any) -> dict[str, tuple[str, ...]]:
    """Filter metadata: {name: {"data": ".../byX?param=$value&..."}}; parameters come from `data`."""
    filters: dict[str, tuple[str, ...]] = {}
    if not isinstance(body, dict):
        return filters
    for name, meta in body.items():
        if not isinstance(meta, dict):
            continue
        query = urllib.parse.urlsplit(str(meta.get("data", ""))).query
        filters[name] = tuple(k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True))
    return filters


def _resolve_optout(name: str, rtype: ResourceType) -> str | None:
    for prefix in OPTOUT_PREFIXES:
        if name.startswith(prefix):
            suffix = name[len(prefix) :]
            for candidate in (p + suffix for p in OPTOUT_PREFIXES):
                if candidate in rtype.details:
                    return candidate
            return None
    return None

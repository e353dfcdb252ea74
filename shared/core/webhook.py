"""A Dataverse webhook POST (a RemoteExecutionContext) -> one queue message, or a precise refusal. No I/O.

The body is the JSON of the plug-in execution context Dataverse posts to a webhook step (README
"Opt-out behaviour", docs/optout.md): MessageName, PrimaryEntityName, PrimaryEntityId, InitiatingUserId,
InputParameters[Target] (the Entity with the attributes the request set, plus modifiedon, modifiedby...),
optional PreEntityImages / PostEntityImages. Dates are `/Date(<ms>)/`. Over 256 KB Dataverse drops
InputParameters and the images and sends `x-ms-dynamics-msg-size-exceeded`: then only the contact id is
known, and the message asks the processor to read the contact.

The queue message carries ids, booleans and times only: no names, no e-mail addresses.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from shared.core.parse import parse_guid

MESSAGE_VERSION = 1
CHANGE, FETCH = "change", "fetch"  # a change with values and its position, or "read this contact"
HANDLED_MESSAGES = ("Create", "Update")
IGNORED_MESSAGES = ("Delete",)  # a deleted contact has no opt-out left to carry; answered 200 so nothing retries
SIZE_EXCEEDED_HEADER = "x-ms-dynamics-msg-size-exceeded"
ENTITY = "contact"
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


@dataclasses.dataclass(frozen=True)
class Rejected:
    """4xx: the request is not a usable contact change; nothing is queued."""

    status: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Ignored:
    """2xx: a well-formed notification with nothing to carry (Dataverse must not retry it)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class OptOutMessage:
    """What the receiver queues and the processor applies."""

    kind: str  # change | fetch
    contact: str  # contactid, lower case
    values: Mapping[str, bool] = dataclasses.field(default_factory=dict)  # Dynamics column -> value
    modifiedon: float | None = None  # epoch seconds
    version: int | None = None  # row version
    user: str | None = None  # InitiatingUserId: who made the change
    message: str = ""  # Create | Update
    correlation: str = ""  # x-ms-correlation-request-id / CorrelationId, for tracing
    why: str = ""  # for a fetch: why the body was not enough

    def to_json(self) -> str:
        body: dict[str, Any] = {"v": MESSAGE_VERSION, "kind": self.kind, "contact": self.contact}
        body.update(values=dict(self.values), modifiedon=self.modifiedon, version=self.version, user=self.user)
        body.update(message=self.message, correlation=self.correlation, why=self.why)
        return json.dumps(body, sort_keys=True, separators=(",", ":"))


class MessageError(ValueError):
    """A queue message this connector did not write (or a future version of it): it cannot be applied."""


def decode_message(text: str) -> OptOutMessage:
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise MessageError("not JSON") from None
    if not isinstance(body, dict) or body.get("v") != MESSAGE_VERSION:
        raise MessageError(f"not an opt-out message of version {MESSAGE_VERSION}")
    kind, contact = body.get("kind"), parse_guid(str(body.get("contact") or ""))
    if kind not in (CHANGE, FETCH) or contact is None:
        raise MessageError("kind must be change or fetch, with a contact id")
    values = body.get("values") or {}
    if not isinstance(values, dict) or not all(isinstance(v, bool) for v in values.values()):
        raise MessageError("values must map column names to booleans")
    modifiedon, version = body.get("modifiedon"), body.get("version")
    if kind == CHANGE and not (isinstance(modifiedon, (int, float)) and isinstance(version, int) and values):
        raise MessageError("a change needs values, modifiedon and version")
    return OptOutMessage(kind, contact, {str(k): v for k, v in values.items()},
                         float(modifiedon) if isinstance(modifiedon, (int, float)) else None,
                         version if isinstance(version, int) else None, _text(body.get("user")) or None,
                         str(body.get("message") or ""), str(body.get("correlation") or ""),
                         str(body.get("why") or ""))  # fmt: skip


def parse_ms_date(value: Any) -> float | None:
    """`/Date(1506384247000)/` or `/Date(1506409448000-0700)/` -> epoch seconds (the number is UTC either way)."""
    match = _MS_DATE.fullmatch(value) if isinstance(value, str) else None
    return int(match.group(1)) / 1000.0 if match else None


def parse_webhook(
    body: bytes, headers: Mapping[str, str], *, columns: frozenset[str]
) -> OptOutMessage | Rejected | Ignored:
    """Validate one webhook request body; `columns` are the Dynamics opt-out columns of the configured pairs.

    `headers` must have lower-case names."""
    try:
        context = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return Rejected(400, "body is not JSON (expected a Dataverse RemoteExecutionContext)")
    except RecursionError:  # nesting no execution context has; json would otherwise surface it as a 500
        return Rejected(400, "body is nested too deeply (expected a Dataverse RemoteExecutionContext)")
    if not isinstance(context, dict):
        return Rejected(400, "body is not a JSON object (expected a Dataverse RemoteExecutionContext)")
    message = context.get("MessageName")
    if not isinstance(message, str) or not message:
        return Rejected(400, "MessageName is missing")
    header_message = headers.get("x-ms-dynamics-request-name")
    if header_message and header_message != message:
        return Rejected(400, "x-ms-dynamics-request-name does not match MessageName")
    entity = context.get("PrimaryEntityName")
    header_entity = headers.get("x-ms-dynamics-entity-name")
    if entity != ENTITY or (header_entity and header_entity != ENTITY):
        return Rejected(422, f"not a contact notification (PrimaryEntityName must be '{ENTITY}'): register the step "
                             "on the contact table")  # fmt: skip
    if message in IGNORED_MESSAGES:
        return Ignored(f"{message} carries no opt-out")
    if message not in HANDLED_MESSAGES:
        return Rejected(422, f"message '{_short(message)}' is not handled: register the step for "
                             f"{' or '.join(HANDLED_MESSAGES)}")  # fmt: skip
    contact = parse_guid(_text(context.get("PrimaryEntityId")))
    if contact is None:
        return Rejected(400, "PrimaryEntityId is missing or not a GUID")
    user = parse_guid(_text(context.get("InitiatingUserId"))) or parse_guid(_text(context.get("UserId")))
    correlation = headers.get("x-ms-correlation-request-id") or _text(context.get("CorrelationId"))
    correlation = correlation[:100]

    def fetch(why: str) -> OptOutMessage:
        return OptOutMessage(FETCH, contact, user=user, message=message, correlation=correlation, why=why)

    if SIZE_EXCEEDED_HEADER in headers:
        return fetch("body over Dataverse's size limit")
    target = _target(context.get("InputParameters"))
    if isinstance(target, Rejected):
        return target
    target_id = parse_guid(_text(target.get("Id")))
    if target_id is not None and target_id != contact:
        return Rejected(400, "Target.Id differs from PrimaryEntityId")
    if target.get("LogicalName") not in (None, ENTITY):
        return Rejected(422, "Target is not a contact")
    attributes = _attributes(target.get("Attributes"))
    if isinstance(attributes, Rejected):
        return attributes
    post = _post_image(context.get("PostEntityImages"))
    values: dict[str, bool] = {}
    for column in sorted(columns & attributes.keys()):
        value = attributes[column]
        if not isinstance(value, bool):
            return Rejected(422, f"attribute '{column}' is not a boolean")
        values[column] = value
    if not values:
        return Ignored("no mapped opt-out attribute in the change (set the step's filtering attributes to "
                       + ", ".join(sorted(columns)) + ")")  # fmt: skip
    modifiedon = parse_ms_date(attributes.get("modifiedon", post.get("modifiedon")))
    version = _version(target.get("RowVersion"), post.get("versionnumber"), attributes.get("versionnumber"))
    if "modifiedon" in attributes and modifiedon is None:
        return Rejected(422, "modifiedon is not a /Date(ms)/ value")
    if modifiedon is None or version is None:
        # Without the row's position two changes in one second cannot be ordered: read the contact instead.
        return fetch("no modifiedon or row version in the body")
    return OptOutMessage(CHANGE, contact, values, modifiedon, version, user, message, correlation)


def _target(parameters: Any) -> dict[str, Any] | Rejected:
    if not isinstance(parameters, list):
        return Rejected(400, "InputParameters is missing (and x-ms-dynamics-msg-size-exceeded is not set)")
    for pair in parameters:
        if isinstance(pair, dict) and pair.get("key") == "Target":
            value = pair.get("value")
            if not isinstance(value, dict):
                return Rejected(400, "InputParameters Target is not an Entity")
            return value
    return Rejected(400, "InputParameters has no Target")


def _attributes(pairs: Any) -> dict[str, Any] | Rejected:
    if not isinstance(pairs, list):
        return Rejected(400, "Target.Attributes is not a list of key/value pairs")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not (isinstance(pair, dict) and isinstance(pair.get("key"), str)):
            return Rejected(400, "Target.Attributes holds an entry that is not a key/value pair")
        out[pair["key"]] = pair.get("value")
    return out


def _post_image(images: Any) -> dict[str, Any]:
    """Attributes of the first post image, if the step registered one (e.g. with versionnumber)."""
    for pair in images if isinstance(images, list) else []:
        value = pair.get("value") if isinstance(pair, dict) else None
        if isinstance(value, dict):
            attributes = _attributes(value.get("Attributes"))
            return attributes if isinstance(attributes, dict) else {}
    return {}


def _version(*candidates: Any) -> int | None:
    for candidate in candidates:
        if isinstance(candidate, bool):
            continue
        if isinstance(candidate, int):
            return candidate
        if isinstance(candidate, str) and candidate.isdigit():
            return int(candidate)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _short(text: str) -> str:
    """A name from the request, safe to echo: identifier characters only, bounded."""
    return re.sub(r"[^A-Za-z0-9_]", "", text)[:40]

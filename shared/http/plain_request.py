"""The PreparedRequest `requests` would build for a plain call, built without its general machinery.

`Session.prepare_request` merges cookies, hooks, params and auth, parses and re-quotes the URL and merges the
headers through ordered-dict conversions on every call: about a quarter of a call's CPU here, taken under the
GIL that the parallel writers share (ingress sends one PATCH per changed record, eight at a time). Most of our
calls need none of it: an absolute URL that is already in canonical form (a Campaign href, a Dataverse
link), the session's headers plus a few of ours, a JSON or bytes body, no cookies, no auth but the header.

`prepare_plain` builds that request directly, or returns None whenever the call is anything else (query
params, cookies, files, auth, hooks, a URL `requests` would rewrite): then `requests` prepares it itself.
For the calls it takes, the result equals `Session.prepare_request`'s (method, URL, headers in order,
body): tests/http/test_plain_request.py checks that against requests on generated calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity

# Lower-case host, explicit path without dot segments, no fragment, no userinfo, percent escapes only in
# upper-case hex and only for characters that must be escaped: for these, requests' prepare_url returns the URL
# unchanged (urllib3 upper-cases escapes, requote_uri decodes those of unreserved characters). Table Storage
# queries are such URLs: a $filter of 14 row keys, escaped, that requests would re-parse byte by byte.
_PLAIN_URL = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[1-9][0-9]{0,4})?"
    r"/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-F]{2})*(?:\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-F]{2})+)?\Z"
)
_ESCAPE = re.compile(r"%([0-9A-F]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_NO_BODY_METHODS = ("GET", "HEAD")


def prepare_plain(
    session: requests.Session,
    method: str,
    url: Any,
    *,
    headers: Mapping[str, str | None] | None,
    data: Any,
    json: Any,
    netrc_auth: Any,
) -> requests.PreparedRequest | None:
    """The prepared request for a plain call, or None when `requests` must prepare it (see the module)."""
    if headers is None or not (isinstance(url, str) and isinstance(method, str) and _PLAIN_URL.match(url)):
        return None
    if "/." in url.partition("?")[0]:  # urllib3 removes dot segments from the path
        return None
    if "%" in url and any(int(code, 16) in _UNRESERVED for code in _ESCAPE.findall(url)):
        return None  # requote_uri would decode it
    if session.params or session.auth or netrc_auth or len(session.cookies) or _has_hooks(session.hooks):
        return None
    if data is not None and not isinstance(data, bytes):
        return None
    if data and json is not None:  # requests sends the data then; rare enough to leave to it
        return None
    prepared = requests.PreparedRequest()
    prepared.method = method.upper()
    prepared.url = url
    merged: CaseInsensitiveDict[Any] = CaseInsensitiveDict(session.headers)
    merged.update(headers)
    prepared.headers = CaseInsensitiveDict()
    for name, value in merged.items():
        if value is None:  # requests drops a header set to None
            continue
        check_header_validity((name, value))  # a line break in a value is refused, as requests refuses it
        prepared.headers[name] = value
    body: bytes | None = None
    content_type = None
    if not data and json is not None:
        body, content_type = _json_body(json, prepared), "application/json"
    elif data:
        body = data
    if body is not None:
        prepared.headers["Content-Length"] = str(len(body))
    elif prepared.method not in _NO_BODY_METHODS and prepared.headers.get("Content-Length") is None:
        prepared.headers["Content-Length"] = "0"
    if content_type and "content-type" not in prepared.headers:
        prepared.headers["Content-Type"] = content_type
    prepared.body = body
    prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]  # what send() and redirects read; empty, as the session's is
    prepared.hooks = default_hooks()
    return prepared


def _json_body(value: Any, prepared: requests.PreparedRequest) -> bytes:
    try:
        text = requests.compat.json.dumps(value, allow_nan=False)  # type: ignore[attr-defined]  # as requests does
    except ValueError as exc:
        raise requests.exceptions.InvalidJSONError(exc, request=prepared) from exc
    return text if isinstance(text, bytes) else text.encode("utf-8")


def _has_hooks(hooks: Mapping[str, Any]) -> bool:
    return any(hooks.values())

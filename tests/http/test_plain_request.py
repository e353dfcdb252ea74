"""A plain call's request, built without requests' general preparation, is the one requests would build.

The oracle is requests itself: `requests.Session().prepare_request` on the same call, compared on what goes on
the wire (method, URL, headers in order, body)."""

from __future__ import annotations

import http.server
import json
import re
import string
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.plain_request import prepare_plain
from shared.http.session import build_session
from tests.http.loopback import reply, serving

PATH_CHARS = "abcXYZ019._~!$&'()*+,;=:@/-"
# Escapes requests keeps (upper-case, of characters that must be escaped) and ones it rewrites: lower-case hex,
# an escaped unreserved character, a bare "%".
ESCAPES = ["%20", "%25", "%27", "%2F", "%3D", "%C3%A9", "%E2%82%AC", "%41", "%7E", "%2E", "%2e", "%c3%a9", "%", "%G1"]


def url_text(extra: str = "", max_size: int = 30) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from([*PATH_CHARS, *extra, *ESCAPES]), max_size=max_size).map("".join)


def rewritten_by_requests(url: str) -> bool:
    """What the plain path leaves to requests: a model written from RFC 3986 and requests' documented quoting."""
    path = url.partition("?")[0]
    escapes = re.findall(r"%(.?.?)", url)
    unreserved = string.ascii_letters + string.digits + "-._~"
    odd_escape = any(not re.fullmatch("[0-9A-F]{2}", code) or chr(int(code, 16)) in unreserved for code in escapes)
    return "/." in path or url.endswith("?") or odd_escape


def reference(session: requests.Session, method: str, url: str, headers: dict[str, Any], data: Any,
              json_body: Any) -> requests.PreparedRequest:  # fmt: skip
    plain = requests.Session()  # the same headers, none of our session's caching
    plain.headers = session.headers
    plain.trust_env = False
    return plain.prepare_request(requests.Request(method, url, headers=headers, data=data, json=json_body))


def wire(prepared: requests.PreparedRequest) -> tuple[Any, ...]:
    return prepared.method, prepared.url, list(prepared.headers.items()), prepared.body


def plain(session: requests.Session, method: str, url: str, headers: dict[str, Any], data: Any = None,
          json_body: Any = None) -> requests.PreparedRequest | None:  # fmt: skip
    return prepare_plain(session, method, url, headers=headers, data=data, json=json_body, netrc_auth=None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
header_names = st.sampled_from(["Accept", "accept", "X-Api-Key", "Content-Type", "content-length", "Prefer",
                                "User-Agent", "If-Match", "Cache-Control"])  # fmt: skip
header_values = st.none() | st.text(alphabet="abc XYZ/;=,-*0123456789", min_size=1, max_size=20).map(str.strip).filter(
    bool
)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "get", "POST", "PATCH", "DELETE", "HEAD", "PUT"]),
    host=st.sampled_from(["127.0.0.1:8443", "localhost", "mc.adobe.io", "org.crm4.dynamics.com:443"]),
    scheme=st.sampled_from(["http", "https"]),
    path=url_text(),
    query=st.none() | url_text("?", max_size=20),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=st.sampled_from(["none", "json", "bytes", "empty"]),
    json_body=json_values,
)
def test_a_plain_call_is_prepared_as_requests_prepares_it(
    method: str, host: str, scheme: str, path: str, query: str | None, headers: dict[str, Any], body: str,
    json_body: Any,
) -> None:  # fmt: skip
    url = f"{scheme}://{host}/{path}" + (f"?{query}" if query is not None else "")
    data = {"bytes": b'{"a":1}', "empty": b""}.get(body)
    payload = json_body if body == "json" else None
    session = build_session()
    ours = plain(session, method, url, headers, data, payload)
    expected = reference(session, method, url, headers, data, payload)
    if ours is None:  # only URLs requests would rewrite are left to it
        assert rewritten_by_requests(url)
        return
    assert wire(ours) == wire(expected)


@pytest.mark.parametrize(
    "url",
    [
        "https://Campaign.example/profile",  # requests lower-cases the host
        "https://campaign.example/a%41",  # requote_uri unquotes %41
        "https://campaign.example/a b",  # quoted by requests
        "https://campaign.example/a/../b",  # dot segments removed
        "https://campaign.example",  # requests adds the "/"
        "https://campaign.example/x#frag",
        "https://user:pw@campaign.example/x",  # userinfo becomes Basic auth
        "https://campaign.example:0080/x",
        "https://campaign.exämple/x",  # IDNA
    ],
)
def test_a_url_requests_would_rewrite_is_left_to_it(url: str) -> None:
    assert plain(build_session(), "GET", url, {}) is None


def test_calls_with_what_only_requests_handles_are_left_to_it() -> None:
    session = build_session()
    url = "https://campaign.example/profile"
    assert plain(session, "POST", url, {}, data={"a": "1"}) is None  # a form
    assert plain(session, "POST", url, {}, data="text") is None
    assert plain(session, "POST", url, {}, data=b"x", json_body={"a": 1}) is None
    assert prepare_plain(session, "GET", url, headers=None, data=None, json=None, netrc_auth=None) is None
    assert prepare_plain(session, "GET", url, headers={}, data=None, json=None, netrc_auth=("u", "p")) is None
    session.cookies.set("session", "1", domain="campaign.example")
    assert plain(session, "GET", url, {}) is None
    other = build_session()
    other.hooks["response"].append(lambda response, **kwargs: response)
    assert plain(other, "GET", url, {}) is None
    with_params = build_session()
    with_params.params = {"a": "1"}
    assert plain(with_params, "GET", url, {}) is None


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(requests.exceptions.InvalidHeader):
        plain(build_session(), "GET", "https://campaign.example/x", {"X-Api-Key": "a\r\nInjected: 1"})


def test_a_body_json_cannot_hold_is_refused() -> None:
    with pytest.raises(requests.exceptions.InvalidJSONError):
        plain(build_session(), "POST", "https://campaign.example/x", {}, json_body={"a": float("nan")})


@pytest.fixture
def echo() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PATCH(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            reply(self, Set_Cookie="visit=1; Path=/")

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url, seen


def test_the_session_sends_a_plain_call_and_keeps_requests_behaviour_after_a_cookie(
    echo: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = echo
    session = build_session()
    first = session.request("PATCH", f"{url}/profile/@a1", headers={"X-Api-Key": "k"}, json={"name": "N"})
    assert first.status_code == 200 and first.json() == {}
    assert seen[0]["path"] == "/profile/@a1"
    assert seen[0]["headers"]["X-Api-Key"] == "k"
    assert seen[0]["headers"]["Content-Type"] == "application/json"
    assert json.loads(seen[0]["body"]) == {"name": "N"}
    assert "Cookie" not in seen[0]["headers"]
    # The answer set a cookie: from now on requests prepares the calls, and sends it as it always did.
    session.request("PATCH", f"{url}/profile/@a1", headers={"X-Api-Key": "k"}, json={"name": "M"})
    assert seen[1]["headers"]["Cookie"] == "visit=1"

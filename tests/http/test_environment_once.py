"""The session reads the proxy environment once per origin: proxies still work, and are not re-read per call."""

from __future__ import annotations

import base64
import collections.abc
import http.server
import pathlib

import pytest
import requests

from shared.http.session import build_session
from tests.http.loopback import serving


@pytest.fixture
def proxy() -> collections.abc.Iterator[tuple[str, list[str]]]:
    """A loopback HTTP proxy stand-in: answers every request itself and records the request line."""
    lines: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            lines.append(self.requestline)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url, lines


def test_a_proxy_from_the_environment_is_used(proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = build_session()
    assert session.get("http://campaign.invalid/profile", timeout=5).text == "ok"
    assert lines == ["GET http://campaign.invalid/profile HTTP/1.1"]  # the absolute form a proxy receives


def test_the_environment_is_read_once_per_origin(proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    reads = 0
    original = requests.Session.merge_environment_settings

    def counting(self: requests.Session, *args: object) -> dict[str, object]:
        nonlocal reads
        reads += 1
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.Session, "merge_environment_settings", counting)
    session = build_session()
    for path in ("a", "b", "c"):
        session.get(f"http://campaign.invalid/{path}", timeout=5)
    session.get("http://dataverse.invalid/x", timeout=5)
    assert reads == 2  # one per origin
    assert len(lines) == 4


def test_per_request_proxies_follow_requests_rules(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, lines = proxy
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    session = build_session()
    session.get("http://campaign.invalid/given", proxies={"http": url}, timeout=5)
    assert lines == ["GET http://campaign.invalid/given HTTP/1.1"]


@pytest.fixture
def recording_server() -> collections.abc.Iterator[tuple[str, list[str | None]]]:
    """A loopback server recording each request's Authorization header."""
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url, seen


def test_netrc_credentials_are_still_sent_and_the_file_is_read_once_per_origin(
    recording_server: tuple[str, list[str | None]], monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    url, seen = recording_server
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    reads = 0
    original = requests.utils.get_netrc_auth

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal reads
        reads += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.utils, "get_netrc_auth", counting)
    session = build_session()
    for path in ("a", "b"):
        session.get(f"{url}/{path}", timeout=5)
    assert seen[:2] == ["Basic " + base64.b64encode(b"user:secret").decode()] * 2
    assert reads == 1
    netrc.write_text("")  # no entry for another origin: nothing added
    session.get(url.replace("127.0.0.1", "localhost") + "/d", timeout=5)
    assert seen[-1] is None and reads == 2

"""HttpClient against a real local HTTP server: retries, Retry-After, dropped connections, token refresh."""

from __future__ import annotations

import collections.abc
import email.utils
import http.server
import threading
from collections import deque
from typing import Any

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from shared.http import ApiError, HttpClient, Outcome, RetryPolicy, TransportError, parse_retry_after
from shared.http.session import never_sent


class Script:
    """Answers requests from a queue of (status, headers, body) or "drop" (close without answering)."""

    def __init__(self) -> None:
        self.replies: deque[Any] = deque()
        self.seen: list[dict[str, str]] = []


@pytest.fixture
def server() -> collections.abc.Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.seen.append(dict(self.headers))
            reply = script.replies.popleft() if script.replies else (200, {}, b"{}")
            if reply == "drop":
                self.close_connection = True
                self.connection.close()
                return
            status, headers, body = reply
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class Tokens:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0

    def token(self) -> str:
        if self.issued == self.invalidated:
            self.issued += 1
        return f"token-{self.issued}"

    def invalidate(self) -> None:
        self.invalidated = self.issued


def client(sleep: Recorder, **kwargs: Any) -> HttpClient:
    policy = kwargs.pop("policy", RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0, max_total_wait=60))
    return HttpClient(policy=policy, sleep=sleep, clock=lambda: 1_000_000.0, rand=lambda: 0.0, **kwargs)


def test_429_waits_retry_after_seconds(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(429, {"Retry-After": "7"}, b""), (200, {}, b'{"ok":1}')])
    sleep = Recorder()
    assert client(sleep).request("GET", url + "/x").json() == {"ok": 1}
    assert sleep.sleeps == [7.0]


def test_retry_after_as_http_date(server: tuple[str, Script]) -> None:
    url, script = server
    when = email.utils.formatdate(1_000_000.0 + 12, usegmt=True)
    script.replies.extend([(429, {"Retry-After": when}, b""), (200, {}, b"{}")])
    sleep = Recorder()
    client(sleep).request("GET", url)
    assert sleep.sleeps == [12.0]


def test_500_backs_off_exponentially_then_gives_up_after_max_attempts(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(500, {}, b"")] * 4)
    sleep = Recorder()
    with pytest.raises(ApiError) as err:
        client(sleep).request("GET", url + "/flaky?email=secret@example.com")
    assert err.value.outcome is Outcome.RETRY and err.value.status == 500
    assert sleep.sleeps == [1.0, 2.0, 4.0]
    assert "secret@example.com" not in str(err.value)  # query strings stay out of messages


def test_503_is_retried_until_the_time_cap_not_the_attempt_count(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(503, {}, b"")] * 20)
    sleep = Recorder()
    with pytest.raises(ApiError) as err:
        client(sleep).request("GET", url)  # max_attempts=4, max_delay=8, max_total_wait=60
    assert err.value.status == 503
    assert sleep.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]  # 9 waits, 52 s; a 10th passes 60 s
    assert len(script.seen) == 10


def test_jitter_spreads_delays() -> None:
    policy = RetryPolicy(base_delay=2.0, jitter=0.5)
    assert policy.backoff(1, lambda: 0.0) == 2.0
    assert policy.backoff(1, lambda: 1.0) == 3.0
    assert policy.backoff(10, lambda: 0.0) == policy.max_delay


def test_total_wait_cap_stops_early(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(429, {"Retry-After": "50"}, b""), (429, {"Retry-After": "50"}, b"")])
    sleep = Recorder()
    with pytest.raises(ApiError) as err:
        client(sleep).request("GET", url)
    assert err.value.outcome is Outcome.RATE_LIMITED
    assert sleep.sleeps == [50.0]  # a second 50 s wait would pass the 60 s cap


def test_dropped_connection_is_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend(["drop", (200, {}, b'{"after":"drop"}')])
    sleep = Recorder()
    assert client(sleep).request("GET", url).json() == {"after": "drop"}
    assert len(sleep.sleeps) == 1


def test_connection_refused_becomes_transport_error() -> None:
    sleep = Recorder()
    with pytest.raises(TransportError):
        client(sleep).request("GET", "http://127.0.0.1:9/")
    assert len(sleep.sleeps) == 3


def test_401_refreshes_token_once_and_retries_once(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(401, {}, b""), (200, {}, b"{}")])
    tokens = Tokens()
    client(Recorder(), token_provider=tokens).request("GET", url)
    assert [h["Authorization"] for h in script.seen] == ["Bearer token-1", "Bearer token-2"]


def test_second_401_is_not_retried_forever(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(401, {}, b""), (401, {}, b""), (200, {}, b"{}")])
    with pytest.raises(ApiError) as err:
        client(Recorder(), token_provider=Tokens()).request("GET", url)
    assert err.value.outcome is Outcome.AUTH_EXPIRED and len(script.seen) == 2


@pytest.mark.parametrize(("status", "outcome"), [(400, Outcome.RECORD_ERROR), (403, Outcome.FATAL)])
def test_client_errors_are_not_retried(server: tuple[str, Script], status: int, outcome: Outcome) -> None:
    url, script = server
    script.replies.append((status, {}, b""))
    sleep = Recorder()
    with pytest.raises(ApiError) as err:
        client(sleep).request("POST", url, json={"a": 1})
    assert err.value.outcome is outcome and sleep.sleeps == [] and len(script.seen) == 1


def test_allowed_status_is_returned(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((404, {}, b""))
    assert client(Recorder()).request("GET", url, allow=frozenset({404})).status_code == 404


def test_custom_classifier_decides(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(400, {}, b'{"code":"busy"}'), (200, {}, b"{}")])

    def classify(response: Any) -> tuple[Outcome, str, str]:
        if response.status_code == 400 and b"busy" in response.content:
            return Outcome.RETRY, "busy", "server busy"
        return Outcome.OK, "", ""

    sleep = Recorder()
    client(sleep, classifier=classify).request("GET", url)
    assert len(sleep.sleeps) == 1


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("3", 3.0), ("-2", 0.0), ("soon", None)])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=0.0) == expected


def test_non_idempotent_request_is_not_resent_after_a_lost_answer(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend(["drop", (201, {}, b"{}")])
    with pytest.raises(TransportError, match="not resent"):
        client(Recorder()).request("POST", url, json={"a": 1}, idempotent=False)
    assert len(script.seen) == 1


def test_non_idempotent_request_is_retried_when_nothing_was_done(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(503, {}, b""), (429, {"Retry-After": "1"}, b""), (201, {}, b"{}")])
    assert client(Recorder()).request("POST", url, idempotent=False).status_code == 201
    script.replies.extend([(500, {}, b"")])
    with pytest.raises(ApiError) as err:  # a 500 may have half-applied a create: the caller decides
        client(Recorder()).request("POST", url, idempotent=False)
    assert err.value.status == 500


def test_non_idempotent_request_is_retried_when_never_sent() -> None:
    sleep = Recorder()
    with pytest.raises(TransportError, match="after 4 attempts"):
        client(sleep).request("POST", "http://127.0.0.1:9/", idempotent=False)
    assert len(sleep.sleeps) == 3


class FakeTime:
    """A clock that moves only when the client sleeps; the server below reads it too."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def storm() -> collections.abc.Iterator[tuple[str, FakeTime, list[int]]]:
    """A server answering 429 with Retry-After: 1 to every call for ten seconds of the fake clock, then 200."""
    fake = FakeTime()
    ends = fake.now + 10.0
    statuses: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 429 if fake.now < ends else 200
            statuses.append(status)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", fake, statuses
    httpd.shutdown()
    httpd.server_close()


def test_a_429_storm_is_waited_out_within_the_time_cap_whatever_the_attempt_count(
    storm: tuple[str, FakeTime, list[int]],
) -> None:
    url, fake, statuses = storm
    http_client = HttpClient(policy=RetryPolicy(), sleep=fake.sleep, clock=fake.clock)  # defaults: 6 attempts, 300 s
    assert http_client.request("POST", url, idempotent=False).status_code == 200
    assert fake.sleeps == [1.0] * 10
    assert statuses == [429] * 10 + [200]


def test_a_429_storm_longer_than_the_time_cap_fails_rate_limited(storm: tuple[str, FakeTime, list[int]]) -> None:
    url, fake, statuses = storm
    http_client = HttpClient(policy=RetryPolicy(max_total_wait=4.0), sleep=fake.sleep, clock=fake.clock)
    with pytest.raises(ApiError) as err:
        http_client.request("GET", url)
    assert err.value.outcome is Outcome.RATE_LIMITED
    assert fake.sleeps == [1.0] * 4 and len(statuses) == 5


def test_a_retry_after_of_zero_backs_off_instead_of_hammering(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.extend([(429, {"Retry-After": "0"}, b""), (429, {"Retry-After": "0"}, b""), (200, {}, b"{}")])
    sleep = Recorder()
    client(sleep).request("GET", url)
    assert sleep.sleeps == [1.0, 2.0]


def test_other_threads_wait_behind_the_gate_a_429_closed(server: tuple[str, Script]) -> None:
    """While one thread waits out a Retry-After, another thread of the same client waits too instead of sending."""
    url, script = server
    script.replies.append((429, {"Retry-After": "5"}, b""))
    fake = FakeTime()
    results: list[int] = []
    http_client: HttpClient

    def sleep(seconds: float) -> None:
        fake.sleeps.append(seconds)
        if len(fake.sleeps) == 1:  # the first thread is waiting its 429 out: a second request starts now
            results.append(http_client.request("GET", url + "/other").status_code)

    http_client = HttpClient(policy=RetryPolicy(), sleep=sleep, clock=fake.clock)  # the clock never moves
    results.append(http_client.request("GET", url + "/first").status_code)
    assert fake.sleeps == [5.0, 5.0]  # both waited the gate once
    assert results == [200, 200]
    assert len(script.seen) == 3  # 429, then one request each: the second never collected its own 429
    http_client.request("GET", url + "/later")
    assert fake.sleeps == [5.0, 5.0]  # the gate was waited out: later requests go at once, clock or not


def test_the_gate_is_per_host(server: tuple[str, Script]) -> None:
    url, script = server
    other = url.replace("127.0.0.1", "localhost")
    script.replies.append((429, {"Retry-After": "5"}, b""))
    fake = FakeTime()
    calls: list[str] = []
    http_client: HttpClient

    def sleep(seconds: float) -> None:
        fake.sleeps.append(seconds)
        if len(fake.sleeps) == 1:
            calls.append(f"{http_client.request('GET', other).status_code}")

    http_client = HttpClient(policy=RetryPolicy(), sleep=sleep, clock=fake.clock)
    http_client.request("GET", url)
    assert fake.sleeps == [5.0] and calls == ["200"]


def test_a_5xx_backoff_does_not_hold_other_threads(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((500, {}, b""))
    fake = FakeTime()
    http_client: HttpClient

    def sleep(seconds: float) -> None:
        fake.sleeps.append(seconds)
        if len(fake.sleeps) == 1:
            http_client.request("GET", url + "/other")

    http_client = HttpClient(policy=RetryPolicy(jitter=0.0), sleep=sleep, clock=fake.clock)
    http_client.request("GET", url)
    assert fake.sleeps == [1.0]  # only the failing request backed off


def test_a_gate_longer_than_the_wait_cap_fails_at_once(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((429, {"Retry-After": "50"}, b""))
    fake = FakeTime()
    errors: list[ApiError] = []
    http_client: HttpClient

    def sleep(seconds: float) -> None:
        fake.sleeps.append(seconds)
        if len(fake.sleeps) == 1:
            short = HttpClient(policy=RetryPolicy(max_total_wait=10), sleep=fake.sleep, clock=fake.clock)
            short._hosts = http_client._hosts  # the same client as far as the gate goes
            with pytest.raises(ApiError) as err:
                short.request("GET", url + "/other")
            errors.append(err.value)

    http_client = HttpClient(policy=RetryPolicy(), sleep=sleep, clock=fake.clock)
    http_client.request("GET", url)
    assert errors[0].outcome is Outcome.RATE_LIMITED and errors[0].status == 429
    assert len(script.seen) == 2  # the short-capped request was never sent


class _Pool:
    """Stands for urllib3's connection pool in constructed exceptions."""


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (requests.ConnectionError(MaxRetryError(_Pool(), "/", NewConnectionError(_Pool(), "whatever"))), True),  # type: ignore[arg-type]
        (requests.ConnectTimeout(MaxRetryError(_Pool(), "/", ConnectTimeoutError("slow"))), True),  # type: ignore[arg-type]
        (requests.ConnectionError(MaxRetryError(_Pool(), "/", NameResolutionError("h", _Pool(), OSError()))), True),  # type: ignore[arg-type]
        # The message text says nothing: "Connection refused" in a reset after sending is still "maybe sent".
        (
            requests.ConnectionError(ProtocolError("Connection refused", ConnectionResetError("Failed to establish"))),
            False,
        ),
        (requests.ReadTimeout(ReadTimeoutError(_Pool(), "/", "NewConnectionError")), False),  # type: ignore[arg-type]
        (requests.ConnectionError("Connection refused"), False),
    ],
)
def test_never_sent_is_decided_by_exception_types(error: Exception, expected: bool) -> None:
    assert never_sent(error) is expected


def test_never_sent_follows_the_cause_chain() -> None:
    try:
        try:
            raise NewConnectionError(_Pool(), "x")  # type: ignore[arg-type]
        except NewConnectionError as inner:
            raise requests.ConnectionError("wrapped") from inner
    except requests.ConnectionError as outer:
        assert never_sent(outer) is True


def test_a_refused_connection_really_is_never_sent() -> None:
    with pytest.raises(requests.ConnectionError) as caught:
        requests.post("http://127.0.0.1:9/", timeout=2)
    assert never_sent(caught.value) is True

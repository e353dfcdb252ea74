"""Response headers read without the e-mail parser: the same message and framing as http.client's own."""

from __future__ import annotations

import email.parser
import http.client
import io
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from shared.http import response_headers
from shared.http.response_headers import QuickHeadersResponse, parse_headers
from shared.http.session import OriginPoolAdapter, build_session
from tests.http.loopback import reply, serving


def summary(message: Any) -> tuple[Any, ...]:
    """Everything a message holds; defects compared by kind (each is a fresh object)."""
    state = dict(vars(message))
    state["defects"] = [type(defect) for defect in state["defects"]]
    if isinstance(state["_payload"], list):  # the parts a multipart or message content type was parsed into
        state["_payload"] = [summary(part) for part in state["_payload"]]
    return type(message), sorted(state.items(), key=lambda item: item[0])


def both(block: bytes) -> tuple[tuple[Any, ...], tuple[Any, ...], bytes, bytes]:
    ours, stock = io.BytesIO(block), io.BytesIO(block)
    return summary(parse_headers(ours)), summary(http.client.parse_headers(stock)), ours.read(), stock.read()


NAMES = st.sampled_from(["Content-Type", "content-length", "X-Api-Key", "Set-Cookie", "ETag", "x.odd_name!", "From",
                         "Bad Name", "", " Folded", "\tFolded", "Trailer:Colon"])  # fmt: skip
VALUES = st.one_of(
    st.text(alphabet=st.sampled_from(list("abc =;,/\"'\t \ré\xff")), max_size=12),
    st.sampled_from(["multipart/mixed; boundary=b", "message/http", "application/json", "text/plain"]),
)
LINE_ENDS = st.sampled_from(["\r\n", "\n"])
LINES = st.tuples(NAMES, st.sampled_from([":", ": ", ":  ", " : ", ""]), VALUES, LINE_ENDS).map(lambda t: "".join(t))
EXTRA = st.sampled_from(["From someone\r\n", " continued\r\n", "\tcontinued\r\n", "no colon here\r\n", ":\r\n"])


@given(st.lists(st.one_of(LINES, EXTRA), max_size=8), st.sampled_from(["\r\n", "\n", ""]), st.binary(max_size=8))
def test_a_header_block_gives_the_message_http_client_gives(lines: list[str], end: str, body: bytes) -> None:
    block = ("".join(lines) + end).encode("iso-8859-1") + (body if end else b"")
    ours, stock, rest_ours, rest_stock = both(block)
    assert ours == stock
    assert rest_ours == rest_stock  # the body is left unread, as http.client leaves it


def test_a_plain_block_is_read_without_the_email_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the e-mail parser was used")

    monkeypatch.setattr(email.parser, "Parser", refuse)
    message = parse_headers(io.BytesIO(b"Content-Type: application/json\r\nX-A:  two  words \r\nX-A: again\r\n\r\n{}"))
    assert message.items() == [("Content-Type", "application/json"), ("X-A", "two  words "), ("X-A", "again")]
    assert message.get_all("x-a") == ["two  words ", "again"]
    assert message.defects == [] and message.get_payload() == ""


@pytest.mark.parametrize(
    "block",
    [b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n", b"Content-Type: message/http\r\n\r\n",
     b"X-A: one\r\n two\r\n\r\n", b"Bad Name: x\r\n\r\n", b"X-A: a\rb\r\n\r\n", b"From x\r\n\r\n"],
)  # fmt: skip
def test_what_is_not_a_plain_block_is_left_to_http_client(block: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    stock = response_headers._stock_parse_headers
    monkeypatch.setattr(response_headers, "_stock_parse_headers", lambda fp, cls: calls.append(1) or stock(fp, cls))
    ours, theirs, _, _ = both(block)
    assert calls == [1]
    assert ours == theirs


class FakeSocket:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /p/1\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
    b"HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=batch_1\r\nContent-Length: 5\r\n\r\nparts",
    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\nX-A: one\r\n two\r\n\r\n",
]


def framing(response_class: type[http.client.HTTPResponse], raw: bytes, method: str) -> tuple[Any, ...]:
    response = response_class(FakeSocket(raw), method=method)  # type: ignore[arg-type]
    response.begin()
    framed = (response.status, response.reason, response.version, summary(response.msg), response.chunked,
              response.length, response.will_close)  # fmt: skip
    return framed, response.read()


@pytest.mark.parametrize("raw", RESPONSES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_response_is_framed_as_http_client_frames_it(raw: bytes, method: str) -> None:
    assert framing(QuickHeadersResponse, raw, method) == framing(http.client.HTTPResponse, raw, method)


def test_http_client_itself_is_left_as_it_is() -> None:
    assert http.client.HTTPResponse.begin.__globals__["parse_headers"] is http.client.parse_headers
    assert QuickHeadersResponse.begin.__globals__["parse_headers"] is parse_headers


@pytest.fixture
def server() -> Any:
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            reply(self)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_the_session_reads_answers_quickly_and_keeps_one_pool_per_origin(server: str) -> None:
    session = build_session()
    adapter = session.get_adapter(server)
    assert isinstance(adapter, OriginPoolAdapter)
    first = session.get(f"{server}/a")
    second = session.get(f"{server}/b?x=1")
    assert first.json() == {} and second.json() == {}
    assert type(first.raw._original_response) is QuickHeadersResponse
    assert len(adapter._pools) == 1
    [pool] = adapter._pools.values()
    assert pool.num_requests == 2  # both went through the one pool
    adapter.close()
    assert adapter._pools == {}


def test_a_request_through_a_proxy_goes_the_requests_way() -> None:
    adapter = OriginPoolAdapter()
    request = requests.Request("GET", "http://campaign.example/x").prepare()
    pool = adapter.get_connection_with_tls_context(request, True, proxies={"http": "http://127.0.0.1:9"})
    assert (pool.host, pool.port) == ("127.0.0.1", 9)
    assert adapter._pools == {}

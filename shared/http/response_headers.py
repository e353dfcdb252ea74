"""Response headers read without the e-mail parser, for the connections of our own HTTP sessions.

http.client hands every response's header block to `email.parser`, a general MIME parser (feed parser,
policy lookups, line splitting): about a fifth of a call's CPU here, taken under the GIL that the parallel
writers share (a Campaign PATCH per changed record, a Table Storage call per few). An HTTP header block is
simpler: one `Name: value` per line. `parse_headers` builds the same `HTTPMessage` directly when the block is
that simple, and hands anything else (folded lines, a malformed line, a stray CR, a multipart or message
content type, whose empty body the e-mail parser goes on to parse) to http.client's own function.
tests/http/test_response_headers.py checks the two agree on generated blocks, attribute for attribute.

Only the connections of the pools below read headers this way: `QuickHeadersResponse.begin` is
http.client's own `begin` (the same framing rules: status line, 100-continue, chunked, Content-Length),
bound to globals in which `parse_headers` is this module's. http.client itself is left as it is.
"""

from __future__ import annotations

import http.client
import re
import types
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# A header name as the e-mail parser takes it: printable ASCII but the colon and space.
_NAME = re.compile(r"[!-9;-~]+\Z")
_END_OF_BLOCK = (b"\r\n", b"\n", b"")
_PARSED_BODIES = ("multipart", "message")  # content types whose (empty) body the e-mail parser parses too
_stock_parse_headers = http.client.parse_headers


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """http.client.parse_headers: the same message, built directly for a plain block of headers."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # the same limits on lines and count
    message = _plain(lines, _class) if _class is http.client.HTTPMessage else None
    if message is None:
        return _stock_parse_headers(_Replay(lines), _class)
    return message


def _plain(lines: list[bytes], message_class: type[http.client.HTTPMessage]) -> http.client.HTTPMessage | None:
    headers = []
    for raw in lines:
        if raw in _END_OF_BLOCK:
            break
        line = raw.decode("iso-8859-1")
        text = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith("\n") else line
        if "\r" in text or "\n" in text or line.startswith("From "):
            return None
        name, colon, value = text.partition(":")
        if not colon or not _NAME.match(name):
            return None
        headers.append((name, value.lstrip(" \t")))
    message = message_class()
    message._headers = headers  # type: ignore[attr-defined]  # what the compat32 parser stores: (name, value)
    message.set_payload("")
    if message.get_content_maintype() in _PARSED_BODIES:
        return None
    return message


class _Replay:
    """The lines already read, read again by http.client's own parse_headers."""

    def __init__(self, lines: list[bytes]) -> None:
        self._lines = iter(lines)

    def readline(self, limit: int = -1) -> bytes:
        return next(self._lines, b"")


class QuickHeadersResponse(http.client.HTTPResponse):
    # http.client's begin, looking up parse_headers (and nothing else) in a namespace of its own.
    begin = types.FunctionType(
        http.client.HTTPResponse.begin.__code__,
        {**vars(http.client), "parse_headers": parse_headers},
        "begin",
        http.client.HTTPResponse.begin.__defaults__,
        http.client.HTTPResponse.begin.__closure__,
    )


class QuickHeadersConnection(HTTPConnection):
    response_class = QuickHeadersResponse


class QuickHeadersHTTPSConnection(HTTPSConnection):
    response_class = QuickHeadersResponse


class QuickHeadersPool(HTTPConnectionPool):
    ConnectionCls = QuickHeadersConnection


class QuickHeadersHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = QuickHeadersHTTPSConnection


POOL_CLASSES = {"http": QuickHeadersPool, "https": QuickHeadersHTTPSPool}

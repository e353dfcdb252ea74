"""$batch bodies: parse multipart/mixed requests (with change sets), format multipart responses.

Format per PA webapi/execute-batch-operations-using-web-api.md and OData v4 section 11.7: parts are
`application/http` with `Content-Transfer-Encoding: binary`; change sets nest another
multipart/mixed; responses use `batchresponse_<guid>` and `changesetresponse_<guid>` boundaries.
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import uuid

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_NEWLINE = re.compile(rb"\r?\n")


class MultipartError(ValueError):
    pass


@dataclasses.dataclass
class RequestPart:
    method: str
    url: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    content_id: str | None = None


@dataclasses.dataclass
class ChangeSet:
    parts: list[RequestPart]


@dataclasses.dataclass
class ResponsePart:
    status: int
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


def boundary_of(content_type: str) -> str:
    match = _BOUNDARY.search(content_type or "")
    if not match or not content_type.lower().startswith("multipart/mixed"):
        raise MultipartError("Content-Type must be multipart/mixed with a boundary")
    return match.group(1)


def _split(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode()
    pieces = body.split(delimiter)
    if len(pieces) < 2:
        raise MultipartError("no part found for the boundary")
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        parts.append(piece.lstrip(b"\r\n"))
    return parts


def _head_and_body(block: bytes) -> tuple[list[str], bytes]:
    match = re.search(rb"\r?\n\r?\n", block)
    if match is None:
        return [line.decode() for line in _NEWLINE.split(block.strip()) if line], b""
    head = block[: match.start()]
    return [line.decode("utf-8") for line in _NEWLINE.split(head) if line], block[match.end() :]


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed header line in batch part: {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def parse_batch(body: bytes, content_type: str) -> list[RequestPart | ChangeSet]:
    items: list[RequestPart | ChangeSet] = []
    for block in _split(body, boundary_of(content_type)):
        head, content = _head_and_body(block)
        part_headers = _headers(head)
        part_type = part_headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            inner = [_request(b) for b in _split(content, boundary_of(part_type))]
            items.append(ChangeSet(inner))
        else:
            items.append(_request(block))
    return items


def _request(block: bytes) -> RequestPart:
    head, content = _head_and_body(block)
    part_headers = _headers(head)
    if not part_headers.get("content-type", "").lower().startswith("application/http"):
        raise MultipartError("batch parts must be Content-Type: application/http")
    lines, body = _head_and_body(content)
    if not lines:
        raise MultipartError("batch part without a request line")
    request_line = lines[0].split()
    if len(request_line) < 2:
        raise MultipartError("malformed request line in batch part")
    return RequestPart(
        method=request_line[0].upper(),
        url=request_line[1],
        headers=_headers(lines[1:]),
        body=body.rstrip(b"\r\n"),
        content_id=part_headers.get("content-id"),
    )


def _format_part(response: ResponsePart) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if response.content_id is not None:
        lines.append(f"Content-ID: {response.content_id}")
    reason = http.client.responses.get(response.status, "")
    lines += ["", f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + response.body + b"\r\n"


def format_batch(items: list[ResponsePart | list[ResponsePart]]) -> tuple[str, bytes]:
    """(Content-Type, body) of a batch response."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out: list[bytes] = []
    for item in items:
        out.append(f"--{boundary}\r\n".encode())
        if isinstance(item, list):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode())
            for response in item:
                out.append(f"--{inner}\r\n".encode() + _format_part(response))
            out.append(f"--{inner}--\r\n".encode())
        else:
            out.append(_format_part(item))
    out.append(f"--{boundary}--\r\n".encode())
    return f"multipart/mixed; boundary={boundary}", b"".join(out)

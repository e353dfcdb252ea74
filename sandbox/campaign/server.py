"""HTTP front of the Campaign sandbox: IMS token endpoint, the REST API and the control API.

Routes:
- `POST /ims/token/v3`                         IMS OAuth Server-to-Server token (form encoded)
- `/<organization>/campaign/...`               the Campaign REST API (state.py)
- `/_control/...`                              test control (no auth; documented in README.md)

HTTP/1.1 with keep-alive, so a pooled client pays one connection per thread.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.campaign import errors
from sandbox.campaign.control import ControlError, handle_control
from sandbox.campaign.faults import FaultRule
from sandbox.campaign.files import FileProblem
from sandbox.campaign.state import CampaignState, Reply

IMS_PATH = "/ims/token/v3"
CONTROL_PREFIX = "/_control/"
_LOGGED_HEADERS = ("x-api-key", "cache-control", "content-type")


class CampaignServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: CampaignState) -> None:
        super().__init__(address, CampaignHandler)
        self.state = state
        host, port = self.server_address[:2]
        state.public_base = f"http://{host!s}:{port}"


class CampaignHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CampaignServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without NODELAY, Nagle + delayed ACK add ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log in the state replaces stderr noise

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------

    def _dispatch(self) -> None:
        state = self.server.state
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        raw = self._read_body()
        if path.startswith(CONTROL_PREFIX):
            self._control(path[len(CONTROL_PREFIX) :], split.query, raw)
            return

        started = time.time()
        entry: dict[str, Any] = {
            "time": state.now(),
            "method": self.command,
            "path": path,
            "query": dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
            "headers": {h: self.headers[h] for h in _LOGGED_HEADERS if self.headers.get(h) is not None},
            "auth": "bearer" if (self.headers.get("Authorization") or "").startswith("Bearer ") else "none",
            "json": _maybe_json(raw, self.headers.get("Content-Type")),
            "status": None,  # set once answered: logged on arrival so stalled calls show up at once
        }
        state.log_request(entry)
        fault = state.take_fault(self.command, path)
        reply: Reply | None = None
        if fault is not None:
            entry["fault"] = fault.action
            if fault.action == "drop":
                self._drop(entry)
                return
            if fault.action == "stall":
                time.sleep(fault.seconds)
            if fault.status is not None:
                reply = Reply(fault.status, fault.body, _content_type(fault.body), dict(fault.headers))
        if reply is None:
            reply = self._route(state, path, split.query, raw)
        entry["status"] = reply.status
        entry["elapsed"] = round(time.time() - started, 4)
        if fault is not None and fault.action == "drop_after":
            self._drop(entry)
            return
        self._send(reply)

    def _route(self, state: CampaignState, path: str, query_string: str, raw: bytes) -> Reply:
        try:
            if path.rstrip("/") == IMS_PATH:
                if self.command != "POST":
                    return Reply(405, {"error": "invalid_request", "error_description": "POST only"})
                form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
                return state.issue_token(form)
            parts, query_string = decode_api_path(path, query_string)
            if len(parts) < 2 or parts[1] != "campaign":
                raise errors.wrong_uri()
            if parts[0] != state.config.organization:
                raise errors.wrong_uri()
            query = dict(urllib.parse.parse_qsl(query_string, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            return state.handle_api(self.command, parts[2:], query, headers, raw)
        except errors.SandboxError as error:
            return Reply(error.status, error.body, error.content_type, dict(error.headers))

    def _control(self, route: str, query_string: str, raw: bytes) -> None:
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
            result = handle_control(self.server.state, self.command, route, query_string, body)
            self._send(Reply(200, result))
        except ControlError as error:
            self._send(Reply(error.status, {"error": str(error)}))
        except errors.SandboxError as error:
            message = error.body.get("message") if isinstance(error.body, dict) else str(error.body)
            self._send(Reply(error.status, {"error": message}))
        except FileProblem as error:
            self._send(Reply(409, {"error": str(error)}))
        except (ValueError, KeyError, TypeError) as error:
            self._send(Reply(400, {"error": f"{type(error).__name__}: {error}"}))

    # ------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, str):
            payload = reply.body.encode("utf-8")
        else:
            payload = json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        content_type = reply.content_type
        if isinstance(reply.body, str) and content_type == "application/json":
            content_type = "text/plain; charset=utf-8"
        if payload:
            self.send_header("Content-Type", content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self, entry: dict[str, Any]) -> None:
        entry["status"] = 0
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def decode_api_path(path: str, query_string: str) -> tuple[list[str], str]:
    """Path segments as the gateway hands them to Campaign, and the query string.

    The gateway percent-decodes the path: Adobe's SDK sends every PKey encoded (`%40...`), and its
    getDataFromRelativeUrl encodes a whole relative URL as one segment (`/` as `%2F`, `?` as `%3F`).
    So the sandbox decodes the path once before splitting it, and a decoded `?` starts the query [U: the
    real gateway's handling of `%2F` and `%3F` is undocumented; this is what makes the SDK's helper work].
    Empty segments (a trailing `/`, or the leading `/` of a relative URL) carry no meaning.
    """
    decoded = urllib.parse.unquote(path)
    if "?" in decoded:
        decoded, embedded = decoded.split("?", 1)
        query_string = f"{query_string}&{embedded}" if query_string else embedded
    return [part for part in decoded.split("/") if part], query_string


def _maybe_json(raw: bytes, content_type: str | None) -> Any:
    if not raw or not content_type or "json" not in content_type:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def _content_type(body: Any) -> str:
    return "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"


__all__ = ["CampaignHandler", "CampaignServer", "FaultRule"]

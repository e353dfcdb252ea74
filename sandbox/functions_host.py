"""A stand-in for the Functions host's HTTP front door, for the tests, the demo and the benchmark (no Functions
host runs here): it serves a function app's HTTP triggers on loopback under `/api/<route>` and checks keys the
way the host does for auth level FUNCTION (a key in `?code=` or the `x-functions-key` header, else 401 before
the function runs). Pair it with sandbox/queue_pump.py for queue triggers.

Not product code: the connector's functions run in it unchanged, as plain Python functions.
"""

from __future__ import annotations

import dataclasses
import hmac
import socket
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

Handler = Callable[[func.HttpRequest], func.HttpResponse]


@dataclasses.dataclass(frozen=True)
class HttpRoute:
    route: str
    methods: tuple[str, ...]
    auth_level: str  # anonymous | function | admin
    handler: Handler


def http_routes(app: func.FunctionApp) -> list[HttpRoute]:
    """The HTTP triggers of an indexed function app."""
    app.functions_bindings = None  # get_functions() may run once per app object otherwise
    routes = []
    for fn in app.get_functions():
        trigger = fn.get_trigger().get_dict_repr()
        if trigger.get("type") != "httpTrigger":
            continue
        methods = tuple(str(getattr(m, "value", m)).upper() for m in trigger.get("methods") or ["GET", "POST"])
        level = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "function")).lower()
        routes.append(HttpRoute(trigger.get("route") or fn.get_function_name(), methods, level, fn.get_user_function()))
    return routes


class LocalHttpHost:
    def __init__(self, routes: Iterable[HttpRoute], keys: Iterable[str], host: str = "127.0.0.1", port: int = 0):
        self.routes = {r.route.strip("/"): r for r in routes}
        self.keys = [k.encode() for k in keys]
        self.requests = 0
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: without NODELAY, Nagle + delayed ACK add ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                outer.requests += 1
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = outer.dispatch(self.command, split.path, split.query,
                                                          {k: v for k, v in self.headers.items()}, body)  # fmt: skip
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer((host, port), RequestHandler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def url(self, route: str) -> str:
        return self.base_url + route.strip("/")

    def dispatch(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
                 ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        route = self.routes.get(path.removeprefix("/api/").strip("/")) if path.startswith("/api/") else None
        if route is None:
            return 404, {}, b""
        if method.upper() not in route.methods:
            return 405, {}, b""
        params = dict(parse_qsl(query, keep_blank_values=True))
        if route.auth_level != "anonymous":
            given = (params.get("code") or headers.get("x-functions-key") or "").encode()
            if not any(hmac.compare_digest(given, key) for key in self.keys):
                return 401, {}, b""
        request = func.HttpRequest(method=method.upper(), url=f"http://localhost{path}", headers=headers,
                                   params=params, body=body)  # fmt: skip
        try:
            response = route.handler(request)
        except Exception:  # the host answers 500 when a function raises
            return 500, {}, b""
        out_headers = {k: v for k, v in response.headers.items()}
        if response.mimetype:
            out_headers.setdefault("Content-Type", response.mimetype)
        return response.status_code, out_headers, response.get_body() or b""

    def start(self) -> LocalHttpHost:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalHttpHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""One https server on loopback: the Entra token endpoint, the Dataverse Web API and the control API.

`DataverseSandbox` is also the in-process handle tests use: the same methods the control API
(/_control/...) exposes over HTTP.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.dataverse import control, schema, users, webhooks
from sandbox.dataverse.auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT, Entra, make_tls
from sandbox.dataverse.odata import JSON_TYPE, error_body, project, select_columns
from sandbox.dataverse.protection import Fault, Faults, Throttle
from sandbox.dataverse.store import Store
from sandbox.dataverse.webapi import API_PREFIX, Request, Response, WebApi
from sandbox.dataverse.writes import Caller, iso_now

_LOGGED_HEADERS = (
    "prefer",
    "if-match",
    "if-none-match",
    "accept",
    "odata-version",
    "odata-maxversion",
    "content-type",
)
_REQUEST_LOG_LIMIT = 100_000


class DataverseSandbox:
    """A local, in-memory Dynamics 365 organisation with its Entra stand-in. Start, use, stop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tables: list[Mapping[str, Any]] | None = None,
        tenant_id: str = DEFAULT_TENANT,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_lifetime: int = 3599,
        workdir: Path | None = None,
        webhook_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self._port = port
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self._clock_offset = 0.0
        self.store = Store(schema.default_tables(list(tables) if tables is not None else None), clock=self.clock)
        for user in users.NAMED_USERS:
            self._add_user(user)
        self._add_user(users.application_user(client_id))
        self.latency_ms = 0.0  # added before every Web API answer (benchmarks model a remote organisation)
        self.webhooks = webhooks.Dispatcher(
            organization_name="sandbox", organization_host=host, clock=self.clock, timeout=webhook_timeout
        )
        self.store.listeners.append(self.webhooks.on_write)
        self._tmp = tempfile.TemporaryDirectory(prefix="dataverse-sandbox-") if workdir is None else None
        self.workdir = Path(self._tmp.name) if self._tmp else Path(workdir)  # type: ignore[arg-type]
        self.tls = make_tls(self.workdir, (host, "localhost") if host != "localhost" else ("localhost", "127.0.0.1"))
        self._token_lifetime = token_lifetime
        self.faults = Faults()
        self.throttle = Throttle(self.clock)
        self._log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self._flight_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.entra: Entra | None = None
        self.webapi: WebApi | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> DataverseSandbox:
        server = _Server((self.host, self._port), _make_handler(self))
        server.daemon_threads = True
        # Handshakes happen in the handler threads, so one slow client cannot block accept().
        server.socket = self.tls.server_context().wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self._port = server.server_address[1]
        self.entra = Entra(tenant_id=self.tenant_id, resource=self.url, clock=self.clock, lifetime=self._token_lifetime)
        self.entra.register(self.client_id, secret=self.client_secret)
        self.webapi = WebApi(
            self.store, self.url, default_caller=Caller(users.app_user_id(self.client_id)), wall_clock=self.clock
        )
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="dataverse-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.webhooks.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> DataverseSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The organisation URL (also the resource of the token scope `<url>/.default`)."""
        return f"https://{self.host}:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def authority_host(self) -> str:
        """Entra is served by the same server: authority = f'{authority_host}/{tenant_id}'."""
        return self.url

    @property
    def ca_path(self) -> Path:
        return self.tls.ca_path

    def clock(self) -> float:
        return time.time() + self._clock_offset

    # -- control: data -------------------------------------------------------------------------
    def seed_contacts(self, count: int, seed: int = 1) -> dict[str, Any]:
        return self.seed("contact", count, seed)

    def seed(self, logical_name: str, count: int, seed: int = 1) -> dict[str, Any]:
        """Add `count` generated rows in one version; the same seed gives the same rows."""
        segment = self.store.seed(logical_name, count, seed)
        return {"first_index": segment.start, "count": segment.count, "seed": segment.seed, "version": segment.version}

    def _table(self, entity_set: str) -> Any:
        table = self.store.by_set.get(entity_set)
        if table is None:
            raise KeyError(f"unknown entity set {entity_set!r}")
        return table

    def _webapi(self) -> WebApi:
        if self.webapi is None:
            raise RuntimeError("start the sandbox first")
        return self.webapi

    def _as(self, as_user: str | None) -> Caller:
        """The Dynamics user a control-API change is made by: a systemuserid, a domainname or its local part."""
        if as_user is None:
            return Caller(users.DEFAULT_USER.systemuserid)
        wanted = as_user.lower()
        table = self.store.tables["systemuser"]
        with self.store.lock:
            for _, row in table.scan(("s", 0)):
                domain = str(row.get("domainname") or "")
                if wanted in (row["systemuserid"], domain, domain.split("@")[0]):
                    return Caller(row["systemuserid"])
        raise KeyError(f"no systemuser {as_user!r}")

    def create(self, entity_set: str, body: Mapping[str, Any], *, as_user: str | None = None) -> str:
        """Create a row as a Dynamics user would (default users.DEFAULT_USER; bumps the version, fires
        webhooks). Returns its id."""
        table = self._table(entity_set)
        return self._webapi().writer.create(table, dict(body), self._as(as_user))

    def update(self, entity_set: str, row_id: str, body: Mapping[str, Any], *, as_user: str | None = None) -> None:
        table = self._table(entity_set)
        if table.get(row_id.lower()) is None:
            raise KeyError(f"no row {row_id} in {entity_set}")
        self._webapi().writer.update(table, row_id.lower(), dict(body), self._as(as_user))

    def delete(self, entity_set: str, row_id: str, *, as_user: str | None = None) -> None:
        table = self._table(entity_set)
        if table.get(row_id.lower()) is None:
            raise KeyError(f"no row {row_id} in {entity_set}")
        self._webapi().writer.delete(table, row_id.lower(), self._as(as_user))

    # -- control: users ------------------------------------------------------------------------
    def _add_user(self, user: users.User) -> None:
        table = self.store.tables["systemuser"]
        if table.get(user.systemuserid) is None:
            self.store.preload(table, users.user_row(user, self.store.version, iso_now(self.clock())))

    def add_user(self, fullname: str, domainname: str) -> str:
        """A new named Dynamics user; returns its systemuserid (deterministic in the domainname)."""
        key = domainname.split("@")[0].lower()
        user = users.User(str(uuid.uuid5(users.NAMESPACE, f"user:{key}")), fullname, domainname.lower())
        self._add_user(user)
        return user.systemuserid

    @property
    def application_user_id(self) -> str:
        """The systemuserid of the sandbox client's application user (what WhoAmI answers)."""
        return users.app_user_id(self.client_id)

    def systemusers(self) -> list[dict[str, Any]]:
        return self.rows("systemusers")

    # -- control: metadata ---------------------------------------------------------------------
    def hold_new_keys(self, hold: bool = True) -> None:
        """New alternate keys stay Pending (their index job not run) until activate_keys()."""
        self._webapi().metadata_writer.hold_new_keys = hold

    def activate_keys(self) -> list[dict[str, str]]:
        """Run pending key index jobs: Active, or Failed when existing rows hold duplicates."""
        return self._webapi().metadata_writer.activate_keys()

    # -- control: latency ----------------------------------------------------------------------
    def set_latency(self, ms: float) -> None:
        """Wait `ms` milliseconds before answering each Web API request (not the token or control routes)."""
        if ms < 0:
            raise ValueError("latency must be >= 0 ms")
        self.latency_ms = float(ms)

    # -- control: webhooks ---------------------------------------------------------------------
    def register_webhook(
        self,
        url: str,
        *,
        entity: str = "contact",
        messages: tuple[str, ...] | list[str] = ("Create", "Update"),
        filtering_attributes: list[str] | tuple[str, ...] | str | None = None,
        auth: str = "WebhookKey",
        value: Any = None,
        pre_image: Any = None,
        post_image: Any = None,
    ) -> str:
        """Register a webhook step (asynchronous, PostOperation) like the Plug-in Registration Tool does;
        returns the step id (OwningExtension.Id in the payload). See webhooks.py for the options."""
        registration = webhooks.make_registration(
            url,
            entity=entity,
            messages=tuple(messages),
            filtering_attributes=filtering_attributes,
            auth=auth,
            value=value,
            pre_image=pre_image,
            post_image=post_image,
            tables={name: t.definition for name, t in self.store.tables.items()},
        )
        return self.webhooks.register(registration)

    def unregister_webhook(self, registration_id: str) -> None:
        self.webhooks.unregister(registration_id)

    def webhook_registrations(self) -> list[dict[str, Any]]:
        return [r.public() for r in self.webhooks.registrations.values()]

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """The delivery log, oldest first: body, headers (auth values hidden), attempts with statuses, outcome."""
        return self.webhooks.deliveries()

    def clear_webhook_deliveries(self) -> None:
        self.webhooks.clear_log()

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery is done; TimeoutError if not within `timeout` seconds."""
        self.webhooks.flush(timeout)

    def pause_webhooks(self) -> None:
        """Hold deliveries: writes keep queueing them until resume_webhooks()."""
        self.webhooks.pause()

    def resume_webhooks(self, order: str | list[str] = "fifo") -> None:
        """Release held deliveries: "fifo", "lifo" (reordered, newest first) or a list of delivery ids first."""
        self.webhooks.resume(order)

    def duplicate_webhooks(self, count: int = 1) -> None:
        """The next `count` deliveries are each sent twice (same body: a redelivery)."""
        self.webhooks.duplicate_next(count)

    def get(self, entity_set: str, row_id: str) -> dict[str, Any] | None:
        """A row as the Web API would return it with every column (lookups as `_x_value`)."""
        table = self._table(entity_set)
        with self.store.lock:
            row = table.get(row_id.lower())
            if row is None:
                return None
            return project(row, select_columns(table.definition, None))

    def rows(self, entity_set: str, limit: int | None = None) -> list[dict[str, Any]]:
        table = self._table(entity_set)
        columns = select_columns(table.definition, None)
        out: list[dict[str, Any]] = []
        with self.store.lock:
            for _, row in table.scan(("s", 0)):
                if limit is not None and len(out) >= limit:
                    break
                out.append(project(row, columns))
        return out

    def count(self, entity_set: str) -> int:
        return int(self._table(entity_set).live)

    # -- control: behaviour --------------------------------------------------------------------
    def requests(self) -> list[dict[str, Any]]:
        """The request log (no bodies), oldest first."""
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def inject_fault(
        self,
        path: str,
        kind: str,
        count: int = 1,
        *,
        method: str | None = None,
        retry_after: int = 1,
        stall_seconds: float = 5.0,
    ) -> None:
        """The next `count` requests whose path contains `path` answer with the fault `kind`:
        "429" (with Retry-After), "500", "502", "503", "504", "drop" (connection closed, no answer), "drop_after"
        (the request is carried out, then the connection is closed: a lost response) or "stall"."""
        self.faults.add(Fault(path, kind, count, method, retry_after, stall_seconds))

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_throttle(
        self, kind: str = "requests", limit: float = 6000, window_seconds: float = 300, retry_after: int | None = None
    ) -> None:
        """Enforce one service protection limit: "requests" (count per window), "execution_time"
        (milliseconds per window) or "concurrency" (requests in flight)."""
        self.throttle.configure(kind, limit, window_seconds, retry_after)

    def clear_throttle(self) -> None:
        self.throttle.clear()

    def expire_delta_tokens(self) -> None:
        """Every delta link issued so far answers ExpiredVersionStamp (0x80044352) from now on."""
        with self.store.lock:
            self.store.expired_before = self.store._bump()

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is rejected with 401 from now on."""
        if self.entra is not None:
            self.entra.expire_all()

    def advance_clock(self, seconds: float) -> None:
        """Move the sandbox's clock (token expiry, throttling windows, timestamps) forward."""
        self._clock_offset += seconds

    def issue_token(self) -> str:
        """A valid access token without going through MSAL (demo scripts, quick tests)."""
        if self.entra is None:
            raise RuntimeError("start the sandbox first")
        return self.entra.issue(self.client_id)

    def register_client(
        self, client_id: str, *, secret: str | None = None, certificate_pem: bytes | None = None
    ) -> None:
        """Another app registration, with its own application user."""
        if self.entra is None:
            raise RuntimeError("start the sandbox first")
        self.entra.register(client_id, secret=secret, certificate_pem=certificate_pem)
        self._add_user(users.application_user(client_id))

    def stats(self) -> dict[str, Any]:
        return {
            "version": self.store.version,
            "max_in_flight": self.max_in_flight,
            "tokens_issued": self.entra.issued_count if self.entra else 0,
            "rows": {name: t.live for name, t in self.store.by_set.items()},
            "latency_ms": self.latency_ms,
        }

    def settings(self) -> dict[str, Any]:
        """What a client needs to connect (the CLI prints this)."""
        return {
            "url": self.url,
            "api_url": self.api_url,
            "authority_host": self.authority_host,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "resource": self.url,
            "ca_path": str(self.ca_path),
            "control_url": self.url + "/_control/",
            "application_user_id": self.application_user_id,
        }

    # -- request plumbing (used by the handler) ------------------------------------------------
    @contextmanager
    def in_flight(self) -> Iterator[int]:
        with self._flight_lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            current = self._in_flight
        try:
            yield current
        finally:
            with self._flight_lock:
                self._in_flight -= 1

    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.append(entry)
            if len(self._log) > _REQUEST_LOG_LIMIT:
                del self._log[: len(self._log) - _REQUEST_LOG_LIMIT]

    def wait_stall(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes (a client not trusting the CA) and dropped connections are expected.
        error = sys.exc_info()[1]
        if isinstance(error, (ssl.SSLError, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _make_handler(sandbox: DataverseSandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.sandbox = sandbox
    return Handler


class _Handler(BaseHTTPRequestHandler):
    sandbox: DataverseSandbox
    protocol_version = "HTTP/1.1"  # keep-alive: one TLS handshake per client connection
    server_version = "DataverseSandbox/1.0"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without NODELAY, Nagle + delayed ACK add ~40 ms per call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        if path.startswith("/_control/"):
            if self.client_address[0] not in ("127.0.0.1", "::1"):
                self._send(Response(403, {"Content-Type": "application/json"}, b'{"error":"loopback only"}'))
                return
            self._send(control.handle(self.sandbox, self.command, path[len("/_control/") :], split.query, body))
            return
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "time": self.sandbox.clock(),
            "method": self.command,
            "path": unquote(path),
            "query": split.query,
            "headers": {h: self.headers.get(h) for h in _LOGGED_HEADERS if self.headers.get(h) is not None},
            "authorized": bool(self.headers.get("Authorization")),
        }
        with self.sandbox.in_flight() as in_flight:
            try:
                response = self._answer(path, split.query, body, in_flight, entry)
            except Exception:  # a sandbox bug: answer like the service would, and show the traceback
                traceback.print_exc()
                response = Response(
                    500, {"Content-Type": JSON_TYPE}, error_body("0x80040216", "An unexpected error occurred.")
                )
        if response is None:  # dropped connection
            entry["status"] = 0
            self.sandbox.record(entry)
            return
        self.sandbox.throttle.spent((time.perf_counter() - started) * 1000)
        entry["status"] = response.status
        if response.status >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            try:
                entry["error_code"] = json.loads(response.body).get("error", {}).get("code")
            except (ValueError, AttributeError):
                pass
        self.sandbox.record(entry)
        self._send(response)

    def _answer(self, path: str, query: str, body: bytes, in_flight: int, entry: dict[str, Any]) -> Response | None:
        sandbox = self.sandbox
        fault = sandbox.faults.take(self.command, path)
        if fault is not None:
            entry["fault"] = fault.kind
            if fault.kind == "drop":
                return self._drop()
            if fault.kind == "drop_after":
                self._answer_unfaulted(path, query, body, in_flight, entry)  # the write happens...
                return self._drop()  # ...and its answer is lost
            if fault.kind == "stall":
                sandbox.wait_stall(fault.stall_seconds)
            elif fault.kind == "429":
                return _throttled(
                    fault.retry_after,
                    "0x80072322",
                    "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                )
            else:
                status = int(fault.kind)
                message = "Service Unavailable" if status == 503 else "An unexpected error occurred."
                return Response(status, {"Content-Type": JSON_TYPE}, error_body("0x80040216", message))
        return self._answer_unfaulted(path, query, body, in_flight, entry)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return None

    def _answer_unfaulted(
        self, path: str, query: str, body: bytes, in_flight: int, entry: dict[str, Any]
    ) -> Response | None:
        sandbox = self.sandbox
        parts = path.strip("/").split("/")
        assert sandbox.entra is not None and sandbox.webapi is not None
        if len(parts) >= 2 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"] and self.command == "GET":
            return _json(200, sandbox.entra.openid_configuration(sandbox.url, parts[0]))
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and self.command == "POST":
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            token_endpoint = f"{sandbox.url}/{parts[0]}/oauth2/v2.0/token"
            status, payload = sandbox.entra.token(parts[0], form, token_endpoint)
            return _json(status, payload)
        if not (path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")):
            return Response(404, {"Content-Type": JSON_TYPE}, error_body("0x80060888", "Resource not found."))
        client_id = sandbox.entra.client_of(self.headers.get("Authorization"))
        if client_id is None:
            challenge = (
                f"Bearer authorization_uri={sandbox.authority_host}/{sandbox.tenant_id}/oauth2/authorize, "
                f"resource_id={sandbox.url}"
            )
            # Dataverse's error shape; the code for a missing/expired token is not documented (left empty).
            return Response(
                401,
                {"Content-Type": JSON_TYPE, "WWW-Authenticate": challenge},
                error_body("", "The access token is missing, invalid or expired."),
            )
        throttled = sandbox.throttle.admit(in_flight)
        if throttled is not None:
            return _throttled(throttled.retry_after, throttled.code, throttled.message)
        if sandbox.latency_ms:
            entry["latency_ms"] = sandbox.latency_ms
            sandbox.wait_stall(sandbox.latency_ms / 1000)
        prefer = ",".join(self.headers.get_all("Prefer") or [])
        headers = {k.lower(): v for k, v in self.headers.items()}
        headers["prefer"] = prefer
        caller = Caller(users.app_user_id(client_id))
        api_path = unquote(path[len(API_PREFIX) :]) if path.startswith(API_PREFIX) else ""
        return sandbox.webapi.handle(Request(self.command, api_path, query, headers, body, caller))

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.body and self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True


def _json(status: int, payload: Any) -> Response:
    return Response(status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode())


def _throttled(retry_after: int, code: str, message: str) -> Response:
    return Response(
        429,
        {"Content-Type": JSON_TYPE, "Retry-After": str(retry_after)},
        json.dumps({"error": {"code": code, "message": message}}).encode(),
    )

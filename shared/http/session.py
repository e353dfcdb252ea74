"""The HTTP client every adapter uses: timeouts, retries, token refresh and classification in one place."""

from __future__ import annotations

import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from shared.http.classify import Outcome, classify_status
from shared.http.errors import ApiError, TlsVerificationError, TransportError, certificate_failure, tls_failure_message
from shared.http.pacing import Gate, PacingPolicy, RateLearner, Ticket
from shared.http.plain_request import prepare_plain
from shared.http.response_headers import POOL_CLASSES
from shared.http.retry import THROTTLE_STATUSES, RetryPolicy, parse_retry_after

log = logging.getLogger("sync.http")

# What to do about an untrusted server certificate; only the Dataverse client can be given a CA bundle.
TLS_HINT = "if a private or TLS-inspecting CA signs it, give that CA's bundle (DATAVERSE_CA_BUNDLE for Dataverse)"

# (response) -> (outcome, error code, message). Clients pass their own to read their error bodies.
Classifier = Callable[[requests.Response], tuple[Outcome, str, str]]


class TokenProvider(Protocol):
    def token(self) -> str:
        """A valid bearer token, from cache when possible."""
        ...

    def invalidate(self) -> None:
        """Forget the cached token: the server said it is no longer valid."""
        ...


def default_classifier(response: requests.Response) -> tuple[Outcome, str, str]:
    return classify_status(response.status_code), "", response.reason or ""


class EnvironmentOnceSession(requests.Session):
    """A Session that reads the proxy and CA-bundle environment once per origin, not on every request.

    requests walks os.environ (proxies, NO_PROXY, REQUESTS_CA_BUNDLE) for each request: about a fifth of a
    call's CPU here, taken under the GIL the parallel writers share. A worker's environment is fixed at start
    (app settings), so the first answer per origin stands for the life of the session."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], Any] = {}

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # requests' settings mapping: proxies, stream, verify, cert
        if proxies or not isinstance(url, str):  # per-request proxies: requests' own rules
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        split = urllib.parse.urlsplit(url)
        key = (split.scheme, split.netloc, stream, verify, cert, self.trust_env)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        # requests looks for ~/.netrc (file-system calls) on every request without auth: once per origin here.
        if self.trust_env and not request.auth and not self.auth and isinstance(request.url, str):
            request.auth = self._netrc_auth(request.url) or _no_auth
        return super().prepare_request(request)

    def request(  # type: ignore[override]  # requests' own signature, keywords as callers use them
        self, method: str, url: Any, params: Any = None, data: Any = None, headers: Any = None,
        cookies: Any = None, files: Any = None, auth: Any = None, timeout: Any = None,
        allow_redirects: bool = True, proxies: Any = None, hooks: Any = None, stream: Any = None,
        verify: Any = None, cert: Any = None, json: Any = None,
    ) -> requests.Response:  # fmt: skip
        """Session.request; a plain call (see shared.http.plain_request) skips requests' general preparation."""
        prepared = None
        if not (params or cookies or files or auth or hooks):
            netrc = self._netrc_auth(url) if self.trust_env and isinstance(url, str) else None
            prepared = prepare_plain(self, method, url, headers=headers, data=data, json=json, netrc_auth=netrc)
        if prepared is None:
            return super().request(
                method, url, params=params, data=data, headers=headers, cookies=cookies, files=files, auth=auth,
                timeout=timeout, allow_redirects=allow_redirects, proxies=proxies, hooks=hooks, stream=stream,
                verify=verify, cert=cert, json=json,
            )  # fmt: skip
        settings = self.merge_environment_settings(prepared.url, proxies or {}, stream, verify, cert)
        return self.send(prepared, timeout=timeout, allow_redirects=allow_redirects, **settings)

    def _netrc_auth(self, url: str) -> Any:
        split = urllib.parse.urlsplit(url)
        key = ("netrc", split.scheme, split.netloc)
        if key not in self._environment:
            self._environment[key] = requests.utils.get_netrc_auth(url)
        return self._environment[key]


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """No credentials to add (what requests does when no netrc entry matches)."""
    return request


class OriginPoolAdapter(HTTPAdapter):
    """An HTTPAdapter whose connection pools read response headers without the e-mail parser
    (shared.http.response_headers), and are looked up once per origin.

    For each request requests re-parses the URL, rebuilds the pool key and normalises it in urllib3's pool
    manager: a tenth of a call's CPU here. So the pool of an origin (with the same TLS settings) is kept here
    for the adapter's life: a few origins per session (Campaign, IMS, Dataverse, the storage account). urllib3 2
    does not close the pools its manager lets go, so a kept pool stays usable. Requests through a proxy go
    requests' own way."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)
        self._pools: dict[tuple[str, Any, Any], ConnectionPool] = {}

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> ConnectionPool:
        url = request.url
        plain_settings = isinstance(verify, bool | str) and (cert is None or isinstance(cert, str | tuple))
        if not isinstance(url, str) or not plain_settings or (proxies and select_proxy(url, proxies)):
            return super().get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        key = (_origin(url), verify, cert)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = super().get_connection_with_tls_context(request, verify, proxies=proxies,
                                                                             cert=cert)  # fmt: skip
        return pool

    def close(self) -> None:
        super().close()
        self._pools.clear()


def _origin(url: str) -> str:
    """scheme://authority of an absolute URL, as written (a differently written origin is another entry)."""
    authority_end = url.find("/", url.find("//") + 2)
    return url if authority_end < 0 else url[:authority_end]


def build_session(pool_size: int = 16, user_agent: str = "d365-campaign-connector") -> requests.Session:
    """A pooled session without urllib3's own retries: HttpClient owns the retry loop."""
    session = EnvironmentOnceSession()
    adapter = OriginPoolAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class HttpClient:
    """Sends a request until it succeeds or its class says stop.

    - RATE_LIMITED (429) and 503: wait (Retry-After, or backoff with jitter) and resend until the waits of
      the request reach the policy's max_total_wait. When the server names the wait, the client's gate for
      that host closes: every thread of this client waits it out, instead of each collecting its own 429.
    - Other RETRY (5xx, 408, a lost connection): the same, also within the policy's max_attempts.
    - AUTH_EXPIRED: invalidate the token and resend once.
    - FATAL and RECORD_ERROR: raise ApiError at once; the caller decides (stop, or dead-letter).
    """

    def __init__(
        self,
        *,
        session: requests.Session | None = None,
        token_provider: TokenProvider | None = None,
        classifier: Classifier = default_classifier,
        policy: RetryPolicy | None = None,
        pacing: PacingPolicy | None = None,
        timeout: tuple[float, float] = (10.0, 120.0),
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.session = session or build_session()
        self.token_provider = token_provider
        self.classifier = classifier
        self.policy = policy or RetryPolicy()
        self.pacing = pacing or PacingPolicy()
        self.timeout = timeout
        self.default_headers = dict(default_headers or {})
        self.sleep = sleep
        self.clock = clock
        self.rand = rand
        self._hosts: dict[str, tuple[Gate, RateLearner | None]] = {}
        self._hosts_lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | Mapping[str, Any] | None = None,
        allow: frozenset[int] = frozenset(),
        idempotent: bool = True,
    ) -> requests.Response:
        """Send and return a successful response (or one whose status is in `allow`).

        `idempotent=False` (a create without a client-chosen key): a connection lost after sending is
        not resent, since the server may have applied it; TransportError lets the caller check first.
        Answers that prove nothing was done (429, 503) are still retried.
        """
        policy = self.policy
        gate, learner = self._pace(url)
        waited = 0.0
        refreshed = False
        attempt = 0
        failures = 0  # transient failures other than 429/503: bounded by max_attempts
        while True:
            attempt += 1
            waited += self._wait_turn(gate, learner, policy.max_total_wait - waited, method, url)
            merged = dict(self.default_headers)
            if self.token_provider is not None:
                merged["Authorization"] = f"Bearer {self.token_provider.token()}"
            merged.update(headers or {})
            sent_at = self.clock()
            try:
                response = self.session.request(
                    method, url, headers=merged, params=params, json=json, data=data, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                verify_error = certificate_failure(exc)
                if verify_error is not None:  # an untrusted certificate stays untrusted: do not retry
                    raise TlsVerificationError(tls_failure_message(verify_error, url, TLS_HINT),
                                               method=method, url=url) from exc  # fmt: skip
                failures += 1
                delay = policy.backoff(attempt, self.rand)
                if not idempotent and not never_sent(exc):
                    raise TransportError(f"{type(exc).__name__}; not resent (may have been applied)",
                                         method=method, url=url) from exc  # fmt: skip
                if failures >= policy.max_attempts or waited + delay > policy.max_total_wait:
                    raise TransportError(
                        f"{type(exc).__name__} after {attempt} attempts", method=method, url=url
                    ) from exc
                log.warning("http.retry %s", _event(method, url, attempt, "connection", delay))
                self.sleep(delay)
                waited += delay
                continue

            status = response.status_code
            if learner is not None and status not in THROTTLE_STATUSES:
                learner.accepted(sent_at)
            if status in allow:
                return response
            outcome, code, message = self.classifier(response)
            if outcome is Outcome.OK:
                return response
            if outcome is Outcome.AUTH_EXPIRED and self.token_provider is not None and not refreshed:
                refreshed = True
                self.token_provider.invalidate()
                log.info("http.token_refresh %s", _event(method, url, attempt, "401", 0.0))
                continue
            throttled = status in THROTTLE_STATUSES
            if outcome.retryable and (idempotent or throttled):
                failures += 0 if throttled else 1
                delay = self._delay(response, outcome, attempt)
                if outcome is Outcome.RATE_LIMITED or "Retry-After" in response.headers:
                    # The server named the wait: close the host's gate, so every thread of this client waits it
                    # out; this request's wait is until the gate opens (another thread may have closed it longer).
                    ticket, hold = self._close_gate(gate, learner, sent_at, delay)
                else:
                    ticket, hold = None, delay  # this request's own trouble: only it backs off
                if (throttled or failures < policy.max_attempts) and waited + hold <= policy.max_total_wait:
                    log.warning("http.retry %s", _event(method, url, attempt, str(status), hold))
                    self.sleep(hold)
                    waited += hold
                    if ticket is not None:
                        waited += self._wait_out(gate, ticket, policy.max_total_wait - waited, method, url)
                    continue
            raise ApiError(outcome, status, message, code=code, method=method, url=url)

    def _pace(self, url: str) -> tuple[Gate, RateLearner | None]:
        host = _host(url)
        with self._hosts_lock:
            pace = self._hosts.get(host)
            if pace is None:
                learner = RateLearner(self.pacing) if self.pacing.learn_rate else None
                pace = self._hosts[host] = (Gate(), learner)
            return pace

    def _wait_turn(self, gate: Gate, learner: RateLearner | None, budget: float, method: str, url: str) -> float:
        """Before sending: wait for the host's gate (a Retry-After another thread got) and the learned rate."""
        hold, ticket = gate.hold(self.clock())
        waited = 0.0
        if hold > 0:
            if hold > budget:
                raise _gate_too_long(method, url)
            self.sleep(hold)
            waited = hold + self._wait_out(gate, ticket, budget - hold, method, url)
        if learner is not None:
            slot = learner.acquire(self.clock())
            if slot > 0:
                self.sleep(slot)
                waited += slot
        return waited

    def _wait_out(self, gate: Gate, ticket: Ticket, budget: float, method: str, url: str) -> float:
        """After waiting a ticket: open the gate for everyone, or wait the extension another thread made."""
        waited = 0.0
        extension, ticket = gate.waited(ticket)
        while extension > 0:
            if waited + extension > budget:
                raise _gate_too_long(method, url)
            self.sleep(extension)
            waited += extension
            extension, ticket = gate.waited(ticket)
        return waited

    def _close_gate(
        self, gate: Gate, learner: RateLearner | None, sent_at: float, delay: float
    ) -> tuple[Ticket, float]:
        """The ticket to wait on and this request's wait: its own delay, or longer if the gate already was."""
        now = self.clock()
        if learner is not None:
            learner.throttled(now, sent_at, delay)
        ticket = gate.close(now + delay)
        return ticket, (delay if ticket.until == now + delay else ticket.until - now)

    def _delay(self, response: requests.Response, outcome: Outcome, attempt: int) -> float:
        if outcome is Outcome.RATE_LIMITED or "Retry-After" in response.headers:
            server = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            if server:  # a Retry-After of 0 paces nothing: back off as without one
                return server
        return self.policy.backoff(attempt, self.rand)


def never_sent(exc: BaseException) -> bool:
    """Whether a connection error happened before the request could reach the server.

    Decided from urllib3's exception types anywhere in the cause chain (requests wraps them in MaxRetryError):
    the connection could not be established (NewConnectionError: refused, unreachable, name not resolved) or
    timed out while connecting (ConnectTimeoutError). Anything else (a reset, a read timeout, a connection
    closed before the answer) may have reached the server after the request was sent.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, NewConnectionError | ConnectTimeoutError):
            return True
        if isinstance(error, MaxRetryError) and isinstance(error.reason, BaseException):
            pending.append(error.reason)
        pending.extend(e for e in (error.__cause__, error.__context__) if e is not None)
        pending.extend(a for a in error.args if isinstance(a, BaseException))
    return False


def _gate_too_long(method: str, url: str) -> ApiError:
    return ApiError(
        Outcome.RATE_LIMITED, 429, "the host's Retry-After passes the retry wait cap", method=method, url=url
    )


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _event(method: str, url: str, attempt: int, reason: str, delay: float) -> str:
    path = url.split("?", 1)[0]
    return f'{{"method":"{method}","path":"{path}","attempt":{attempt},"reason":"{reason}","delay":{delay:.2f}}}'

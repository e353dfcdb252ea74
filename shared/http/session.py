"""The HTTP client every adapter uses: timeouts, retries, token refresh and classification in one place."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from shared.http.classify import Outcome, classify_status
from shared.http.errors import ApiError, TlsVerificationError, TransportError, certificate_failure, tls_failure_message
from shared.http.retry import RetryPolicy, parse_retry_after

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


def build_session(pool_size: int = 16, user_agent: str = "d365-campaign-connector") -> requests.Session:
    """A pooled session without urllib3's own retries: HttpClient owns the retry loop."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class HttpClient:
    """Sends a request until it succeeds or its class says stop.

    - RETRY and RATE_LIMITED: wait (Retry-After, or backoff with jitter) and resend, within the
      attempt and total-wait caps.
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
        self.timeout = timeout
        self.default_headers = dict(default_headers or {})
        self.sleep = sleep
        self.clock = clock
        self.rand = rand

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
        waited = 0.0
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            merged = dict(self.default_headers)
            if self.token_provider is not None:
                merged["Authorization"] = f"Bearer {self.token_provider.token()}"
            merged.update(headers or {})
            try:
                response = self.session.request(
                    method, url, headers=merged, params=params, json=json, data=data, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                verify_error = certificate_failure(exc)
                if verify_error is not None:  # an untrusted certificate stays untrusted: do not retry
                    raise TlsVerificationError(tls_failure_message(verify_error, url, TLS_HINT),
                                               method=method, url=url) from exc  # fmt: skip
                delay = policy.backoff(attempt, self.rand)
                maybe_applied = not isinstance(exc, requests.ConnectTimeout) and not _never_sent(exc)
                if not idempotent and maybe_applied:
                    raise TransportError(f"{type(exc).__name__}; not resent (may have been applied)",
                                         method=method, url=url) from exc  # fmt: skip
                if attempt >= policy.max_attempts or waited + delay > policy.max_total_wait:
                    raise TransportError(
                        f"{type(exc).__name__} after {attempt} attempts", method=method, url=url
                    ) from exc
                log.warning("http.retry %s", _event(method, url, attempt, "connection", delay))
                self.sleep(delay)
                waited += delay
                continue

            if response.status_code in allow:
                return response
            outcome, code, message = self.classifier(response)
            if outcome is Outcome.OK:
                return response
            if outcome is Outcome.AUTH_EXPIRED and self.token_provider is not None and not refreshed:
                refreshed = True
                self.token_provider.invalidate()
                log.info("http.token_refresh %s", _event(method, url, attempt, "401", 0.0))
                continue
            if outcome.retryable and (idempotent or response.status_code in (429, 503)):
                delay = self._delay(response, outcome, attempt)
                if attempt < policy.max_attempts and waited + delay <= policy.max_total_wait:
                    log.warning("http.retry %s", _event(method, url, attempt, str(response.status_code), delay))
                    self.sleep(delay)
                    waited += delay
                    continue
            raise ApiError(outcome, response.status_code, message, code=code, method=method, url=url)

    def _delay(self, response: requests.Response, outcome: Outcome, attempt: int) -> float:
        if outcome is Outcome.RATE_LIMITED or "Retry-After" in response.headers:
            server = parse_retry_after(response.headers.get("Retry-After"), self.clock())
            if server is not None:
                return server
        return self.policy.backoff(attempt, self.rand)


def _never_sent(exc: Exception) -> bool:
    """Connection refused or not established: the request cannot have reached the server."""
    text = str(exc)
    return "Connection refused" in text or "NewConnectionError" in text or "Failed to establish" in text


def _event(method: str, url: str, attempt: int, reason: str, delay: float) -> str:
    path = url.split("?", 1)[0]
    return f'{{"method":"{method}","path":"{path}","attempt":{attempt},"reason":"{reason}","delay":{delay:.2f}}}'

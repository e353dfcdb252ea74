"""Adobe IMS OAuth Server-to-Server access tokens for the Campaign API.

Flow (developer.adobe.com, Authentication > Server-to-Server > IMS): POST the form
`grant_type=client_credentials, client_id, client_secret, scope` (scopes comma-separated) to
`https://ims-na1.adobelogin.com/ims/token/v3`; the answer is `{access_token, token_type: "bearer",
expires_in}` (about 24 h). There is no refresh token: a new token is simply requested with the same
credentials. The token is cached until shortly before it expires, and `invalidate()` (called by
HttpClient on a 401) forces a new one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable

import requests

from shared.http import ApiError, HttpClient, Outcome, RetryPolicy, build_session

log = logging.getLogger("sync.auth.ims")

DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com/ims/token/v3"

# Refresh this long before expiry (capped at a tenth of the lifetime for short-lived tokens), so a
# token never expires between being handed out and reaching Campaign.
DEFAULT_REFRESH_MARGIN = 300.0


def ims_classifier(response: requests.Response) -> tuple[Outcome, str, str]:
    """IMS answers errors as `{"error": "...", "error_description": "..."}`.

    Bad credentials or scopes (400/401/403) will not fix themselves: FATAL, never retried. The IMS
    error text names the problem (invalid_client, invalid_scope) and carries no secret.
    """
    status = response.status_code
    if 200 <= status < 300:
        return Outcome.OK, "", ""
    code = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            code = str(body.get("error") or "")
    except ValueError:
        pass
    message = f"IMS token request refused{f' ({code})' if code else ''}"
    if status == 429:
        return Outcome.RATE_LIMITED, code, message
    if status >= 500 or status == 408:
        return Outcome.RETRY, code, message
    return Outcome.FATAL, code, message


class ImsTokenProvider:
    """A `TokenProvider` (see shared.http) for Adobe IMS client credentials. Thread-safe."""

    def __init__(
        self,
        ims_url: str,
        client_id: str,
        client_secret: str,
        scopes: Iterable[str] | str,
        *,
        session: requests.Session | None = None,
        http: HttpClient | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("IMS client_id and client_secret are required")
        self.ims_url = ims_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes = scopes if isinstance(scopes, str) else ",".join(scopes)
        self._clock = clock
        self._refresh_margin = refresh_margin
        # Its own HttpClient: the token call must never carry a bearer token nor trigger a refresh.
        self._http = http or HttpClient(
            session=session or build_session(),
            classifier=ims_classifier,
            policy=policy or RetryPolicy(max_attempts=4, max_total_wait=60.0),
            sleep=sleep,
            clock=clock,
        )
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.fetch_count = 0  # tokens obtained so far: lets tests and metrics see refreshes

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._refresh_at = 0.0

    def _fetch(self) -> None:
        requested_at = self._clock()
        response = self._http.request(
            "POST",
            self.ims_url,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._client_secret,
                "scope": self.scopes,
            },
        )
        try:
            body = response.json()
            access_token = str(body["access_token"])
            token_type = str(body.get("token_type", "bearer"))
            expires_in = float(body["expires_in"])
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ApiError(
                Outcome.FATAL,
                response.status_code,
                "IMS token response lacks access_token/expires_in",
                method="POST",
                url=self.ims_url,
            ) from exc
        if token_type.lower() != "bearer" or not access_token:
            raise ApiError(
                Outcome.FATAL, response.status_code, "IMS returned no bearer token", method="POST", url=self.ims_url
            )
        margin = min(self._refresh_margin, expires_in / 10)
        self._token = access_token
        self._refresh_at = requested_at + expires_in - margin
        self.fetch_count += 1
        log.info("ims.token_issued %s", json.dumps({"expires_in": expires_in, "fetches": self.fetch_count}))

"""Entra ID app-only tokens for the Dataverse Web API (MSAL confidential client, client credentials).

- Authority `<authority_host>/<tenant>`, scope `<org url>/.default` (PA authenticate-oauth.md).
- One `msal.ConfidentialClientApplication`, created on first use (its constructor already calls the
  authority) and reused: since msal 1.23 `acquire_token_for_client` answers from its cache until
  the token nears expiry, so warm Function instances do not ask Entra again.
- `invalidate()` (HttpClient calls it on a 401) removes the cached access tokens, so the next
  `token()` asks Entra for a new one; msal itself refuses `force_refresh` for this flow.
- Token lifetimes are 60-90 minutes: nothing here assumes one hour.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from shared.http import ApiError, Outcome, TlsVerificationError, TransportError
from shared.http.errors import certificate_failure, tls_failure_message
from shared.http.tls import build_verified_session, with_default_timeout

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# Hosts msal knows: instance discovery is harmless for them; any other host (a sovereign cloud
# given explicitly, or the local sandbox) is used as given.
_KNOWN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)
_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_TLS_HINT = ("trust its CA with DATAVERSE_CA_BUNDLE (a PEM bundle; e.g. the local sandbox's, or a TLS-inspecting "
             "proxy's)")  # fmt: skip


class TokenAcquisitionError(ApiError):
    """Entra refused or failed the token request. Carries Entra's error name and description, never secrets."""


class DataverseTokenProvider:
    """A `TokenProvider` (shared.http) for one Dataverse organisation. Thread-safe."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        resource_url: str,
        client_secret: str | None = None,
        certificate: tuple[str, str] | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        verify: bool | str = True,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        """`certificate` is (private key PEM, SHA-1 thumbprint hex) of the app registration's certificate.

        `verify` is True (system CAs) or a CA bundle path; it is honoured even if REQUESTS_CA_BUNDLE is set.
        """
        if (client_secret is None) == (certificate is None):
            raise ValueError("give exactly one of client_secret or certificate")
        self.client_id = client_id
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self.scopes = [resource_url.rstrip("/") + "/.default"]
        self._credential: Any = (
            client_secret
            if client_secret is not None
            else {"private_key": certificate[0], "thumbprint": certificate[1]}  # type: ignore[index]
        )
        self._known_host = (urlsplit(authority_host).hostname or "") in _KNOWN_HOSTS
        self._session = session or with_default_timeout(build_verified_session(verify, pool_size=4), timeout)
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def _application(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._credential,
                        authority=self.authority,
                        http_client=self._session,
                        instance_discovery=None if self._known_host else False,
                        token_cache=msal.TokenCache(),
                    )
                except requests.RequestException as exc:
                    self._raise_for_tls(exc)
                    raise TransportError(f"authority unreachable: {type(exc).__name__}", url=self.authority) from exc
                except ValueError as exc:  # msal: bad authority or unreachable discovery document
                    raise TokenAcquisitionError(Outcome.FATAL, 0, f"authority rejected: {exc}"[:300]) from exc
            return self._app

    def token(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=self.scopes)
        except requests.RequestException as exc:
            self._raise_for_tls(exc)
            raise TransportError(f"token endpoint unreachable: {type(exc).__name__}", url=self.authority) from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            return str(token)
        error = str((result or {}).get("error") or "unknown_error")
        description = str((result or {}).get("error_description") or "").split("\r\n")[0][:200]
        outcome = Outcome.RETRY if error in _TRANSIENT_ERRORS else Outcome.FATAL
        raise TokenAcquisitionError(outcome, 0, f"Entra refused the token request: {error}: {description}", code=error)

    def _raise_for_tls(self, exc: requests.RequestException) -> None:
        """A certificate the configured trust rejects is a fatal, named problem, not "unreachable"."""
        verify_error = certificate_failure(exc)
        if verify_error is not None:
            message = tls_failure_message(verify_error, self.authority, _TLS_HINT)
            raise TlsVerificationError(message, url=self.authority) from exc

    def invalidate(self) -> None:
        app = self._app
        if app is None:
            return
        cache = app.token_cache
        for entry in list(
            cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, query={"client_id": self.client_id})
        ):
            cache.remove_at(entry)

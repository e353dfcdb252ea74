"""Exceptions raised by the HTTP stack. Messages never carry bodies with personal data."""

from __future__ import annotations

import ssl

from shared.http.classify import Outcome


class ApiError(Exception):
    """A response the client could not turn into success, with its classification."""

    def __init__(
        self,
        outcome: Outcome,
        status: int,
        message: str,
        *,
        code: str = "",
        method: str = "",
        url: str = "",
    ) -> None:
        self.outcome = outcome
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.url = url
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.method} {_path_only(self.url)} " if self.method else ""
        code = f" [{self.code}]" if self.code else ""
        return f"{where}-> {self.status}{code} ({self.outcome.value}): {self.message}"


class TransportError(ApiError):
    """No response at all after every retry: connection refused, dropped, or timed out."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(Outcome.RETRY, 0, message, method=method, url=url)


class TlsVerificationError(TransportError):
    """The server's TLS certificate is not trusted: no retry can fix that, so it is fatal."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message, method=method, url=url)
        self.outcome = Outcome.FATAL
        Exception.__init__(self, self.describe())


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate-verification error inside an exception chain (requests wraps urllib3 wraps ssl), if any."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return None


def tls_failure_message(verify_error: ssl.SSLCertVerificationError, url: str, hint: str) -> str:
    host = url.split("//", 1)[-1].split("/", 1)[0]
    reason = verify_error.verify_message or verify_error.reason or "not trusted"
    return f"TLS certificate verification failed for {host} ({reason}): {hint}"


def _path_only(url: str) -> str:
    # Query strings can hold filter values such as e-mail addresses: keep them out of messages.
    return url.split("?", 1)[0]

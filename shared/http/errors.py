"""Exceptions raised by the HTTP stack. Messages never carry bodies with personal data."""

from __future__ import annotations

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


def _path_only(url: str) -> str:
    # Query strings can hold filter values such as e-mail addresses: keep them out of messages.
    return url.split("?", 1)[0]

"""Classify a response once; callers act on the class, never on raw status codes."""

from __future__ import annotations

import enum


class Outcome(enum.Enum):
    OK = "ok"
    RETRY = "retry"  # transient: 5xx, dropped connection; back off and try again
    RATE_LIMITED = "rate_limited"  # 429: wait Retry-After, then try again
    AUTH_EXPIRED = "auth_expired"  # 401: refresh the token once, then try again once
    FATAL = "fatal"  # configuration or permission problem: stop the run
    RECORD_ERROR = "record_error"  # this one record is bad: dead-letter it, go on

    @property
    def retryable(self) -> bool:
        return self in (Outcome.RETRY, Outcome.RATE_LIMITED)


# 4xx statuses that speak of the one record sent, not of the whole run.
_RECORD_STATUSES = frozenset({400, 404, 409, 412, 413, 422})


def classify_status(status: int) -> Outcome:
    """Default mapping from HTTP status to Outcome. Clients refine it with error codes."""
    if 200 <= status < 400:
        return Outcome.OK
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 401:
        return Outcome.AUTH_EXPIRED
    if status in (408,) or status >= 500:
        return Outcome.RETRY
    if status in _RECORD_STATUSES:
        return Outcome.RECORD_ERROR
    return Outcome.FATAL

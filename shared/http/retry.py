"""Retry timing: Retry-After when the server gives it, capped exponential backoff with jitter otherwise.

Two kinds of retryable answers, bounded differently:
- "not now" (429, 503): the server did nothing and says so; rate limiting is the normal state of these APIs,
  so they are retried until the waits of the request reach `max_total_wait` (HTTP_MAX_RETRY_WAIT_SECONDS),
  however many attempts that takes;
- other transient failures (500, 502, 504, 408, a lost connection): something may be broken, so they also
  stop after `max_attempts` tries, whichever cap comes first.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
from collections.abc import Callable

THROTTLE_STATUSES = frozenset({429, 503})  # retried until the time cap, not counted against max_attempts


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # tries of a request failing transiently (not 429/503), the first included
    base_delay: float = 1.0  # seconds before the first retry without Retry-After
    max_delay: float = 60.0  # cap of one backoff wait (a server's Retry-After is honoured as given)
    max_total_wait: float = 300.0  # cap of all waits of one request together, 429/503 included
    jitter: float = 0.5  # fraction of the delay added at random, spreads concurrent clients

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry `retry_number` (1-based) when the server named none."""
        delay = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        return delay * (1 + self.jitter * rand())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)

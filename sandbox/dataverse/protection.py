"""Service protection limits and injected faults.

Throttling follows PA api-limits.md: 429 Too Many Requests with Retry-After (seconds) and one of the
three error codes and messages; requests and execution time are counted over a sliding window,
concurrency fails at once. Faults are test tools: the next K requests whose path contains a given
text answer 429/500/502/503/504, drop the connection before (drop) or after doing the work (drop_after: a
lost response), or stall before answering.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
from collections.abc import Callable

from sandbox.dataverse.odata import THROTTLE_CONCURRENCY, THROTTLE_EXECUTION_TIME, THROTTLE_REQUESTS

FAULT_KINDS = frozenset({"429", "500", "502", "503", "504", "drop", "drop_after", "stall"})
THROTTLE_KINDS = frozenset({"requests", "execution_time", "concurrency"})


@dataclasses.dataclass
class Fault:
    path: str
    kind: str
    remaining: int
    method: str | None = None
    retry_after: int = 1
    stall_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class Throttled:
    retry_after: int
    code: str
    message: str


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: dict[str, int] = {}  # kind -> requests it met, counted when met (a stall is logged at its end)

    def add(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; use one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.fired.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, consuming one of its K uses."""
        with self._lock:
            for fault in self._faults:
                if fault.path in path and (fault.method is None or fault.method.upper() == method):
                    fault.remaining -= 1
                    self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


class Throttle:
    """One service protection limit at a time, per sandbox (the sandbox has a single application user)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.kind: str | None = None
        self.limit = 0.0
        self.window = 300.0
        self.fixed_retry_after: int | None = None
        self._events: collections.deque[tuple[float, float]] = collections.deque()
        self._lock = threading.Lock()

    def configure(self, kind: str, limit: float, window_seconds: float = 300.0, retry_after: int | None = None) -> None:
        if kind not in THROTTLE_KINDS:
            raise ValueError(f"unknown throttle kind {kind!r}; use one of {sorted(THROTTLE_KINDS)}")
        with self._lock:
            self.kind, self.limit, self.window, self.fixed_retry_after = kind, limit, window_seconds, retry_after
            self._events.clear()

    def clear(self) -> None:
        with self._lock:
            self.kind = None
            self._events.clear()

    def admit(self, in_flight: int) -> Throttled | None:
        """Check a new request (in_flight counts it). None means go ahead."""
        with self._lock:
            if self.kind is None:
                return None
            now = self.clock()
            while self._events and self._events[0][0] <= now - self.window:
                self._events.popleft()
            if self.kind == "concurrency":
                if in_flight > self.limit:
                    return Throttled(
                        self.fixed_retry_after or 1,
                        THROTTLE_CONCURRENCY,
                        f"Number of concurrent requests exceeded the limit of {int(self.limit)}.",
                    )
                return None
            if self.kind == "requests":
                if len(self._events) >= self.limit:
                    return Throttled(
                        self._retry_after(now),
                        THROTTLE_REQUESTS,
                        f"Number of requests exceeded the limit of {int(self.limit)} over time window of "
                        f"{int(self.window)} seconds.",
                    )
                self._events.append((now, 0.0))
                return None
            spent = sum(ms for _, ms in self._events)
            if spent >= self.limit:
                return Throttled(
                    self._retry_after(now),
                    THROTTLE_EXECUTION_TIME,
                    f"Combined execution time of incoming requests exceeded limit of {int(self.limit):,} "
                    f"milliseconds over time window of {int(self.window)} seconds. Decrease number of concurrent "
                    "requests or reduce the duration of requests and try again later.",
                )
            return None

    def spent(self, milliseconds: float) -> None:
        """Record the execution time of a finished request (execution-time limit only)."""
        with self._lock:
            if self.kind == "execution_time":
                self._events.append((self.clock(), milliseconds))

    def _retry_after(self, now: float) -> int:
        if self.fixed_retry_after is not None:
            return self.fixed_retry_after
        oldest = self._events[0][0] if self._events else now
        return max(1, math.ceil(oldest + self.window - now))

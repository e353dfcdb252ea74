"""Fault injection and request budget: how tests make the sandbox misbehave on purpose.

A fault rule matches requests by method and a regular expression searched in the path, then:
- "respond": answers `status` with `body` (JSON, or text when a string) and `headers`, without
  touching any data;
- "drop": closes the connection without answering, before doing anything;
- "drop_after": does the work, then closes the connection without answering (a lost response);
- "stall": waits `seconds`, then answers normally (or with `status` when one is given).
Each rule fires `times` times (None: forever). Rules never apply to the control API.

The budget answers 429 with Retry-After once more than `limit` API calls arrived within `per_seconds`
of sandbox time. ACS documents no numeric rate limit [U]; this exists to test the client's handling.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

ACTIONS = ("respond", "drop", "drop_after", "stall")


@dataclasses.dataclass
class FaultRule:
    action: str = "respond"
    method: str | None = None
    path: str = ""  # regular expression, searched in the request path
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    times: int | None = 1
    fired: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"fault action must be one of {ACTIONS}")
        if self.action == "respond" and self.status is None:
            raise ValueError("a 'respond' fault needs a status")
        self._pattern = re.compile(self.path)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultRule:
        allowed = {"action", "method", "path", "status", "body", "headers", "seconds", "times"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**dict(raw))

    def take(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if not self._pattern.search(path):
            return False
        self.fired += 1
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "seconds": self.seconds,
            "times": self.times,
            "fired": self.fired,
        }


class Budget:
    def __init__(self, limit: int, per_seconds: float) -> None:
        if limit < 1 or per_seconds <= 0:
            raise ValueError("budget needs limit >= 1 and per_seconds > 0")
        self.limit = limit
        self.per_seconds = per_seconds
        self._times: collections.deque[float] = collections.deque()
        self.refused = 0

    def admit(self, now: float) -> int | None:
        """None when the call may go on, else the Retry-After seconds to answer with 429."""
        while self._times and self._times[0] <= now - self.per_seconds:
            self._times.popleft()
        if len(self._times) >= self.limit:
            self.refused += 1
            return max(1, math.ceil(self._times[0] + self.per_seconds - now))
        self._times.append(now)
        return None

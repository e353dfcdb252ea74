"""A small thread-safe cache whose entries expire: metadata read once per process, but not forever.

Warm Function instances keep clients between timer ticks, so an idle tick reads no metadata; an
operator's change on either instance (a new attribute, tracking turned on) is seen within `max_age`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

METADATA_MAX_AGE = 900.0  # seconds


class TtlCache(Generic[K, V]):
    def __init__(self, max_age: float = METADATA_MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() - entry[0] > self.max_age:
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._entries[key] = (self._clock(), value)
        return value

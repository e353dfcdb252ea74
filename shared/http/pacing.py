"""Pacing per host, shared by every thread of one HttpClient: the Retry-After gate and a learned rate limit.

- The gate: a 429 (or a 503 naming a Retry-After) says when the host will take requests again. The thread that
  got it closes the gate until then; every other thread of the client waits behind it instead of sending and
  collecting its own 429. A thread that waited a gate out opens it for the others, so the gate also works when
  sleep is virtual (tests) and the clock does not move while sleeping.
- The learned rate (optional, PacingPolicy.learn_rate): the first throttling episode teaches a rate, the number
  of requests the host accepted in the recent past over that past plus the Retry-After; requests are then spaced
  at that rate. A later episode lowers it; a probe period in which the pacing held requests back without a 429
  raises it a little, so the rate follows a budget that grows or shrinks. It needs a clock that moves with sleep.

Pure logic on an injected clock value: the caller passes `now` and does the sleeping.
"""

from __future__ import annotations

import collections
import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class PacingPolicy:
    learn_rate: bool = False  # off: the gate only
    decrease: float = 0.9  # a new throttling episode: at most this fraction of the rate in force
    increase: float = 1.05  # after a probe period that was held back by the rate and saw no 429
    probe_period: float = 10.0  # seconds
    horizon: float = 120.0  # seconds of accepted requests the first episode learns from
    history: int = 100_000  # accepted-request times kept for learning (memory bound)
    evidence: int = 20  # fewer accepted requests in the horizon teach no first rate (the gate still applies)

    def __post_init__(self) -> None:
        if not (0 < self.decrease < 1 < self.increase) or self.probe_period <= 0 or self.horizon <= 0:
            raise ValueError("pacing needs 0 < decrease < 1 < increase and positive periods")


@dataclasses.dataclass(frozen=True)
class Ticket:
    """One closing of a gate: its generation and the time it opens."""

    generation: int
    until: float


class Gate:
    """The earliest time the next request to one host may be sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self._generation = 0
        self._opened = 0  # the last generation some thread waited out

    def close(self, until: float) -> Ticket:
        """Keep requests back until `until` (a later closing wins); the ticket to wait on."""
        with self._lock:
            if until > self._until:
                self._until = until
                self._generation += 1
            return Ticket(self._generation, self._until)

    def hold(self, now: float) -> tuple[float, Ticket]:
        """Seconds to wait before sending (0 when open) and the ticket to report after waiting."""
        with self._lock:
            ticket = Ticket(self._generation, self._until)
            if self._opened == self._generation or self._until <= now:
                self._opened = self._generation
                return 0.0, ticket
            return self._until - now, ticket

    def waited(self, ticket: Ticket) -> tuple[float, Ticket]:
        """After waiting a ticket out: 0 (open; for every thread), or the extension made meanwhile."""
        with self._lock:
            if self._generation == ticket.generation or self._opened == self._generation:
                self._opened = self._generation
                return 0.0, ticket
            return max(0.0, self._until - ticket.until), Ticket(self._generation, self._until)


class RateLearner:
    """Spaces requests to one host at a rate learned from its throttling (see the module doc)."""

    def __init__(self, policy: PacingPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self.rate: float | None = None  # requests per second; None: not throttled yet, no limit
        self._next_slot = 0.0
        self._accepted: collections.deque[float] = collections.deque(maxlen=policy.history)
        self._episode_start = float("-inf")  # when the latest throttling episode began
        self._period_start: float | None = None
        self._held_back = False

    def acquire(self, now: float) -> float:
        """Seconds to wait for this request's slot (0 without a learned rate)."""
        with self._lock:
            if self.rate is None:
                return 0.0
            self._probe(now)
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.rate
            if slot > now:
                self._held_back = True
            return slot - now

    def accepted(self, sent_at: float) -> None:
        """A request sent at `sent_at` was answered without throttling."""
        with self._lock:
            self._accepted.append(sent_at)

    def throttled(self, now: float, sent_at: float, retry_after: float) -> None:
        """A request sent at `sent_at` was throttled with `retry_after` seconds to wait."""
        with self._lock:
            if sent_at < self._episode_start:
                return  # it was in flight when this episode began: it teaches nothing new
            self._episode_start = now
            measured = self._measured(now, retry_after)
            if self.rate is not None:
                lowered = self.rate * self.policy.decrease
                self.rate = lowered if measured is None else min(measured, lowered)
            elif measured is not None:
                self.rate = measured
            self._next_slot = max(self._next_slot, now + retry_after)
            self._period_start, self._held_back = now + retry_after, False

    def _measured(self, now: float, retry_after: float) -> float | None:
        """Accepted requests over the last `horizon` seconds, spread over that span plus the wait (None: too few).

        The host accepted them and then asked for `retry_after` more seconds, so this rate is at most the budget.
        """
        since = now - self.policy.horizon
        recent = [t for t in self._accepted if t > since]
        if len(recent) < self.policy.evidence:
            return None
        return len(recent) / max(now - min(recent) + retry_after, 1e-3)

    def _probe(self, now: float) -> None:
        if self._period_start is None or now - self._period_start < self.policy.probe_period:
            return
        if self._held_back and self._episode_start < self._period_start:
            assert self.rate is not None
            self.rate *= self.policy.increase
        self._period_start, self._held_back = now, False

"""Email deliveries and their logs: what Campaign records when it sends an email (docs/campaign-event-export.md).

`deliver(...)` plays one delivery to a list of profiles with a seeded random generator deciding, per profile, what
happens: the delivery log (sent, or failed with Campaign's failure type and reason), opens and clicks (tracking
logs), and sometimes an asynchronous bounce (the delivery log, first `sent`, turns `failed` later on the sandbox
clock). Profiles on the denylist (`denyList`, `denyListEmail`) are excluded at preparation, as Campaign does: they
get no log at all. A profile without an email address fails with `Address empty`.

Times: the delivery was sent `sent_ago` seconds before the call; opens and clicks fall between then and now; all
these logs are written now (their lastModified). An asynchronous bounce happens `async_bounce_delay` seconds after
the call: only then does its log change (lastModified = the bounce time).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

# Failure labels and types from understanding-delivery-failures.md (email ones).
HARD_REASONS = ("User unknown", "Quarantined address", "Unreachable", "Refused", "Account disabled")
SOFT_REASONS = ("Mailbox full", "Invalid domain", "Unreachable", "Refused", "Account disabled", "Not defined")
IGNORED_REASONS = ("Duplicate", "Error ignored")
ASYNC_BOUNCES = (("hard", "User unknown"), ("soft", "Mailbox full"), ("hard", "Account disabled"))

DEFAULT_RATES = {
    "hardBounce": 0.05,
    "softBounce": 0.03,
    "ignoredBounce": 0.02,
    "asyncBounce": 0.05,  # of the messages sent
    "open": 0.5,  # of the messages sent and not bounced
    "click": 0.4,  # of the messages opened
}
DEFAULT_URLS = (
    "https://www.example.com/offers/spring",
    "https://www.example.com/stores?city=Porto&lang=pt",
    "https://www.example.com/événements;printemps",  # a separator inside the URL: the file must quote it
)


@dataclasses.dataclass(frozen=True)
class Delivery:
    delivery_id: str
    delivery_label: str
    campaign_id: str
    campaign_label: str
    sent_at: float


@dataclasses.dataclass
class DeliveryLog:
    id: int
    delivery: Delivery
    profile_pkey: str
    mirror_page_url: str
    written_at: float  # lastModified of the first version
    failure_type: str = ""  # set from the start: a synchronous failure
    failure_reason: str = ""
    bounce_at: float | None = None  # an asynchronous bounce, on the sandbox clock
    bounce_type: str = ""
    bounce_reason: str = ""

    def version(self, now: float) -> dict[str, Any]:
        """The log as Campaign holds it at `now`: status, failure, event date and lastModified."""
        if self.bounce_at is not None and self.bounce_at <= now:
            return {
                "status": "failed",
                "failureType": self.bounce_type,
                "failureReason": self.bounce_reason,
                "eventDate": self.bounce_at,
                "lastModified": self.bounce_at,
            }
        failed = bool(self.failure_type)
        return {
            "status": "failed" if failed else "sent",
            "failureType": self.failure_type,
            "failureReason": self.failure_reason,
            "eventDate": self.delivery.sent_at,
            "lastModified": self.written_at,
        }


@dataclasses.dataclass(frozen=True)
class TrackingLog:
    id: int
    delivery_log: DeliveryLog
    kind: str  # open | click
    url: str
    date: float
    written_at: float


@dataclasses.dataclass(frozen=True)
class Target:
    pkey: str
    external_id: str
    email: str


@dataclasses.dataclass
class Counters:
    delivery: int = 0
    delivery_log: int = 0
    tracking_log: int = 0


def rates_with(overrides: dict[str, float] | None) -> dict[str, float]:
    rates = dict(DEFAULT_RATES)
    for name, value in dict(overrides or {}).items():
        if name not in DEFAULT_RATES:
            raise ValueError(f"unknown rate {name!r} (known: {', '.join(DEFAULT_RATES)})")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"rate {name!r} must be between 0 and 1")
        rates[name] = float(value)
    if rates["hardBounce"] + rates["softBounce"] + rates["ignoredBounce"] > 1.0:
        raise ValueError("the three bounce rates add up to more than 1")
    return rates


def play(
    delivery: Delivery,
    targets: Sequence[Target],
    *,
    rng: random.Random,
    rates: dict[str, float],
    urls: Sequence[str],
    mirror_page_base: str | None,
    now: float,
    async_bounce_at: float,
    counters: Counters,
) -> tuple[list[DeliveryLog], list[TrackingLog]]:
    """The logs of one delivery. Decisions are drawn in a fixed order per target, so a seed replays exactly."""
    logs: list[DeliveryLog] = []
    tracks: list[TrackingLog] = []
    sent_at = delivery.sent_at
    for target in targets:
        counters.delivery_log += 1
        token = f"{rng.getrandbits(64):016x}"
        mirror = f"{mirror_page_base}/{delivery.delivery_id}/{token}" if mirror_page_base else ""
        log = DeliveryLog(counters.delivery_log, delivery, target.pkey, mirror, written_at=now)
        logs.append(log)
        draw = rng.random()
        if not target.email:
            log.failure_type, log.failure_reason = "hard", "Address empty"
            continue
        if draw < rates["hardBounce"]:
            log.failure_type, log.failure_reason = "hard", rng.choice(HARD_REASONS)
            continue
        draw -= rates["hardBounce"]
        if draw < rates["softBounce"]:
            log.failure_type, log.failure_reason = "soft", rng.choice(SOFT_REASONS)
            continue
        draw -= rates["softBounce"]
        if draw < rates["ignoredBounce"]:
            log.failure_type, log.failure_reason = "ignored", rng.choice(IGNORED_REASONS)
            continue
        if rng.random() < rates["asyncBounce"]:
            log.bounce_at = async_bounce_at
            log.bounce_type, log.bounce_reason = rng.choice(ASYNC_BOUNCES)
            continue  # a message that bounces is never opened
        if rng.random() >= rates["open"]:
            continue
        opened = _between(rng, sent_at, now)
        counters.tracking_log += 1
        tracks.append(TrackingLog(counters.tracking_log, log, "open", "", opened, now))
        if urls and rng.random() < rates["click"]:
            clicks = 1 + (rng.random() < 0.3)
            for _ in range(clicks):
                counters.tracking_log += 1
                url = rng.choice(list(urls))
                tracks.append(TrackingLog(counters.tracking_log, log, "click", url, _between(rng, opened, now), now))
    return logs, tracks


def _between(rng: random.Random, start: float, end: float) -> float:
    """A whole second in [start, end]: the export files carry seconds."""
    low, high = int(start), int(end)
    return float(rng.randint(low, high)) if high > low else float(low)

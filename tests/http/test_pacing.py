"""The per-host gate and the learned rate, on injected clock values (no server, no sleeping)."""

from __future__ import annotations

import pytest

from shared.http.pacing import Gate, PacingPolicy, RateLearner


def test_a_gate_holds_until_its_time_then_opens() -> None:
    gate = Gate()
    assert gate.hold(100.0)[0] == 0.0
    gate.close(110.0)
    assert gate.hold(104.0)[0] == 6.0
    assert gate.hold(110.0)[0] == 0.0  # the clock passed it


def test_a_later_closing_wins_and_an_earlier_one_is_ignored() -> None:
    gate = Gate()
    first = gate.close(110.0)
    assert gate.close(105.0) == first  # a shorter Retry-After does not shorten the wait
    second = gate.close(115.0)
    assert second.until == 115.0 and second.generation > first.generation
    assert gate.hold(100.0)[0] == 15.0


def test_waiting_a_gate_out_opens_it_for_everyone_even_if_the_clock_did_not_move() -> None:
    gate = Gate()
    ticket = gate.close(110.0)
    assert gate.waited(ticket)[0] == 0.0
    assert gate.hold(100.0)[0] == 0.0  # virtual sleep: the clock still says 100


def test_a_gate_extended_while_waiting_asks_for_the_extension_only() -> None:
    gate = Gate()
    ticket = gate.close(110.0)
    gate.close(118.0)
    extension, newer = gate.waited(ticket)
    assert extension == 8.0 and newer.until == 118.0
    assert gate.waited(newer)[0] == 0.0
    assert gate.hold(100.0)[0] == 0.0


def test_a_stale_ticket_after_someone_else_opened_the_gate() -> None:
    gate = Gate()
    old = gate.close(110.0)
    newest = gate.close(120.0)
    assert gate.waited(newest)[0] == 0.0  # another thread waited the newest closing out
    assert gate.waited(old)[0] == 0.0


def policy(**kwargs: float) -> PacingPolicy:
    return PacingPolicy(learn_rate=True, **kwargs)  # type: ignore[arg-type]


def burst(learner: RateLearner, count: int, start: float, spacing: float) -> float:
    """`count` accepted requests sent `spacing` apart from `start`; the time of the last one."""
    for i in range(count):
        learner.accepted(start + i * spacing)
    return start + (count - 1) * spacing


def test_no_rate_until_throttled() -> None:
    learner = RateLearner(policy())
    burst(learner, 500, 0.0, 0.001)
    assert learner.rate is None and learner.acquire(1.0) == 0.0


def test_the_first_episode_learns_accepted_requests_over_their_span_plus_the_wait() -> None:
    learner = RateLearner(policy())
    burst(learner, 1000, 0.0, 0.0025)  # 1000 requests in 2.5 s, then the server says: wait 8 s
    learner.throttled(now=2.5, sent_at=2.5, retry_after=8.0)
    assert learner.rate == pytest.approx(1000 / (2.5 + 8.0))  # from the first accepted request to the 429
    assert learner.acquire(2.5) == pytest.approx(8.0)  # the first slot is after the wait
    assert learner.acquire(2.5) == pytest.approx(8.0 + 1 / learner.rate)  # then one slot per 1/rate
    assert learner.acquire(20.0) == 0.0  # idle meanwhile: no debt


def test_too_little_evidence_teaches_no_rate() -> None:
    learner = RateLearner(policy(evidence=20))
    burst(learner, 19, 0.0, 0.01)
    learner.throttled(now=1.0, sent_at=1.0, retry_after=1.0)
    assert learner.rate is None


def test_only_the_horizon_counts() -> None:
    learner = RateLearner(policy(horizon=10.0))
    burst(learner, 100, 0.0, 0.01)  # long ago
    burst(learner, 100, 100.0, 0.05)  # 100 in the last 5 s
    learner.throttled(now=105.0, sent_at=105.0, retry_after=5.0)
    assert learner.rate == pytest.approx(100 / (5.0 + 5.0))


def test_requests_in_flight_when_an_episode_began_teach_nothing() -> None:
    learner = RateLearner(policy())
    burst(learner, 100, 0.0, 0.01)
    learner.throttled(now=1.0, sent_at=0.99, retry_after=1.0)
    rate = learner.rate
    learner.throttled(now=1.01, sent_at=0.995, retry_after=1.0)  # sent before the episode began
    assert learner.rate == rate


def test_a_later_episode_lowers_the_rate() -> None:
    learner = RateLearner(policy(decrease=0.9))
    burst(learner, 100, 0.0, 0.01)
    learner.throttled(now=1.0, sent_at=1.0, retry_after=1.0)
    first = learner.rate
    assert first is not None
    learner.throttled(now=5.0, sent_at=4.0, retry_after=1.0)  # sent after the first episode began
    assert first == pytest.approx(100 / 2.0)
    assert learner.rate == pytest.approx(100 / (5.0 + 1.0))  # what the host accepted, below 0.9 of the first
    learner.throttled(now=5.5, sent_at=5.2, retry_after=1.0)
    assert learner.rate == pytest.approx(0.9 * 100 / 6.0)  # below what it accepted: 0.9 of the rate in force


def test_a_probe_period_held_back_without_429_raises_the_rate() -> None:
    learner = RateLearner(policy(probe_period=10.0, increase=1.05))
    burst(learner, 100, 0.0, 0.01)
    learner.throttled(now=1.0, sent_at=1.0, retry_after=1.0)
    rate = learner.rate
    assert rate is not None
    now = 2.0
    while now < 12.0:  # a queue of requests: every slot is taken as soon as it comes
        now += learner.acquire(now)
    learner.acquire(12.5)
    assert learner.rate == pytest.approx(rate * 1.05)


def test_a_probe_period_the_rate_did_not_hold_back_keeps_the_rate() -> None:
    learner = RateLearner(policy(probe_period=10.0))
    burst(learner, 100, 0.0, 0.01)
    learner.throttled(now=1.0, sent_at=1.0, retry_after=1.0)
    rate = learner.rate
    learner.acquire(20.0)  # idle: nobody was held back
    learner.acquire(40.0)
    assert learner.rate == rate


def test_policy_checks() -> None:
    with pytest.raises(ValueError):
        PacingPolicy(decrease=1.2)
    with pytest.raises(ValueError):
        PacingPolicy(increase=0.9)

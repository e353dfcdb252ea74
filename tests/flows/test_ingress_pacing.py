"""Which of a page's Table calls get the full parallelism: where the writers or the page's commit wait for them."""

from __future__ import annotations

from shared.flows.ingress import Pace, pacing


def test_the_first_two_reads_and_the_learning_of_the_last_records_go_at_full_speed() -> None:
    # nothing is written before the first read: its parts go at once
    # a page: 64, 256, three of 500, 200, 64 records; the last 500 records end in the last three chunks
    paces = pacing([64, 256, 500, 500, 500, 200, 64], full=8, behind=2, tail=500)
    assert paces == [Pace(8, 2, at_once=True), Pace(8, 2), Pace(2, 2), Pace(2, 2), Pace(2, 8), Pace(2, 8), Pace(2, 8)]


def test_a_page_of_one_or_two_chunks_goes_at_full_speed() -> None:
    assert pacing([30], full=8, behind=2, tail=500) == [Pace(8, 8, at_once=True)]
    assert pacing([500, 40], full=8, behind=2, tail=500) == [Pace(8, 8, at_once=True), Pace(8, 8)]
    assert pacing([], full=8, behind=2, tail=500) == []

"""The change feed's page prefetch: one page ahead of the consumer, never more, and errors where they belong."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from shared.flows.change_feed import prefetched


class Source:
    """Pages 0..n-1; records which were fetched; page `fail_at` raises."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n = n
        self.fail_at = fail_at
        self.fetched: list[int] = []
        self.closed = threading.Event()

    def pages(self) -> Generator[int, None, None]:
        try:
            for number in range(self.n):
                if number == self.fail_at:
                    raise RuntimeError(f"page {number} failed")
                self.fetched.append(number)
                yield number
        finally:
            self.closed.set()


def test_every_page_arrives_in_order() -> None:
    source = Source(5)
    assert list(prefetched(source.pages())) == [0, 1, 2, 3, 4]  # type: ignore[arg-type]


def test_a_consumer_that_stops_leaves_at_most_one_page_fetched_ahead() -> None:
    source = Source(10)
    feed = prefetched(source.pages())  # type: ignore[arg-type]
    assert next(feed) == 0
    assert next(feed) == 1
    # While the consumer works on page 1, page 2 may be fetched; page 3 only once page 2 is taken.
    threading.Event().wait(0.3)  # time for a prefetcher that runs further ahead to show it
    feed.close()
    assert source.fetched in ([0, 1], [0, 1, 2])
    assert source.closed.wait(5)


def test_a_fetch_error_is_raised_where_its_page_would_be() -> None:
    source = Source(5, fail_at=2)
    feed = prefetched(source.pages())  # type: ignore[arg-type]
    assert [next(feed), next(feed)] == [0, 1]
    with pytest.raises(RuntimeError, match="page 2 failed"):
        next(feed)

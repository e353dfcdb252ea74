"""Overlapping the connector's own state I/O with the target's latency, so neither waits for the other.

A page of changes is worked through in chunks: the index entries of the next chunk are read while the
current chunk is written to the target, and what the index learns from a chunk is written while the
next chunk is. A page is committed only after every background write has finished (`Background.wait`),
so nothing is checkpointed ahead of what it describes.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Background:
    """State writes in order on one worker thread; `wait` (or leaving the block) re-raises the first failure."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-writes")
        self._futures: list[concurrent.futures.Future[Any]] = []

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        self._futures.append(self._pool.submit(function, *args))

    def wait(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def __enter__(self) -> Background:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.wait()  # what finished is kept, also when the block failed
        except Exception:
            if exc is None:
                raise
        finally:
            self._pool.shutdown(wait=True)


def prefetched(items: Sequence[T], fetch: Callable[[T], R]) -> Generator[tuple[T, R], None, None]:
    """Each item with fetch(item); the next item's fetch runs while the caller works on the current one."""
    if not items:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        upcoming = pool.submit(fetch, items[0])
        for position, item in enumerate(items):
            result = upcoming.result()
            if position + 1 < len(items):
                upcoming = pool.submit(fetch, items[position + 1])
            yield item, result


RAMP = 4  # the second chunk is at most this many times the first


def chunks(items: Sequence[T], size: int, *, edge: int | None = None) -> list[Sequence[T]]:
    """`items` cut into chunks of `size`. With `edge`, the first and the last chunk are that small: work on the
    first starts as soon as its few entries are read, and what is learned from the last, the only state write
    left when the work ends, is small. Each chunk is read ahead while the one before it is worked on, so none
    is much larger than the one before: the second is at most RAMP times the first, the ones between the
    second and the last are of about equal size (no small remainder before the last)."""
    if not edge or edge >= size or len(items) <= 2 * edge:
        return [items[start : start + size] for start in range(0, len(items), size)]
    middle = items[edge : len(items) - edge]
    second = min(size, RAMP * edge)
    return [items[:edge], middle[:second], *_even(middle[second:], size), items[len(items) - edge :]]


def _even(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in the fewest chunks of at most `size`, their sizes differing by one at most."""
    count = -(-len(items) // size)
    return [items[n * len(items) // count : (n + 1) * len(items) // count] for n in range(count)]

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


RAMP = 4  # next to each other, two chunks differ in size by at most about this factor


def chunks(items: Sequence[T], size: int, *, edge: int | None = None) -> list[Sequence[T]]:
    """`items` cut into chunks of `size`. With `edge`, the chunks ramp up from that size at the start and down
    to it at the end. Each chunk is read ahead while the one before it is worked on, so it is at most RAMP
    times that one: the second chunk is at most RAMP x `edge`, the ones after it of about equal size. What is
    learned from a chunk is written while the next one is worked on, so the last chunks shrink the same way:
    what is left to learn when the work ends is the last, small chunk, not a large one that finished late."""
    if not edge or edge >= size or len(items) <= 2 * edge:
        return [items[start : start + size] for start in range(0, len(items), size)]
    inner = items[edge : len(items) - edge]
    ramp = min(size, RAMP * edge)
    if len(inner) < 3 * ramp:  # too few for both ramps and a middle: at most `ramp` each
        middle = _even(inner, ramp)
    else:
        middle = [inner[:ramp], *_even(inner[ramp : len(inner) - ramp], size), inner[len(inner) - ramp :]]
    return [items[:edge], *middle, items[len(items) - edge :]]


def _even(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in the fewest chunks of at most `size`, their sizes differing by one at most."""
    count = -(-len(items) // size)
    return [items[n * len(items) // count : (n + 1) * len(items) // count] for n in range(count)]

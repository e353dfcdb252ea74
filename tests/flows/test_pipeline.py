"""Background state writes and prefetching: order kept, failures surfaced, nothing left running."""

from __future__ import annotations

import threading

import pytest

from shared.flows.pipeline import Background, chunks, prefetched


def test_prefetch_fetches_the_next_item_while_the_current_one_is_worked_on() -> None:
    started: list[int] = []
    release = {n: threading.Event() for n in range(3)}

    def fetch(n: int) -> int:
        started.append(n)
        return n * 10

    seen = []
    for item, result in prefetched([0, 1, 2], fetch):
        if item == 0:
            for _ in range(200):  # the fetch of item 1 runs while item 0 is being handled
                if 1 in started:
                    break
                release[0].wait(0.01)
            assert 1 in started
        seen.append((item, result))
    assert seen == [(0, 0), (1, 10), (2, 20)]


def test_background_writes_run_in_order_and_a_failure_surfaces_on_leaving() -> None:
    done: list[int] = []
    with Background() as background:
        for n in range(5):
            background.submit(done.append, n)
    assert done == [0, 1, 2, 3, 4]

    def broken() -> None:
        raise ConnectionError("storage down")

    with pytest.raises(ConnectionError), Background() as background:
        background.submit(broken)


def test_a_failing_block_still_waits_for_what_was_submitted_and_keeps_its_own_error() -> None:
    done: list[str] = []
    with pytest.raises(KeyError), Background() as background:
        background.submit(done.append, "learned")
        raise KeyError("the page failed")
    assert done == ["learned"]


def test_chunks() -> None:
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]] and chunks([], 3) == []
    # too few for both ramps: what lies between the edges goes evenly, in chunks of at most 4 x edge
    assert chunks(list(range(9)), 3, edge=1) == [[0], [1, 2], [3, 4], [5, 6, 7], [8]]
    assert chunks(list(range(12)), 10, edge=2) == [[0, 1], list(range(2, 10)), [10, 11]]
    # up to four times the first, the middle shared evenly, then down again to the last
    assert chunks(list(range(40)), 10, edge=2) == [[0, 1], list(range(2, 10)), list(range(10, 20)),
                                                   list(range(20, 30)), list(range(30, 38)), [38, 39]]  # fmt: skip
    sizes = [len(c) for c in chunks(list(range(5000)), 500, edge=64)]  # a page: 4,360 between the 256s
    assert sizes == [64, 256, 484, 484, 485, 484, 485, 484, 485, 484, 485, 256, 64]
    assert [len(c) for c in chunks(list(range(600)), 500, edge=64)] == [64, 236, 236, 64]
    assert chunks(list(range(4)), 3, edge=2) == [[0, 1, 2], [3]]  # too few for small edges: plain chunks
    assert chunks([1, 2], 3, edge=5) == [[1, 2]] and chunks([], 3, edge=1) == []

"""Which way a table's first load travels: by file over the threshold, by API at or under it, or as forced."""

from __future__ import annotations

import pytest

from shared.config.model import InitialLoad
from shared.core.initial_path import choose_initial_path, needs_count


@pytest.mark.parametrize(
    ("count", "path"),
    [(500_001, "file"), (500_000, "api"), (0, "api"), (10_000_000, "file")],
)
def test_auto_compares_the_count_with_the_threshold(count: int, path: str) -> None:
    choice = choose_initial_path(InitialLoad.AUTO, count, 500_000)
    assert choice.path == path and choice.by_file is (path == "file")
    assert f"{count:,} rows counted" in choice.note and "500,000" in choice.note
    assert "snapshot" in choice.note and "lag" in choice.note  # the count may be up to a day old


@pytest.mark.parametrize(("mode", "path"), [(InitialLoad.FILE, "file"), (InitialLoad.API, "api")])
def test_a_forced_path_needs_no_count(mode: InitialLoad, path: str) -> None:
    assert not needs_count(mode)
    for count in (None, 0, 10**9):
        choice = choose_initial_path(mode, count, 500_000)
        assert choice.path == path and "forced" in choice.note


def test_auto_without_a_count_is_a_programming_error() -> None:
    assert needs_count(InitialLoad.AUTO)
    with pytest.raises(ValueError):
        choose_initial_path(InitialLoad.AUTO, None, 500_000)

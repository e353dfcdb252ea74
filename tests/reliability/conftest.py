"""The fault matrix's session: one collector for every cell's figures, written as Markdown to $RELIABILITY_REPORT
when the session ends (nothing is written when it is unset). The e2e harnesses' fixtures are reused as they are."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from sandbox.azurite import Azurite
from tests.e2e.optout_harness import optout_sftp_stack_factory, optout_stack_factory
from tests.e2e.test_initial_transfer import transfer_stack
from tests.reliability.faults import ALL_FAULTS, FULL, KNOWN_GAPS, NOT_APPLICABLE
from tests.reliability.figures import Collector
from tests.reliability.matrix import SEEDS, SIZE, SOAK

__all__ = ["optout_sftp_stack_factory", "optout_stack_factory", "transfer_stack"]


@pytest.fixture(scope="session")
def figures() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    target = os.environ.get("RELIABILITY_REPORT")
    if target and collector.results:
        name = "soak" if SOAK else "full" if FULL else "CI"
        variant = f"{name} run, seeds {list(SEEDS)}, {SIZE} source records per seed"
        pathlib.Path(target).write_text(collector.markdown(ALL_FAULTS, NOT_APPLICABLE, KNOWN_GAPS, variant))


@pytest.fixture
def own_azurite(tmp_path: pathlib.Path) -> Iterator[Azurite]:
    """A separate Azurite keeping its data on disk, so it can be stopped and started again (not the session's)."""
    server = Azurite.start(location=tmp_path / "azurite")
    try:
        yield server
    finally:
        server.stop()

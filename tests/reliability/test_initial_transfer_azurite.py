"""The initial transfer while its state store (checkpoints, leases and the staged Blob parts) goes away: a separate
Azurite keeping its data on disk stops mid-run and starts again on the same ports and data."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox.azurite import Azurite
from tests.e2e.test_initial_transfer import TransferStack, contacts_by_file
from tests.reliability.faults import Target
from tests.reliability.figures import Collector
from tests.reliability.matrix import SEEDS
from tests.reliability.test_ingress_faults import outage_of
from tests.reliability.transfer import SETTINGS, check, transfer_then_increments


@pytest.fixture
def storage_connection_string(own_azurite: Azurite) -> str:
    """This module's stacks use the restartable Azurite, not the session's."""
    return own_azurite.connection_string


@pytest.mark.parametrize("seed", SEEDS)
def test_azurite_stopped_and_restarted(transfer_stack: Callable[..., TransferStack], figures: Collector,
                                       own_azurite: Azurite, seed: int) -> None:  # fmt: skip
    ts = transfer_stack(contacts_by_file(), **SETTINGS)
    ticks, fired = transfer_then_increments(ts, seed, lambda: [outage_of(own_azurite, ts.stack,
                                                                         Target("campaign", "/workflow"))])  # fmt: skip
    own_azurite.start_again()
    check(ts, figures, "Azurite stopped and restarted", seed, ticks, fired)

"""Real crashes of the initial transfer: the operator CLI runs it in its own process and is killed with SIGKILL at
a random page of the export and at a random part of the upload; run again to completion, the files hold every
row once, nothing is left under a temporary name, the workflow was signalled once, and Campaign holds exactly
one record per row. Also: an SFTP connection dropped in the middle of a part.

More seeds: TRANSFER_CRASH_SEEDS=10 scripts/test.sh tests/e2e/test_initial_transfer_crash.py
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import random
from collections.abc import Callable
from typing import Any

import pytest

from shared.flows import initial_transfer
from shared.flows.initial_transfer import transfer_deps
from shared.state.staging import BlobStaging
from tests.e2e.cli_process import Cli
from tests.e2e.test_initial_transfer import (
    PROFILE_WORKFLOW,
    TransferStack,
    contacts_by_file,
    parsed_files,
    transfer_stack,
)

__all__ = ["transfer_stack"]  # the fixture, shared with test_initial_transfer.py

SEEDS = int(os.environ.get("TRANSFER_CRASH_SEEDS", "3"))
ROWS = 3000


def export_pages(ts: TransferStack) -> Callable[[], int]:
    return lambda: sum(1 for r in ts.dv.requests() if r["method"] == "GET" and r["path"].endswith("/contacts"))


def files_on_sftp(ts: TransferStack) -> Callable[[], int]:
    return lambda: sum(1 for p in ts.uploads.glob("*")) if ts.uploads.exists() else 0


def assert_transferred_once(ts: TransferStack) -> None:
    cursor = ts.cursor()
    assert cursor.state == "handed-over"
    files = ts.files()
    assert [f.name for f in files] == cursor.file_names()  # every part under its final name, no temporary left
    keys = [record["externalId"] for record in parsed_files(files)]
    assert len(keys) == len(set(keys)) == ROWS  # no duplicate, none missing
    assert len(ts.accepted_triggers()) == 1
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkilled_transfer_resumes(transfer_stack: Callable[..., TransferStack], tmp_path: pathlib.Path,
                                    seed: int) -> None:  # fmt: skip
    rng = random.Random(seed)
    ts = transfer_stack(contacts_by_file(), DATAVERSE_PAGE_SIZE="100", INITIAL_TRANSFER_PART_ROWS="250",
                        INITIAL_TRANSFER_GZIP=rng.choice(("true", "false")))  # fmt: skip
    ts.dv.seed_contacts(ROWS, seed=seed + 1)
    [handed] = ts.ingress()
    assert handed.counts == {"handed_to_file": 1}
    cli = Cli(ts.stack, tmp_path)

    assert cli.run_killed(rng.randint(1, ROWS // 100 - 2), "run", "initial_transfer", progress=export_pages(ts))
    assert ts.cursor().state == "exporting"
    # The upload: killed after a random number of files showed up (final or temporary names).
    cli.run_killed(rng.randint(1, 10), "run", "initial_transfer", progress=files_on_sftp(ts))
    cli.run_to_completion("run", "initial_transfer")
    assert_transferred_once(ts)


def test_sftp_connection_dropped_mid_part(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file(), INITIAL_TRANSFER_GZIP="false", INITIAL_TRANSFER_PART_ROWS="1000")
    ts.dv.seed_contacts(ROWS)
    ts.ingress()
    deps = transfer_deps(ts.stack.svc)
    dropped: list[str] = []

    class DroppingStaging(BlobStaging):
        """Reading the second part for the upload, the server drops every session after the first 64 KiB."""

        def open_reader(self, batch: str, name: str, *, window: int | None = None) -> Any:
            reader = super().open_reader(batch, name, window=window)
            if not name.endswith("_part0002.csv") or dropped:
                return reader
            read = reader.read

            def read_then_drop(size: int = -1) -> bytes:
                data = read(size)
                if reader.tell() >= 64 * 1024 and not dropped:
                    dropped.append(name)
                    assert ts.sshd.drop_connections() > 0
                return data

            reader.read = read_then_drop  # type: ignore[method-assign]
            return reader

    original = initial_transfer.transfer_deps
    deps.staging = lambda: DroppingStaging(ts.stack.svc.state.container())
    initial_transfer.transfer_deps = lambda services: deps  # type: ignore[assignment]
    try:
        [run] = ts.transfer()
    finally:
        initial_transfer.transfer_deps = original  # type: ignore[assignment]
    assert run.outcome == "completed", run.reason
    assert dropped == [f"{ts.cursor().batch}_part0002.csv"]
    staging = BlobStaging(ts.stack.svc.state.container())
    assert run.counts["parts_uploaded"] == 3  # the dropped part was resumed or redone inside the run, once counted
    for part in ts.cursor().parts:  # batch deleted after the hand-over: compare with what the cursor recorded
        path = ts.uploads / part.name
        assert path.stat().st_size == part.size
        assert hashlib.sha256(path.read_bytes()).hexdigest() == part.sha256
    assert staging.read_manifest(ts.cursor().batch) is None
    assert [t["accepted"] for t in ts.acs.triggers(PROFILE_WORKFLOW)] == [True]
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))

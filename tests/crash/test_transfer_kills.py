"""The initial transfer killed with SIGKILL at every kill point of tests/crash/points.py (export pages, parts
staged in Blob, files and bytes on the SFTP, each state of its cursor, the trigger), then run to completion:
the files hold every row once under their final names, the workflow was signalled once, Campaign holds exactly
one record per row and ingress has the table back (tests/e2e/test_initial_transfer_crash.py's check).

    CRASH_POINTS=all .venv/bin/pytest -q tests/crash/test_transfer_kills.py
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from tests.crash.kill import Signal, dataverse_requests, kill_at, record
from tests.crash.points import KillPoint, selected
from tests.e2e.cli_process import Cli
from tests.e2e.test_initial_transfer import PROFILE_WORKFLOW, TransferStack, contacts_by_file, parsed_files
from tests.e2e.test_initial_transfer_crash import ROWS, assert_transferred_once

# The cursor's states in the order a run goes through them (shared/flows/initial_transfer_cursor.py).
ORDER = {"idle": 0, "requested": 0, "exporting": 0, "staged": 1, "uploaded": 2, "signalling": 3, "signalled": 4,
         "imported": 5, "handed-over": 6}  # fmt: skip


def signals(ts: TransferStack) -> dict[str, Signal]:
    container = ts.stack.svc.state.container()

    def sftp_bytes() -> int:
        return sum(p.stat().st_size for p in ts.uploads.glob("*")) // 1024 if ts.uploads.exists() else 0

    return {
        "dataverse-pages": dataverse_requests(ts.dv, "GET", "/contacts"),
        "staged-blobs": lambda: sum(1 for _ in container.list_blobs()),
        "transfer-state": lambda: ORDER[ts.cursor().state],
        "sftp-files": lambda: sum(1 for _ in ts.uploads.glob("*")) if ts.uploads.exists() else 0,
        "sftp-kib": sftp_bytes,
        "campaign-triggers": lambda: len(ts.accepted_triggers()),
    }


@pytest.mark.parametrize("point", selected("initial_transfer"), ids=lambda p: p.id)
def test_killed_transfer_converges(transfer_stack: Callable[..., TransferStack], tmp_path: pathlib.Path,
                                   point: KillPoint) -> None:  # fmt: skip
    ts = transfer_stack(contacts_by_file(), DATAVERSE_PAGE_SIZE="300", INITIAL_TRANSFER_PART_ROWS="750",
                        INITIAL_TRANSFER_GZIP="false")  # fmt: skip
    ts.dv.seed_contacts(ROWS, seed=6)
    [handed] = ts.ingress()
    assert handed.counts == {"handed_to_file": 1}
    ts.dv.clear_requests()
    cli = Cli(ts.stack, tmp_path)

    kill_at(cli, point, signals(ts)[point.signal], "run", "initial_transfer")
    cli.run_to_completion("run", "initial_transfer")
    ts.ingress()  # ingress takes the table back (and writes nothing: nothing changed)

    keys = [r["externalId"] for r in parsed_files(ts.files())]
    in_campaign = [r["externalId"] for r in ts.acs.rows("profile")]
    record(point, records=ROWS, lost=ROWS - len(set(in_campaign)), duplicated=len(keys) - len(set(keys))
           + len(in_campaign) - len(set(in_campaign)), triggers=len(ts.acs.triggers(PROFILE_WORKFLOW)))  # fmt: skip
    assert_transferred_once(ts)
    assert ts.ingress_cursor().phase == "incremental"

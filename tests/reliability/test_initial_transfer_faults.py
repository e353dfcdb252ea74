"""The initial transfer under every fault that reaches it: Dataverse's export pages and Campaign's import workflow
calls fail, tokens go, the SFTP drops its sessions or has no space left, a second invocation overlaps, the delta
token handed over expires. The transfer is ticked until the table is back with ingress, the increments follow, and
Campaign holds exactly the oracle's profiles, none twice."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Callable, Iterator

import pytest

from shared.flows.runner import Progress, RunSummary
from tests.e2e.test_initial_transfer import TransferStack, contacts_by_file
from tests.reliability.faults import Target, arm, request_faults
from tests.reliability.figures import Collector
from tests.reliability.matrix import SEEDS
from tests.reliability.transfer import SETTINGS, check, transfer_then_increments

TARGETS = [Target("dataverse", "/contacts", "GET"), Target("campaign", "/workflow")]
MakeTransfer = Callable[..., TransferStack]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", request_faults("initial_transfer"))
def test_http_fault(transfer_stack: MakeTransfer, figures: Collector, fault: str, seed: int) -> None:
    ts = transfer_stack(contacts_by_file(), **SETTINGS)
    ticks, fired = transfer_then_increments(ts, seed, lambda: arm(ts.stack, fault, TARGETS))
    check(ts, figures, fault, seed, ticks, fired)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.xfail(strict=True, reason="known gap (issue 13): records loaded by file are not in the record index, "
                   "so the resync sweep after an expired delta token misses their deletes in Dynamics")  # fmt: skip
def test_expired_delta_token_after_the_hand_over(transfer_stack: MakeTransfer, figures: Collector, seed: int) -> None:
    ts = transfer_stack(contacts_by_file(), **SETTINGS)

    def expire() -> list[Callable[[], bool]]:
        ts.dv.expire_delta_tokens()  # the delta link the export handed over is past retention
        return [lambda: any(r.get("error_code") == "0x80044352" for r in ts.dv.requests())]

    ticks, fired = transfer_then_increments(ts, seed, lambda: [], before_increments=expire)
    # Its figures stay out of the matrix's totals while it is a known gap (the table says xfail).
    check(ts, Collector(), "expired delta token", seed, ticks, fired)


@pytest.mark.parametrize("seed", SEEDS)
def test_sftp_disconnect_mid_upload(transfer_stack: MakeTransfer, figures: Collector, seed: int) -> None:
    ts = transfer_stack(contacts_by_file(), **SETTINGS)
    dropped: list[int] = []

    def drop_at_upload(progress: Progress) -> None:
        # Parts go up while the next ones are exported: once a part is staged, its upload is under way.
        uploading = progress.stage == "upload" or (progress.stage == "export" and dict(progress.detail).get("parts"))
        if uploading and not dropped:
            dropped.append(ts.sshd.drop_connections())  # every session of Campaign's SFTP server is killed

    ticks, fired = transfer_then_increments(
        ts,
        seed,
        lambda: [lambda: bool(dropped) and dropped[0] > 0],
        transfer=lambda: ts.transfer("contacts", progress=drop_at_upload),
    )
    check(ts, figures, "SFTP disconnect mid-transfer", seed, ticks, fired)


@pytest.fixture
def full_disk(sftp_folder: pathlib.Path) -> Iterator[pathlib.Path]:
    """The upload folder on a one-page tmpfs, filled up: the SFTP server answers every write with 'no space'."""
    folder = sftp_folder / "d365_loads" / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("a full remote disk needs a tmpfs mount (root): " + mounted.stderr.decode(errors="replace")[:200])
    try:
        filler = folder / "filler.bin"
        with filler.open("wb") as f:
            try:
                f.write(b"\0" * 65536)
            except OSError:
                pass
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("seed", SEEDS)
def test_remote_disk_full(transfer_stack: MakeTransfer, figures: Collector, full_disk: pathlib.Path,
                          seed: int) -> None:  # fmt: skip
    ts = transfer_stack(contacts_by_file(), **SETTINGS)
    refused: list[RunSummary] = []

    def transfer() -> list[RunSummary]:
        summaries = ts.transfer("contacts")
        if not refused and any(s.outcome == "failed" for s in summaries):
            refused.extend(summaries)
            # The operator makes room on the server; the next tick goes on.
            subprocess.run(["mount", "-o", "remount,size=1m", str(full_disk.parent)], check=True)
        return summaries

    ticks, fired = transfer_then_increments(ts, seed, lambda: [lambda: bool(refused)], transfer=transfer)
    check(ts, figures, "SFTP remote disk full", seed, ticks, fired)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_invocations_at_once(transfer_stack: MakeTransfer, figures: Collector, seed: int) -> None:
    ts = transfer_stack(contacts_by_file(), **SETTINGS)
    other = transfer_stack(contacts_by_file(), **SETTINGS)
    second: list[RunSummary] = []

    def overlap() -> list[Callable[[], bool]]:
        def hook(_seconds: float) -> None:
            if not second:
                second.extend(other.transfer("contacts"))

        ts.stack.on_wait.append(hook)
        ts.acs.fail(429, headers={"Retry-After": "1"}, times=1, path="/workflow")
        return [lambda: bool(second)]

    ticks, fired = transfer_then_increments(ts, seed, overlap)
    assert second and all(s.outcome == "skipped" and s.counts == {} for s in second), second
    check(ts, figures, "two invocations at once", seed, ticks, fired)

"""Background uploads of staged parts: in order, recorded only when done, stopped by the first failure."""

from __future__ import annotations

import io
import threading
from types import TracebackType
from typing import Any

from shared.flows.initial_transfer_cursor import PartRecord
from shared.flows.transfer_upload import BackgroundUploads


class FakeStaging:
    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def open_reader(self, batch: str, name: str) -> io.BytesIO:
        return io.BytesIO(self.blobs[f"{batch}/{name}"])


class FakeSftp:
    """Records uploads; `fail_on` names a part whose upload raises; `gate` holds uploads until set."""

    def __init__(self, fail_on: str | None = None, gate: threading.Event | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.sessions = 0
        self.fail_on = fail_on
        self.gate = gate

    def __call__(self) -> FakeSftp:
        self.sessions += 1
        return self

    def __enter__(self) -> FakeSftp:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        pass

    def makedirs(self, folder: str) -> None:
        pass

    def upload(self, source: Any, path: str) -> int:
        if self.gate is not None:
            assert self.gate.wait(10)
        if path.endswith(self.fail_on or "\0"):
            raise ConnectionError("sftp down")
        data = source.read()
        self.files[path] = data
        return len(data)


def parts(*names: str) -> tuple[dict[str, bytes], list[PartRecord]]:
    blobs = {f"b/{n}": n.encode() * 3 for n in names}
    return blobs, [PartRecord(n, 1, len(n) * 3, "") for n in names]


def test_parts_go_up_in_order_and_are_reported_once() -> None:
    blobs, records = parts("p1.csv", "p2.csv", "p3.csv")
    sftp = FakeSftp()
    uploads = BackgroundUploads(sftp, FakeStaging(blobs), "b", "in")  # type: ignore[arg-type]
    for record in records:
        uploads.submit(record)
    rest = uploads.close()
    assert rest == records and uploads.finished() == []
    assert sftp.files == {"in/p1.csv": b"p1.csvp1.csvp1.csv", "in/p2.csv": b"p2.csvp2.csvp2.csv",
                          "in/p3.csv": b"p3.csvp3.csvp3.csv"}  # fmt: skip
    assert sftp.sessions == 1 and uploads.failure is None


def test_the_first_failure_stops_the_uploads_and_reports_only_what_finished() -> None:
    blobs, records = parts("p1.csv", "p2.csv", "p3.csv")
    sftp = FakeSftp(fail_on="p2.csv")
    uploads = BackgroundUploads(sftp, FakeStaging(blobs), "b", "in")  # type: ignore[arg-type]
    for record in records:
        uploads.submit(record)
    assert uploads.close() == records[:1]
    assert isinstance(uploads.failure, ConnectionError)
    assert list(sftp.files) == ["in/p1.csv"]  # p3 was not tried after the failure


def test_a_size_mismatch_is_a_failure_not_an_upload() -> None:
    blobs, _ = parts("p1.csv")
    wrong = PartRecord("p1.csv", 1, 999, "")
    uploads = BackgroundUploads(FakeSftp(), FakeStaging(blobs), "b", "in")  # type: ignore[arg-type]
    uploads.submit(wrong)
    assert uploads.close() == []
    assert "999 staged" in str(uploads.failure)


def test_cancel_waits_for_the_part_in_flight_and_drops_the_queued() -> None:
    blobs, records = parts("p1.csv", "p2.csv")
    gate = threading.Event()
    sftp = FakeSftp(gate=gate)
    uploads = BackgroundUploads(sftp, FakeStaging(blobs), "b", "in")  # type: ignore[arg-type]
    uploads.submit(records[0])
    uploads.submit(records[1])
    threading.Timer(0.1, gate.set).start()  # p1 is in flight when the cancel comes
    uploads.close(cancel=True)
    assert "in/p2.csv" not in sftp.files

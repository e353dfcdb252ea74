"""Start and stop a real Azurite (Microsoft's Azure Storage emulator, pinned in package.json)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time
from types import TracebackType

REPO = pathlib.Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    def __init__(
        self, process: subprocess.Popen[bytes], blob_port: int, queue_port: int, table_port: int,
        location: pathlib.Path | None = None,
    ) -> None:  # fmt: skip
        self.process = process
        self.blob_port, self.queue_port, self.table_port = blob_port, queue_port, table_port
        self.location = location  # data on disk (restartable), or None: in memory

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/devstoreaccount1;"
            f"QueueEndpoint={base}:{self.queue_port}/devstoreaccount1;"
            f"TableEndpoint={base}:{self.table_port}/devstoreaccount1;"
        )

    @classmethod
    def start(
        cls, timeout: float = 30.0, *, location: pathlib.Path | None = None, ports: list[int] | None = None
    ) -> Azurite:
        """In memory by default; with `location`, the data lives in that folder and survives `restart()`."""
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"Azurite is not installed: run `npm ci` in {REPO} (scripts/bootstrap.sh does it)")
        ports = list(ports) if ports else [_free_port() for _ in range(3)]
        persistence = ["--location", str(location)] if location is not None else ["--inMemoryPersistence"]
        # --skipApiVersionCheck: azure-storage-blob sends an API version newer than Azurite 3.35 knows.
        # Keep-alive 120 s: Azurite's default of 5 s closes pooled connections the client is about to reuse
        # (a reset on a POST the SDK does not resend); Azure's front ends keep idle connections for minutes.
        command = [
            str(AZURITE_BIN),
            "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
            "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
            "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
            *persistence, "--loose", "--disableTelemetry", "--silent", "--skipApiVersionCheck",
            *(option for service in ("blob", "queue", "table") for option in (f"--{service}KeepAliveTimeout", "120")),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
        server = cls(process, *ports, location=location)
        deadline = time.monotonic() + timeout
        for port in ports:
            while not _accepts(port):
                if process.poll() is not None:
                    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise RuntimeError(f"Azurite exited with {process.returncode}: {err[-2000:]}")
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout}s")
                time.sleep(0.05)
        return server

    def restart(self, timeout: float = 30.0) -> None:
        """Stop, then start again on the same ports with the same data folder (an outage of the storage account)."""
        self.stop()
        self.start_again(timeout)

    def start_again(self, timeout: float = 30.0) -> None:
        """After stop(): the same ports and data folder again."""
        if self.location is None:
            raise RuntimeError("an in-memory Azurite loses its data on restart: start it with a location")
        if self.process.poll() is None:
            return
        self.process = Azurite.start(timeout, location=self.location,
                                     ports=[self.blob_port, self.queue_port, self.table_port]).process  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Azurite:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0

"""Sandboxes in their own processes: start one, read the JSON line it prints, talk to its control API, stop it.

Running them apart from the benchmark's process keeps the figures about the connector, not about one Python
process (and its GIL) serving both sides. Azurite is already a separate Node process (sandbox.azurite).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from bench import cores

REPO = Path(__file__).resolve().parent.parent


class Service:
    """One sandbox process and the settings it printed."""

    def __init__(self, name: str, command: list[str], *, timeout: float = 60.0) -> None:
        self.name = name
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
        try:
            self.info: dict[str, Any] = json.loads(_read_line(self.process, timeout, name))
        except BaseException:
            self.stop()
            raise
        cores.place(self.process.pid)
        self.session = requests.Session()
        self.session.trust_env = False
        if "ca_path" in self.info:
            self.session.verify = self.info["ca_path"]

    def control(self, method: str, route: str, body: Any = None) -> Any:
        """Call the sandbox's control API (`/_control/<route>`), return its JSON."""
        response = self.session.request(method, self.info["control_url"] + route, json=body, timeout=60)
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def dataverse(contacts: int, seed: int = 1) -> Service:
    """`python -m sandbox.dataverse` with `contacts` generated contacts."""
    command = [sys.executable, "-m", "sandbox.dataverse", "--contacts", str(contacts), "--seed", str(seed)]
    return Service("dataverse sandbox", command)


def campaign() -> Service:
    """`python -m sandbox.campaign` on a free port."""
    return Service("campaign sandbox", [sys.executable, "-m", "sandbox.campaign", "--port", "0"])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _read_line(process: subprocess.Popen[str], timeout: float, name: str) -> str:
    """The first stdout line of a starting sandbox, or a clear error with its stderr."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                if line:
                    return line
            if process.poll() is not None:
                break
    error = process.stderr.read()[-2000:] if process.stderr and process.poll() is not None else ""
    raise RuntimeError(f"{name} did not print its settings within {timeout:.0f} s (exit {process.poll()}): {error}")

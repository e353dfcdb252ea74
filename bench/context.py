"""What a benchmark gets: the run's mode, a work folder, and sandboxes shared between benchmarks of one run."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from bench import services

WORK = Path(__file__).resolve().parent / ".work"  # git-ignored: venvs, configs, logs


class Context:
    def __init__(self, *, quick: bool, work: Path = WORK) -> None:
        self.quick = quick
        self.work = work
        self._stack = contextlib.ExitStack()
        self._dataverse: dict[int, services.Service] = {}

    def log(self, message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def dataverse(self, contacts: int) -> services.Service:
        """A Dataverse sandbox process seeded with `contacts` contacts, started once per run."""
        if contacts not in self._dataverse:
            self.log(f"starting the Dataverse sandbox with {contacts:,} contacts")
            self._dataverse[contacts] = self._stack.enter_context(services.dataverse(contacts))
        return self._dataverse[contacts]

    def campaign(self) -> services.Service:
        """A fresh Campaign sandbox process (each benchmark sets its own budget and latency)."""
        self.log("starting the Campaign sandbox")
        return self._stack.enter_context(services.campaign())

    def close(self) -> None:
        self._stack.close()

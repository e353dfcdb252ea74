"""The operator CLI as a real process, for crash tests: start a flow run, SIGKILL it at a chosen moment,
run it again to completion. Any flow: `Cli(stack, folder).start("run", "egress")`."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from shared.settings import SPECS
from tests.e2e.conftest import Stack

REPO = pathlib.Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, stack: Stack, folder: pathlib.Path) -> None:
        self.stack = stack
        self.settings = folder / "local.settings.json"
        self.settings.write_text(json.dumps({"IsEncrypted": False, "Values": dict(stack.env)}))
        # Only the settings file speaks: an app setting in the environment would win over it.
        self.env = {k: v for k, v in os.environ.items() if k not in {s.name for s in SPECS}}

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        run = args or ("run", "ingress")
        command = [sys.executable, "-m", "shared.cli", "--settings", str(self.settings), *run, "--json"]
        return subprocess.Popen(command, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run_killed(self, after_writes: int, *args: str, progress: Callable[[], int] | None = None) -> bool:
        """Start a run and SIGKILL it once `progress` (default: Campaign writes) moved by `after_writes`;
        False if the run ended first."""
        progress = progress or self.writes
        before = progress()
        process = self.start(*args)
        try:
            while process.poll() is None:
                if progress() - before >= after_writes:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    self.clear_dead_leases()
                    return True
                time.sleep(0.002)
            return False
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()

    def run_to_completion(self, *args: str) -> None:
        for _ in range(4):
            process = self.start(*args)
            out, err = process.communicate(timeout=300)
            summaries = json.loads(out or b"[]")
            if process.returncode == 0 and all(s["outcome"] == "completed" for s in summaries):
                return
        raise AssertionError(f"no clean run: rc={process.returncode} {err.decode()[-2000:]}")

    def writes(self) -> int:
        return sum(1 for r in self.stack.acs.requests() if r["method"] in ("POST", "PATCH", "DELETE")
                   and "/ims/" not in r["path"])  # fmt: skip

    def clear_dead_leases(self) -> None:
        """A killed process never releases its lease; its expiry (budget + 5 min) is what the next tick waits for."""
        leases = self.stack.svc.state.table("leases")
        for entity in list(leases.list_entities()):
            leases.delete_entity(entity["PartitionKey"], entity["RowKey"])

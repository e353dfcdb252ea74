"""The venv of the real Azure Functions Python worker (v2 model): Python 3.13 with azure-functions-runtime and
the app's requirements.txt, created on first use and reused while its inputs are unchanged.

    python -m tests.worker.worker_venv      # create or refresh it (scripts/bootstrap.sh calls this)
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-worker"
# The worker library of the v2 model for Python 3.13 (what the Functions host's proxy worker loads).
RUNTIME = "azure-functions-runtime>=1.3,<2"


def find_python313() -> str | None:
    """Python 3.13 that really runs: under pyenv (how the team's machines have it), or on PATH.

    A pyenv shim for a version that is not selected is on PATH too, and exits 127: each candidate is tried."""
    root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{root}/versions/3.13*/bin/python3.13"), reverse=True)
    on_path = shutil.which("python3.13")
    for candidate in [*candidates, *([on_path] if on_path else [])]:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True, check=False)  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 13)":
            return candidate
    return None


def stamp() -> str:
    """What the venv was built from: the requirements and the worker pin."""
    return hashlib.sha256((ROOT / "requirements.txt").read_bytes() + RUNTIME.encode()).hexdigest()


def python() -> Path:
    return VENV / "bin" / "python"


def ensure() -> Path | None:
    """The venv's interpreter, built if missing or stale; None when Python 3.13 is not on this machine."""
    marker = VENV / ".inputs.sha"
    if python().exists() and marker.exists() and marker.read_text() == stamp():
        return python()
    base = find_python313()
    if base is None:
        return None
    if not python().exists():
        subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, RUNTIME, "-r", str(ROOT / "requirements.txt")], check=True)
    marker.write_text(stamp())
    return python()


if __name__ == "__main__":
    result = ensure()
    print(f"worker venv: {result}" if result else "worker venv: no Python 3.13 here; tests/worker will be skipped")
    sys.exit(0)

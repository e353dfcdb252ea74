"""scripts/audit.sh as CI runs it (.ci/run): the real script and report reader in a scratch tree whose bootstrap
and pip-audit are stand-ins, so the exit status is proven end to end: a reported vulnerability fails CI, a clean
report passes, a pip-audit that wrote no report fails rather than passing silently."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
VULNERABLE = {"dependencies": [{"name": "requests", "version": "2.0.0", "vulns": [{"id": "PYSEC-2014-13"}]}]}
CLEAN = {"dependencies": [{"name": "msal", "version": "1.39.0", "vulns": []}]}


def tree(tmp_path: pathlib.Path, report: dict[str, object] | None) -> pathlib.Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / ".venv" / "bin").mkdir(parents=True)
    for name in ("audit.sh", "audit_report.py"):
        shutil.copy(REPO / "scripts" / name, root / "scripts" / name)
    (root / "requirements.txt").write_text("requests\n")
    (root / "scripts" / "bootstrap.sh").write_text("#!/usr/bin/env bash\nexit 0\n")
    written = "" if report is None else f"open(out, 'w').write({json.dumps(json.dumps(report))})"
    (root / ".venv" / "bin" / "pip-audit").write_text(
        f"#!{sys.executable}\nimport sys\nout = sys.argv[sys.argv.index('-o') + 1]\n{written}\n"
        "sys.exit(1 if 'vulns' in open(out).read() and 'PYSEC' in open(out).read() else 0)\n"
        if report is not None else f"#!{sys.executable}\nimport sys\nsys.exit(2)\n"
    )  # fmt: skip
    for name in ("scripts/bootstrap.sh", ".venv/bin/pip-audit"):
        os.chmod(root / name, 0o755)
    os.symlink(sys.executable, root / ".venv" / "bin" / "python")
    return root


def audit(root: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(root / "scripts" / "audit.sh")], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("report", "code", "says"),
    [
        (VULNERABLE, 1, "audit: requests 2.0.0: PYSEC-2014-13"),
        (CLEAN, 0, "1 packages audited, no known vulnerability"),
        (None, 1, "audit: FAILED: pip-audit wrote no readable report"),  # pip-audit died: no pass
    ],
    ids=["vulnerability", "clean", "no report"],
)
def test_the_audit_script_exit_status(tmp_path: pathlib.Path, report: dict[str, object] | None, code: int,
                                      says: str) -> None:  # fmt: skip
    result = audit(tree(tmp_path, report))
    assert result.returncode == code, result
    assert says in result.stdout and "Traceback" not in result.stderr


def test_ci_runs_the_audit_after_the_tests_and_stops_on_its_failure() -> None:
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "set -euo pipefail" in lines
    assert lines.index("bash scripts/audit.sh") > lines.index("bash scripts/test.sh")


def test_ci_runs_the_reduced_benchmark_after_the_tests() -> None:
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert lines.index(".venv/bin/python -m bench --quick") > lines.index("bash scripts/test.sh")

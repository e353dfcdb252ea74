"""The operator CLI on the sandbox stack: live pre-flight, dry run, status with age, backlog and leases,
lease clearing with confirmation, dead-letter commands, exit codes, --json."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from shared import cli
from shared.state.lease import RunLease
from shared.state.store import TABLE_NAMES
from tests.e2e.conftest import Stack
from tests.e2e.test_ingress import contacts_only


@pytest.fixture
def operator(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    import shared.settings

    for spec in shared.settings.SPECS:
        monkeypatch.delenv(spec.name, raising=False)

    def call(stack: Stack, *argv: str, answer: str = "n", capsys: Any = None, **env: str) -> tuple[int, str, str]:
        settings = tmp_path / "local.settings.json"
        settings.write_text(json.dumps({"Values": {**stack.env, **env}}))
        code = cli.main(["--settings", str(settings), *argv], ask=lambda prompt: answer)
        return code, *capsys.readouterr()

    return call


def test_validate_checks_the_live_systems_and_lists_every_problem(
    stack_factory: Callable[..., Stack], operator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_factory()
    code, out, _ = operator(stack, "validate", "--json", capsys=capsys)
    assert code == 0, out
    subjects = [c["subject"] for c in json.loads(out)["checks"]]
    assert any("Dataverse credentials" in s for s in subjects) and any("Campaign credentials" in s for s in subjects)
    assert any("table 'contacts'" in s for s in subjects) and any("table 'loyaltycards'" in s for s in subjects)

    fields = [{"source": "firstname", "target": "firstNam"}, {"source": "nosuchcolumn", "target": "lastName"}]
    target = {"resource": "profile", "keyAttribute": "externalId", "lookupFilter": "byExternalIdentifier",
              "lookupParameter": "externalId_parameter"}  # fmt: skip
    config = contacts_only(fields=fields, target=target, replacements=[])
    config["optOut"] = {"mode": "disabled", "pairs": []}
    code, out, _ = operator(stack_factory(config), "validate", capsys=capsys)
    assert code == 2
    for fragment in ("firstNam", "nosuchcolumn", "byExternalIdentifier"):
        assert fragment in out  # all three, in one run

    code, out, _ = operator(stack, "validate", "--json", capsys=capsys, DATAVERSE_CLIENT_SECRET="wrong")
    assert code == 2
    [failed] = [c for c in json.loads(out)["checks"] if c["problems"]]
    assert "Dataverse credentials" in failed["subject"] and "invalid_client" in " ".join(failed["problems"])


def test_dry_run_reads_and_decides_but_writes_nothing(
    stack_factory: Callable[..., Stack], operator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(30)
    code, out, _ = operator(stack, "run", "ingress", "--dry-run", "--json", capsys=capsys)
    assert code == 0
    [summary] = json.loads(out)
    assert summary["dry_run"] and summary["counts"] == {"read": 30, "created": 30}
    assert stack.acs.rows("profile") == []
    assert [
        r for r in stack.acs.requests() if r["method"] in ("POST", "PATCH", "DELETE") and "/ims/" not in r["path"]
    ] == []
    state = stack.svc.state
    assert all(list(state.table(name).list_entities()) == [] for name in TABLE_NAMES)


def test_status_shows_cursor_age_backlog_and_a_dead_runs_lease_which_clear_removes_after_confirmation(
    stack_factory: Callable[..., Stack], operator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(10)
    assert operator(stack, "run", "ingress", capsys=capsys)[0] == 0
    code, out, _ = operator(stack, "status", "ingress", "--json", capsys=capsys)
    [row] = json.loads(out)
    assert (row["flow"], row["scope"], row["last_outcome"], row["backlog"]) == (
        "ingress", "contacts", "completed", "up to date")  # fmt: skip
    assert row["cursor"].startswith("incremental:") and 0 <= row["cursor_age_seconds"] < 120 and row["lease"] is None

    stack.dv.update("contacts", stack.dv.rows("contacts")[0]["contactid"], {"lastname": "Changed"})
    dead = RunLease(stack.svc.state.table("leases"), "ingress~contacts", "deadbeef-run", duration=1800)
    dead.acquire()
    code, out, _ = operator(stack, "status", capsys=capsys)
    assert "changes waiting" in out and "run deadbeef until" in out

    code, out, _ = operator(stack, "run", "ingress", capsys=capsys)
    assert code == 3 and "holds the lease until" in out  # skipped: not a silent success
    assert operator(stack, "leases", "clear", "ingress", "contacts", answer="n", capsys=capsys)[0] == 4
    assert [lease["owner"] for lease in json.loads(operator(stack, "leases", "--json", capsys=capsys)[1])] == [
        "deadbeef-run"]  # fmt: skip
    assert operator(stack, "leases", "clear", "ingress", "contacts", answer="y", capsys=capsys)[0] == 0
    assert json.loads(operator(stack, "leases", "--json", capsys=capsys)[1]) == []
    assert operator(stack, "run", "ingress", capsys=capsys)[0] == 0


def test_dead_letter_commands(stack_factory: Callable[..., Stack], operator: Any,
                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    stack = stack_factory(contacts_only(), DEAD_LETTER_MAX_ATTEMPTS="1")
    bad = stack.dv.create("contacts", {"firstname": "Z" * 45, "lastname": "TooLong"})
    operator(stack, "run", "ingress", capsys=capsys)
    code, out, _ = operator(stack, "deadletters", "list", "ingress", "--json", capsys=capsys)
    [letter] = json.loads(out)
    assert letter["record_id"] == bad and "Z" * 45 not in letter["reason"]
    operator(stack, "run", "ingress", capsys=capsys)  # the attempt limit is reached: no longer retried by itself
    stack.dv.update("contacts", bad, {"firstname": "Fixed"})
    code, out, _ = operator(stack, "deadletters", "retry", "ingress", "--scope", "contacts", "--yes", "--json",
                            capsys=capsys)  # fmt: skip
    assert code == 0 and json.loads(out)[0]["counts"]["dead_letter_retries_ok"] == 1
    assert json.loads(operator(stack, "deadletters", "--json", capsys=capsys)[1]) == []

    operator(stack, "run", "ingress", capsys=capsys)
    stack.dv.create("contacts", {"firstname": "W" * 45})
    operator(stack, "run", "ingress", capsys=capsys)
    assert operator(stack, "deadletters", "purge", "ingress", "--scope", "contacts", capsys=capsys)[0] == 4
    code, out, _ = operator(stack, "deadletters", "purge", "ingress", "--scope", "contacts", answer="y",
                            capsys=capsys)  # fmt: skip
    assert code == 0 and "purged 1" in out
    assert operator(stack, "deadletters", "purge", "ingress", "--scope", "nosuch", "--yes", capsys=capsys)[0] == 2

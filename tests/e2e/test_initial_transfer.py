"""Initial transfer end to end: Dataverse sandbox -> ingress chooses the file path -> export into Blob (Azurite)
-> SFTP (a real sshd) -> the Campaign sandbox's import workflow (its own parser) -> ingress increments."""

from __future__ import annotations

import dataclasses
import gzip
import json
import pathlib
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox, delimited
from sandbox.dataverse import DataverseSandbox
from sandbox.sshd import SshdServer
from shared import cli
from shared.clients.dataverse import ChangeTrackingExpired
from shared.flows.change_feed import ChangeFeedCursor
from shared.flows.initial_transfer import INITIAL_TRANSFER, PAGES_AHEAD
from shared.flows.initial_transfer_cursor import TransferCursor
from shared.flows.runner import Progress, RunSummary
from shared.http import Outcome
from shared.ops.preflight import preflight
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from tests.e2e.conftest import Stack, example_config, make_stack
from tests.e2e.oracle import expected_records
from tests.e2e.test_ingress import mutate_contacts
from tests.flows.fakes import TickingClock

PROFILE_WORKFLOW = "WKF_D365_IMPORT_PROFILE"
HOSTILE = [
    "semi;colon",
    'a "quoted" word',
    '"',
    "line\nbreak",
    "crlf\r\ninside",
    "lone\rcr",
    " leading space",
    "trailing tab\t",
    "emoji 🎉 and ZWJ 👩\u200d💻",
    "Émile Zoë ß",
    "=1+1",
    'https://x.example/a;b?c="d"',
    "\u2028 separator",
]


@dataclasses.dataclass
class TransferStack:
    stack: Stack
    sshd: SshdServer
    root: pathlib.Path  # the SFTP folder the Campaign sandbox imports from

    @property
    def dv(self) -> DataverseSandbox:
        return self.stack.dv

    @property
    def acs(self) -> CampaignSandbox:
        return self.stack.acs

    @property
    def uploads(self) -> pathlib.Path:
        return self.root / "d365_loads" / "imports"

    def ingress(self, *names: str) -> list[RunSummary]:
        return self.stack.run(*names)

    def transfer(self, *names: str, budget: float = 600.0, progress: Callable[[Progress], None] | None = None,
                 monotonic: Callable[[], float] | None = None) -> list[RunSummary]:  # fmt: skip
        extra: dict[str, Any] = {"monotonic": monotonic} if monotonic else {}
        return INITIAL_TRANSFER.run(self.stack.svc, list(names) or None, budget_seconds=budget, progress=progress,
                                    **extra)  # fmt: skip

    @property
    def checkpoints(self) -> CheckpointStore:
        return CheckpointStore(self.stack.svc.state.table("checkpoints"))

    def cursor(self, table: str = "contacts") -> TransferCursor:
        return self.checkpoints.load("initial_transfer", table, TransferCursor).cursor

    def ingress_cursor(self, table: str = "contacts") -> ChangeFeedCursor:
        return self.checkpoints.load("ingress", table, ChangeFeedCursor).cursor

    def accepted_triggers(self, workflow: str = PROFILE_WORKFLOW) -> list[dict[str, Any]]:
        return [t for t in self.acs.triggers(workflow) if t["accepted"]]

    def files(self) -> list[pathlib.Path]:
        return sorted(p for p in self.uploads.iterdir() if p.is_file())


def sftp_settings(sshd: SshdServer, root: pathlib.Path) -> dict[str, str]:
    return {
        "SFTP_HOST": sshd.host,
        "SFTP_PORT": str(sshd.port),
        "SFTP_USERNAME": sshd.username,
        "SFTP_PRIVATE_KEY": sshd.client_private_key,
        "SFTP_HOST_KEY": sshd.host_public_key,
        "SFTP_UPLOAD_FOLDER": str(root / "d365_loads" / "imports"),  # no chroot: absolute paths
    }


@pytest.fixture
def transfer_stack(
    dataverse_sandbox: DataverseSandbox, campaign_sftp_sandbox: CampaignSandbox, storage_connection_string: str,
    table_prefix: str, sshd_server: SshdServer, sftp_folder: pathlib.Path,
) -> Callable[..., TransferStack]:  # fmt: skip
    def make(config: Mapping[str, Any] | None = None, **extra: str) -> TransferStack:
        settings = {
            "INITIAL_TRANSFER_THRESHOLD": "100",
            "DATAVERSE_PAGE_SIZE": "200",
            "INITIAL_TRANSFER_PART_ROWS": "500",
            **sftp_settings(sshd_server, sftp_folder),
            **extra,
        }
        stack = make_stack(dataverse_sandbox, campaign_sftp_sandbox, storage_connection_string, table_prefix,
                           config, **settings)  # fmt: skip
        return TransferStack(stack, sshd_server, sftp_folder)

    return make


def contacts_by_file(**options: Any) -> dict[str, Any]:
    config = example_config()
    config["ingress"]["tables"] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    config["ingress"]["tables"][0]["options"].update(options)
    return config


def create_hostile_contacts(dv: DataverseSandbox) -> list[str]:
    ids = []
    for n, text in enumerate(HOSTILE):
        ids.append(dv.create("contacts", {"firstname": text, "lastname": f"{text} {n}", "emailaddress1": None,
                                          "telephone1": text, "donotbulkemail": n % 2 == 0}))  # fmt: skip
    return ids


def parsed_files(files: list[pathlib.Path], separator: str = ";") -> Iterator[dict[str, str]]:
    """Every record of the import files, read by the Campaign sandbox's own parser (not the connector's)."""
    for path in files:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
        records = list(delimited.parse(text, separator))
        header = records[0].fields
        for record in records[1:]:
            assert record.problem is None, (path.name, record.line, record.problem)
            yield dict(zip(header, record.fields, strict=True))


def as_file_text(value: Any) -> str:
    """The file-format rules (docs/file-format.md), written out independently for the test's expectations."""
    if value is None:
        return ""
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value.replace("-", "/")  # the oracle's dates are YYYY-MM-DD
    return str(value)


def test_a_large_table_goes_by_file_then_takes_increments(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file(), DATAVERSE_PAGE_SIZE="5000", INITIAL_TRANSFER_PART_ROWS="20000")
    ts.dv.seed_contacts(50_000)
    hostile = create_hostile_contacts(ts.dv)
    rows = 50_000 + len(HOSTILE)

    [ingress] = ts.ingress()
    assert ingress.outcome == "completed", ingress.reason
    assert ingress.counts == {"handed_to_file": 1}  # ingress itself wrote nothing
    assert any(f"{rows:,} rows counted" in n and "snapshot" in n for n in ingress.notes), ingress.notes
    assert ts.acs.rows("profile") == []

    progress: list[Progress] = []
    [transfer] = ts.transfer(progress=progress.append)
    assert transfer.outcome == "completed", transfer.reason
    assert transfer.counts["exported"] == rows and transfer.counts["parts_staged"] == 3
    assert transfer.counts["parts_uploaded"] == 3 and transfer.counts["signals"] == 1
    assert ts.cursor().state == "handed-over"

    # The files, read back by the sandbox's independent parser, are the source projection, hostile text included.
    files = ts.files()
    assert [f.name for f in files] == [f"{ts.cursor().batch}_part000{n}.csv.gz" for n in (1, 2, 3)]
    expected = expected_records(ts.stack.document, "contacts", ts.dv.rows("contacts"))
    in_files = {r["externalId"]: r for r in parsed_files(files)}
    assert len(in_files) == rows
    assert {key: {k: as_file_text(v) for k, v in payload.items()} for key, payload in expected.items()} == in_files
    assert {in_files[i]["firstName"] for i in hostile} == set(HOSTILE)

    # Signalled once, with the right names; the import put exactly one record per row into Campaign.
    [trigger] = ts.accepted_triggers()
    assert trigger["parameters"] == {"batch": ts.cursor().batch, "fileNames": ",".join(f.name for f in files),
                                     "rowCount": rows}  # fmt: skip
    contacts = ts.stack.table("contacts")
    ts.stack.assert_campaign_matches(contacts)
    [history] = ts.acs.import_history(PROFILE_WORKFLOW)
    assert (history["state"], history["inserted"], history["rejected"]) == ("finished", rows, 0)

    # Progress went up to the counted total, and the table is back with ingress at the export's delta link.
    exported = [p.done for p in progress if p.stage == "export"]
    assert exported == sorted(exported) and exported[-1] == rows and progress[-1].stage == "upload"
    assert ts.ingress_cursor().phase == "incremental"

    changes = mutate_contacts(ts.stack, random.Random(3), 60)
    [increment] = ts.ingress()
    assert increment.outcome == "completed", increment.reason
    assert increment.counts["created"] == changes["create"] and increment.counts["deleted"] == changes["delete"]
    ts.stack.assert_campaign_matches(contacts)
    assert ts.transfer() == []  # nothing left to do: no run, no summary


def test_changes_during_the_export_arrive_as_increments(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file())
    ts.dv.seed_contacts(1500)
    ts.ingress()
    rng = random.Random(11)
    made: dict[str, int] = {}

    def change_dynamics_mid_export(progress: Progress) -> None:
        if progress.stage == "export" and progress.done >= 600 and not made:
            made.update(mutate_contacts(ts.stack, rng, 40))  # creates, updates, deletes while the export pages

    [transfer] = ts.transfer(progress=change_dynamics_mid_export)
    assert transfer.outcome == "completed", transfer.reason
    assert made  # the changes happened while the export was paging
    [increment] = ts.ingress()
    assert increment.outcome == "completed", increment.reason
    assert increment.counts["read"] >= sum(made.values()) - 5  # a record changed twice is read once
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))


def test_time_boxed_ticks_close_their_part_and_resume(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file(), DATAVERSE_PAGE_SIZE="100", INITIAL_TRANSFER_PART_ROWS="100000")
    ts.dv.seed_contacts(1200)
    ts.ingress()
    ts.dv.clear_requests()
    runs = []
    while not runs or runs[-1].outcome != "completed":
        # Every look at the clock costs a tick: a budget of 12 lasts a few pages of the export.
        runs.append(ts.transfer(budget=12, monotonic=TickingClock(step=1.0))[0])
        assert runs[-1].outcome in ("partial", "completed"), runs[-1].reason
        assert len(runs) < 30
    exporting = [r for r in runs if "exported" in r.counts]
    assert len(exporting) > 2  # the export took several ticks...
    assert all(r.counts["parts_staged"] == 1 for r in exporting)  # ...each closing its part when time ran out
    pages = [r for r in ts.dv.requests() if r["method"] == "GET" and r["path"].endswith("/contacts")]
    # No page read twice but those read ahead as time ran out (PAGES_AHEAD per tick, at most).
    assert len(pages) <= 12 + PAGES_AHEAD * len(exporting)
    keys = [record["externalId"] for record in parsed_files(ts.files())]
    assert len(keys) == len(set(keys)) == 1200
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))


def test_forced_paths_and_the_threshold(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file(initialLoad="api"), INITIAL_TRANSFER_THRESHOLD="10")
    ts.dv.seed_contacts(50)
    [run] = ts.ingress()
    assert run.counts == {"read": 50, "created": 50} and "forced" in run.notes[0]
    assert ts.dv.requests() and not any("RetrieveTotalRecordCount" in r["path"] for r in ts.dv.requests())

    small = transfer_stack(contacts_by_file(), INITIAL_TRANSFER_THRESHOLD="1000")
    small.stack.svc.state.table("checkpoints").delete_entity("ingress", "contacts")
    [run] = small.ingress()
    # At or under the threshold: the API. A first read skips the index, so the 50 profiles the
    # other stack created are found in Campaign by key and rewritten, never created twice.
    assert run.counts.get("unchanged", 0) + run.counts.get("updated", 0) == 50
    assert "created" not in run.counts
    assert "not over INITIAL_TRANSFER_THRESHOLD" in run.notes[0]


def test_file_path_without_workflow_or_sftp_is_a_clear_error(
    transfer_stack: Callable[..., TransferStack],
) -> None:
    config = contacts_by_file()
    del config["ingress"]["tables"][0]["options"]["initialTransfer"]
    ts = transfer_stack(config)
    ts.dv.seed_contacts(150)
    [run] = ts.ingress()
    assert run.outcome == "failed"
    assert "table 'contacts' goes by file" in run.reason and "options.initialTransfer" in run.reason
    assert ts.ingress_cursor().path_due  # nothing handed over: the next run decides again

    no_sftp = transfer_stack(contacts_by_file(), SFTP_HOST="", SFTP_USERNAME="", SFTP_PRIVATE_KEY="", SFTP_HOST_KEY="")
    [run] = no_sftp.ingress()
    assert run.outcome == "failed" and "SFTP settings are missing" in run.reason and "SFTP_HOST" in run.reason


def test_a_failed_import_is_visible_and_retryable(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file())
    ts.dv.seed_contacts(800)
    ts.ingress()
    ts.acs.fail_next_import("Load file: the structure does not fit")
    [transfer] = ts.transfer()
    assert transfer.outcome == "failed" and "ended in error" in transfer.reason
    assert "transfer retry contacts" in transfer.reason
    cursor = ts.cursor()
    assert cursor.state == "failed" and cursor.failed_in == "signalled"
    [waiting] = ts.ingress()  # never a silent switch to increments
    assert waiting.counts == {"waiting_for_transfer": 1} and "failed" in waiting.notes[0]
    assert ts.acs.rows("profile") == []
    assert ts.transfer() == []  # a failed transfer waits for the operator

    settings = pathlib.Path(ts.root) / "local.settings.json"
    settings.write_text(json.dumps({"Values": dict(ts.stack.env)}))
    assert cli.main(["--settings", str(settings), "transfer", "retry", "contacts"]) == 0
    assert cli.main(["--settings", str(settings), "transfer", "retry", "contacts"]) == 2  # not failed any more
    ts.acs.advance_clock(601)  # Campaign's 10-minute rule between two triggers
    [again] = ts.transfer()
    assert again.outcome == "completed", again.reason
    assert again.counts["parts_uploaded"] == 2 and "exported" not in again.counts  # no second export
    assert len(ts.accepted_triggers()) == 2
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))


def test_a_lost_trigger_answer_is_looked_up_not_resent(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file())
    ts.dv.seed_contacts(300)
    ts.ingress()
    ts.acs.fail(action="drop_after", path="/trigger", method="POST", times=1)  # taken, then the answer is lost
    [transfer] = ts.transfer()
    assert transfer.outcome == "completed", transfer.reason
    assert any("answer was lost" in n for n in transfer.notes)
    assert len(ts.acs.triggers(PROFILE_WORKFLOW)) == 1  # one attempt, taken
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))


def test_a_finished_workflow_is_started_again_and_the_10_minute_rule_waits_for_a_tick(
    transfer_stack: Callable[..., TransferStack],
) -> None:
    ts = transfer_stack(contacts_by_file())
    ts.dv.seed_contacts(300)
    ts.ingress()
    ts.acs.set_workflow_state(PROFILE_WORKFLOW, "finished")  # an earlier import
    ts.acs.fail(400, path="/trigger", method="POST", times=1,
                body="RST-360011 An error has occurred\nThe 'signal1' External signal activity cannot be triggered "
                     "more often than every 10 minutes.")  # fmt: skip
    [first] = ts.transfer()
    assert first.outcome == "completed" and ts.cursor().state == "signalling"
    assert any("10 minutes" in n for n in first.notes)
    [second] = ts.transfer()
    assert second.outcome == "completed", second.reason
    assert ts.cursor().state == "handed-over" and len(ts.accepted_triggers()) == 1


def test_bad_rows_are_dead_lettered_for_ingress(transfer_stack: Callable[..., TransferStack]) -> None:
    ts = transfer_stack(contacts_by_file(), INITIAL_TRANSFER_ENCODING="latin-1", INITIAL_TRANSFER_GZIP="false")
    ts.dv.seed_contacts(200)
    emoji = ts.dv.create("contacts", {"firstname": "🎉", "lastname": "NotLatin1"})
    ts.ingress()
    [transfer] = ts.transfer()
    assert transfer.outcome == "completed", transfer.reason
    assert transfer.counts["dead_lettered"] == 1 and transfer.counts["exported"] == 200
    assert all(f.name.endswith(".csv") for f in ts.files())
    exported = list(parsed_files(ts.files()))  # the rows around the refused one are in the file, whole
    assert len(exported) == 200 and emoji not in {row["externalId"] for row in exported}
    [letter] = DeadLetterStore(ts.stack.svc.state.table("deadletters")).entries("ingress", "contacts")
    assert letter.record_id == emoji and "latin-1" in letter.reason and "🎉" not in letter.reason
    [increment] = ts.ingress()  # ingress retries it through the API
    assert increment.counts["dead_letter_retries_ok"] == 1
    [profile] = ts.acs.find_rows("profile", externalId=emoji)
    assert profile["firstName"] == "🎉"


def test_validate_checks_each_tables_import_workflow(transfer_stack: Callable[..., TransferStack]) -> None:
    def transfer_checks(ts: TransferStack) -> dict[str, tuple[str, ...]]:
        return {c.subject: c.problems for c in preflight(ts.stack.svc, [INITIAL_TRANSFER]) if "workflow" in c.subject}

    wrong = transfer_stack(contacts_by_file(initialTransfer={"workflow": PROFILE_WORKFLOW, "signal": "signal9"}))
    assert transfer_checks(wrong) == {
        f"table 'contacts': import workflow {PROFILE_WORKFLOW}, signal signal9": (
            "the workflow has no External signal 'signal9' (has: signal1)",
        )
    }
    right = transfer_stack(contacts_by_file())
    assert transfer_checks(right) == {f"table 'contacts': import workflow {PROFILE_WORKFLOW}, signal signal1": ()}


def test_an_export_started_over_leaves_no_file_under_the_new_batchs_mask(
    transfer_stack: Callable[..., TransferStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read expires mid-export after the first attempt's parts went to SFTP, and half the contacts are deleted
    # meanwhile: the new attempt writes fewer parts than the first uploaded. Its batch name is new, so the
    # workflow's mask (<batch>_part*, docs/campaign-import-workflow.md) finds none of the first attempt's files.
    ts = transfer_stack(contacts_by_file(), DATAVERSE_PAGE_SIZE="100", INITIAL_TRANSFER_PART_ROWS="100")
    ts.dv.seed_contacts(1000)
    ts.ingress()
    dataverse = ts.stack.svc.dataverse
    read = dataverse.iter_changes
    attempts: list[str] = []

    def expiring(entity_set: str, select: Any, link: str | None = None) -> Iterator[Any]:
        attempts.append("read")
        for number, page in enumerate(read(entity_set, select, link), start=1):
            yield page
            if len(attempts) == 1 and number == 8:
                deadline = time.monotonic() + 30  # the uploads run beside the export: 7 parts on SFTP first
                while not (ts.uploads.is_dir() and len(ts.files()) >= 7) and time.monotonic() < deadline:
                    time.sleep(0.02)
                for row in ts.dv.rows("contacts")[:500]:
                    ts.dv.delete("contacts", row["contactid"])
                raise ChangeTrackingExpired(Outcome.FATAL, 400, "Version stamp expired.", code="0x80044352",
                                            method="GET", url="https://dv/contacts")  # fmt: skip

    monkeypatch.setattr(dataverse, "iter_changes", expiring)
    [transfer] = ts.transfer()
    assert transfer.outcome == "completed", transfer.reason
    assert attempts == ["read", "read"]
    [first] = {f.name.split("_part")[0] for f in ts.files()} - {ts.cursor().batch}
    assert len([f for f in ts.files() if f.name.startswith(f"{first}_part")]) >= 7, [f.name for f in ts.files()]
    assert ts.cursor().batch.endswith("-r1")
    mine = [f for f in ts.files() if f.name.startswith(f"{ts.cursor().batch}_part")]
    assert len(mine) == 5 and len(list(parsed_files(mine))) == 500
    ts.stack.assert_campaign_matches(ts.stack.table("contacts"))  # none of the deleted contacts came back

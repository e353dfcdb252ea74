"""Egress end to end: Campaign's sandbox delivers to synced profiles and exports its logs to the sshd folder (files
nobody writes by hand here); the flow reads them, and the Dataverse sandbox ends with exactly the activities and
tasks the events call for. Expected rows are shaped by tests/e2e/egress_stack.py from what deliver() returned."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import pathlib
import random
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from sandbox.sshd import SshdServer
from shared.cli import main as cli_main
from shared.flows.egress_provision import plan
from shared.state.deadletters import DeadLetterStore
from tests.e2e.cli_process import Cli
from tests.e2e.egress_stack import (
    TABLES,
    EgressStack,
    derived_id,
    egress_config,
    expected_activity,
    iso,
    landing,
    stack_factory,
)


@pytest.fixture
def egress_stack_factory(dataverse_sandbox: DataverseSandbox, campaign_sftp_sandbox: CampaignSandbox,
                         storage_connection_string: str, table_prefix: str, sshd_server: SshdServer,
                         sftp_folder: pathlib.Path) -> Callable[..., EgressStack]:  # fmt: skip
    return stack_factory(dataverse_sandbox, campaign_sftp_sandbox, storage_connection_string, table_prefix,
                         sshd_server, sftp_folder)  # fmt: skip


# Rates that make every kind of event in a small delivery (hard, soft and ignored bounces, opens, clicks).
RATES = {"hardBounce": 0.15, "softBounce": 0.1, "ignoredBounce": 0.05, "asyncBounce": 0.1, "open": 0.8, "click": 0.7}


def provision(stack: EgressStack, *args: str) -> int:
    return cli_main(["--settings", str(settings_file(stack)), "provision", "egress", *args])


def settings_file(stack: EgressStack) -> Any:
    path = stack.sftp_folder / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": dict(stack.stack.env)}))
    return path


def assert_landed(stack: EgressStack, events: list[dict[str, Any]], owner: str, *, due_days: int = 3,
                  tasks_on: tuple[str, ...] = ("click", "bounce")) -> None:  # fmt: skip
    """Dynamics holds exactly the activities and tasks of these events, every field as the test expects."""
    for event_type in TABLES:
        expected = {a["activityid"]: a for a in (expected_activity(e, owner) for e in events
                                                  if e["eventType"] == event_type)}  # fmt: skip
        rows = stack.activities(event_type)
        assert len(rows) == len({r["activityid"] for r in rows})
        actual = {r["activityid"]: r for r in rows}
        assert set(actual) == set(expected), event_type
        by_event_id = collections.Counter(r["new_eventid"] for r in rows)
        assert max(by_event_id.values(), default=1) == 1, "an event landed twice"
        mismatches = [(i, k, v, actual[i].get(k)) for i, e in expected.items() for k, v in e.items()
                      if actual[i].get(k) != v]  # fmt: skip
        assert mismatches == [], mismatches[:3]
    expected_tasks = {derived_id("task", e["eventType"], e["eventId"]): e for e in events if e["eventType"] in tasks_on}
    tasks = {t["activityid"]: t for t in stack.tasks()}
    assert set(tasks) == set(expected_tasks)
    for task_id, event in expected_tasks.items():
        task = tasks[task_id]
        assert task["_regardingobjectid_value"] == event["externalId"] and task["_ownerid_value"] == owner
        due = dt.datetime.strptime(iso(event["eventDate"]), "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(days=due_days)
        assert task["scheduledend"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert task["subject"].startswith("Follow up" if event["eventType"] == "click" else "Fix the email address")


def test_every_event_type_lands_on_the_contact_timeline_with_every_field(
    egress_stack_factory: Callable[..., EgressStack],
) -> None:
    stack = egress_stack_factory()
    ids = stack.contacts(40)
    delivery = stack.acs.deliver(external_ids=ids, without_external_id=3, seed=7, rates=RATES,
                                 campaign_label='Spring; "sale"', delivery_label="DM spring 2026")  # fmt: skip
    exported = stack.export()
    assert provision(stack, "--dry-run") == 0
    assert plan(stack.stack.svc.config.egress, stack.stack.svc.dataverse)  # the dry run created nothing
    assert provision(stack) == 0
    assert plan(stack.stack.svc.config.egress, stack.stack.svc.dataverse) == []

    summary = stack.run()
    assert summary.outcome == "completed", summary.reason
    now_visible = [e for e in delivery["events"] if not e["asynchronous"]]
    kinds = collections.Counter((e["eventType"], e["failureType"]) for e in now_visible)
    assert {("send", ""), ("open", ""), ("click", ""), ("bounce", "hard"), ("bounce", "soft")} <= set(kinds)
    owner = stack.dv.application_user_id
    assert_landed(stack, landing(now_visible), owner)
    counts = summary.counts
    assert counts["read"] == sum(exported["rows"].values()) == len(now_visible)
    assert counts["created"] == len(landing(now_visible))
    assert counts["bounces_soft"] == kinds[("bounce", "soft")]
    assert counts.get("bounces_ignored", 0) == kinds[("bounce", "ignored")]
    assert counts["files_archived"] == 2 and sorted(p.name for p in stack.archive.iterdir()) == sorted(
        exported["files"].values()
    )
    assert not list(stack.exports.glob("campaign_events_*"))
    # Events of Campaign-only profiles can never land: dead-lettered with the reason, never retried.
    letters = DeadLetterStore(stack.stack.svc.state.table("deadletters")).entries("egress", "events")
    without = {f"{e['eventType']}:{e['eventId']}" for e in now_visible if not e["externalId"]
               and not (e["eventType"] == "bounce" and e["failureType"] != "hard")}  # fmt: skip
    assert without and {d.record_id for d in letters} == without
    assert all("no externalId" in d.reason and d.payload is None for d in letters)

    # One contact's timeline, as Dynamics shows it (activitypointers regarding the contact).
    contact = next(e["externalId"] for e in now_visible if e["eventType"] == "click")
    timeline = [p for p in stack.dv.rows("activitypointers", limit=100_000) if p["_regardingobjectid_value"] == contact]
    assert {p["activitytypecode"] for p in timeline} >= {"new_campaignsend", "new_campaignclick", "task"}

    # The asynchronous bounces arrive later: the same delivery-log ids, now as bounces, land next to their sends.
    stack.acs.advance_clock(3600 + 60)
    later = stack.export()
    assert later["rows"]["deliverylogs"] == sum(1 for e in delivery["events"] if e["asynchronous"])
    assert stack.run().outcome == "completed"
    assert_landed(stack, landing(delivery["events"]), owner)

    # Provisioning again changes nothing.
    stack.dv.clear_requests()
    assert provision(stack) == 0
    assert [r for r in stack.dv.requests() if r["method"] != "GET" and "EntityDefinitions" in r["path"]] == []


def test_the_same_files_twice_create_nothing_twice_and_leave_completed_tasks_alone(
    egress_stack_factory: Callable[..., EgressStack],
) -> None:
    stack = egress_stack_factory()
    ids = stack.contacts(25)
    delivery = stack.acs.deliver(external_ids=ids, seed=11, rates={**RATES, "asyncBounce": 0.0})
    exported = stack.export()
    assert provision(stack) == 0
    assert stack.run().outcome == "completed"
    events = landing(delivery["events"])
    [done_task, *_] = stack.tasks()
    stack.dv.update("tasks", done_task["activityid"], {"statecode": 1, "statuscode": 5})  # a user completes it

    for name in exported["files"].values():  # Campaign (or an operator) drops the same files again
        shutil.copy(stack.archive / name, stack.exports / name)
    again = stack.run()
    assert again.outcome == "completed", again.reason
    assert again.counts.get("created", 0) == 0 and again.counts["unchanged"] == len(events)
    assert again.counts.get("tasks_created", 0) == 0 and again.counts["tasks_unchanged"] == len(stack.tasks())
    assert_landed(stack, events, stack.dv.application_user_id)
    assert stack.dv.get("tasks", done_task["activityid"])["statecode"] == 1  # never reverted


def test_toggles_decide_which_types_land_and_which_tasks_are_made(
    egress_stack_factory: Callable[..., EgressStack],
) -> None:
    config = egress_config(events={"send": True, "open": False, "click": True, "bounce": False},
                           followUpTasks={"onClick": False, "onBounce": False})  # fmt: skip
    stack = egress_stack_factory(config)
    ids = stack.contacts(25)
    delivery = stack.acs.deliver(external_ids=ids, seed=5, rates={**RATES, "asyncBounce": 0.0})
    stack.export()
    assert provision(stack) == 0  # the four tables are named, so all four are made
    summary = stack.run()
    assert summary.outcome == "completed", summary.reason
    events = delivery["events"]
    assert_landed(stack, landing(events, types=("send", "click")), stack.dv.application_user_id, tasks_on=())
    assert stack.activities("open") == [] and stack.activities("bounce") == [] and stack.tasks() == []
    assert summary.counts["event_type_off"] == sum(1 for e in events if e["eventType"] in ("open", "bounce"))


def test_unknown_contacts_are_retried_and_land_once_the_contact_exists(
    egress_stack_factory: Callable[..., EgressStack],
) -> None:
    stack = egress_stack_factory()
    ids = stack.contacts(10)
    newcomer = "0badc0de-0000-4000-8000-000000000001"  # a Campaign profile whose contact is not in Dynamics yet
    stack.acs.seed("profile", [{"externalId": newcomer, "email": "new@example.org", "lastName": "New"}])
    delivery = stack.acs.deliver(external_ids=[*ids, newcomer], seed=2,
                                 rates={"hardBounce": 0, "softBounce": 0, "ignoredBounce": 0, "asyncBounce": 0,
                                        "open": 1.0, "click": 1.0})  # fmt: skip
    stack.export()
    assert provision(stack) == 0
    first = stack.run()
    assert first.outcome == "completed", first.reason
    theirs = [e for e in delivery["events"] if e["externalId"] == newcomer]
    assert first.counts["contact_missing"] == len(theirs) and len(theirs) >= 3
    letters = DeadLetterStore(stack.stack.svc.state.table("deadletters"))
    parked = letters.entries("egress", "events")
    assert {d.record_id for d in parked} == {f"{e['eventType']}:{e['eventId']}" for e in theirs}
    assert all("no Dynamics contact" in d.reason and newcomer not in d.reason for d in parked)
    assert not list(stack.exports.glob("campaign_events_*"))  # archived: the dead letters carry the events

    assert stack.run().counts["dead_letter_retries_failed"] == len(theirs)  # still no contact
    stack.dv.create("contacts", {"contactid": newcomer, "lastname": "New"})  # ingress's counterpart arrives
    third = stack.run()
    assert third.counts["dead_letter_retries_ok"] == len(theirs)
    assert letters.entries("egress", "events") == []
    assert_landed(stack, landing(delivery["events"]), stack.dv.application_user_id)


def test_malformed_rows_and_unreadable_files_do_not_block_the_rest(
    egress_stack_factory: Callable[..., EgressStack],
) -> None:
    stack = egress_stack_factory()
    ids = stack.contacts(12)
    first = stack.acs.deliver(external_ids=ids[:6], seed=1, rates={**RATES, "asyncBounce": 0.0})
    one = stack.export()["files"]
    second = stack.acs.deliver(external_ids=ids[6:], seed=2, rates={**RATES, "asyncBounce": 0.0})
    two = stack.export()["files"]
    # Damage Campaign's own files: one row of the first delivery-log file gets a date in another format, and the
    # first tracking-log file loses its header (nothing in it can be read).
    damaged = stack.exports / one["deliverylogs"]
    lines = damaged.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2].replace("/", "-", 2)
    damaged.write_text("\n".join(lines), encoding="utf-8")
    unreadable = stack.exports / one["trackinglogs"]
    unreadable_text = unreadable.read_text(encoding="utf-8")
    unreadable.write_text(unreadable_text.split("\n", 1)[1], encoding="utf-8")
    assert provision(stack) == 0

    summary = stack.run()
    assert summary.outcome == "completed", summary.reason
    assert summary.counts["malformed"] == 1 and summary.counts["files_unreadable"] == 1
    assert any(one["trackinglogs"] in note and "left in place" in note for note in summary.notes)
    assert unreadable.exists() and not damaged.exists()  # left in place / archived
    [letter] = DeadLetterStore(stack.stack.svc.state.table("deadletters")).entries("egress", "events")
    assert letter.record_id == f"{one['deliverylogs']}:3" and "line 3: eventDate" in letter.reason
    tracking_one = [e for e in first["events"] if e["log"] == "trackinglogs"]
    bad_row = [e for e in first["events"] if e["log"] == "deliverylogs"][1]
    landed = [e for e in landing(first["events"] + second["events"]) if e not in tracking_one and e != bad_row]
    assert_landed(stack, landed, stack.dv.application_user_id,
                  tasks_on=("click", "bounce"))  # fmt: skip
    assert all(two[log] in {p.name for p in stack.archive.iterdir()} for log in two)

    unreadable.write_text(unreadable_text, encoding="utf-8")  # an operator puts the file right
    assert stack.run().counts["files_archived"] == 1
    assert_landed(stack, [e for e in landing(first["events"] + second["events"]) if e != bad_row],
                  stack.dv.application_user_id)  # fmt: skip


def test_a_dry_run_writes_nothing_and_moves_no_file(egress_stack_factory: Callable[..., EgressStack]) -> None:
    stack = egress_stack_factory()
    ids = stack.contacts(8)
    delivery = stack.acs.deliver(external_ids=ids, seed=4, rates={**RATES, "asyncBounce": 0.0})
    stack.export()
    assert provision(stack) == 0
    summary = stack.run(dry_run=True)
    assert summary.outcome == "completed", summary.reason
    assert summary.counts["would_write"] == len(landing(delivery["events"]))
    assert all(stack.activities(t) == [] for t in TABLES) and stack.tasks() == []
    assert len(list(stack.exports.glob("campaign_events_*"))) == 2


def test_429s_are_waited_out_and_parallel_batches_stay_within_the_setting(
    egress_stack_factory: Callable[..., EgressStack],
) -> None:
    stack = egress_stack_factory(EGRESS_BATCH_SIZE="6", DATAVERSE_MAX_PARALLEL="3")
    ids = stack.contacts(20)
    delivery = stack.acs.deliver(external_ids=ids, seed=9, rates={**RATES, "asyncBounce": 0.0})
    stack.export()
    assert provision(stack) == 0
    stack.dv.inject_fault("$batch", "429", count=3, retry_after=7)
    stack.dv.set_latency(30)  # requests overlap, so the bound on them shows
    summary = stack.run()
    assert summary.outcome == "completed", summary.reason
    assert stack.stack.waits.count(7) == 3  # Retry-After honoured, on the virtual clock
    assert_landed(stack, landing(delivery["events"]), stack.dv.application_user_id)
    batches = [r for r in stack.dv.requests() if r["path"].endswith("$batch")]
    assert len(batches) >= 6 and stack.dv.stats()["max_in_flight"] == 3


def test_an_outage_stops_the_run_fast_and_loses_nothing(egress_stack_factory: Callable[..., EgressStack]) -> None:
    stack = egress_stack_factory(EGRESS_BATCH_SIZE="10", HTTP_MAX_RETRY_WAIT_SECONDS="30")
    ids = stack.contacts(15)
    delivery = stack.acs.deliver(external_ids=ids, seed=6, rates={**RATES, "asyncBounce": 0.0})
    stack.export()
    assert provision(stack) == 0
    stack.dv.inject_fault("$batch", "503", count=1000)
    failed = stack.run()
    assert failed.outcome == "failed" and "503" in failed.reason
    assert all(stack.activities(t) == [] for t in TABLES)
    assert sum(1 for r in stack.dv.requests() if r["path"].endswith("$batch")) <= 4 * 6  # in-flight batches retried
    assert len(list(stack.exports.glob("campaign_events_*"))) == 2  # nothing committed, nothing archived
    stack.dv.clear_faults()
    assert stack.run().outcome == "completed"
    assert_landed(stack, landing(delivery["events"]), stack.dv.application_user_id)


def test_unprovisioned_tables_stop_the_run_before_any_write(egress_stack_factory: Callable[..., EgressStack]) -> None:
    stack = egress_stack_factory()
    stack.acs.deliver(external_ids=stack.contacts(3), seed=1)
    stack.export()
    summary = stack.run()
    assert summary.outcome == "failed"
    assert "new_campaignsends" in summary.reason and "provision egress" in summary.reason
    assert len(list(stack.exports.glob("campaign_events_*"))) == 2  # nothing read, nothing moved


SEEDS = range(int(os.environ.get("EGRESS_CRASH_SEEDS", "3")))  # more: EGRESS_CRASH_SEEDS=20


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkilled_runs_lose_and_duplicate_nothing(
    egress_stack_factory: Callable[..., EgressStack], tmp_path: Any, seed: int
) -> None:
    """The CLI runs egress in its own process and is killed after a random number of $batch requests (several
    batches per file, several files), then runs again to completion."""
    rng = random.Random(seed)
    stack = egress_stack_factory(EGRESS_BATCH_SIZE="8", DATAVERSE_MAX_PARALLEL="2")
    ids = stack.contacts(40, seed=seed + 1)
    events: list[dict[str, Any]] = []
    for n in range(2):
        events += stack.acs.deliver(external_ids=ids[n * 20 : (n + 1) * 20], seed=seed * 10 + n,
                                    rates={**RATES, "asyncBounce": 0.0})["events"]  # fmt: skip
        stack.export()
    assert provision(stack) == 0
    stack.dv.set_latency(20)  # the kill then lands while the process waits on Dynamics, as a real crash would
    cli = Cli(stack.stack, tmp_path)

    def batches() -> int:
        return sum(1 for r in stack.dv.requests() if r["method"] == "POST" and r["path"].endswith("$batch"))

    total = len(landing(events)) + sum(1 for e in landing(events) if e["eventType"] in ("click", "bounce"))
    assert cli.run_killed(rng.randint(1, max(1, total // 8 - 1)), "run", "egress", progress=batches)
    cli.run_to_completion("run", "egress")
    assert_landed(stack, landing(events), stack.dv.application_user_id)
    assert not list(stack.exports.glob("campaign_events_*"))

"""Ingress killed with SIGKILL at every kill point of tests/crash/points.py (initial load pages and writes, its
checkpoint, increment upserts and deletes, the full read of a resync and its sweep), then run to completion:
Campaign holds exactly the rows the oracle expects, none twice, the rejected rows are the dead letters, the
record index agrees with Campaign, and the cursor is at the end (the next run reads and writes nothing).

    CRASH_POINTS=all .venv/bin/pytest -q tests/crash/test_ingress_kills.py
"""

from __future__ import annotations

import pathlib
import random
from collections.abc import Callable

import pytest

from shared.flows.change_feed import INCREMENTAL, ChangeFeedCursor
from shared.state.checkpoints import CheckpointStore
from shared.state.index import RecordIndex
from tests.crash.kill import (
    Signal,
    campaign_requests,
    checkpoint_changes,
    dataverse_requests,
    dead_letter_ids,
    kill_at,
    record,
)
from tests.crash.points import KillPoint, selected
from tests.e2e.cli_process import Cli
from tests.e2e.conftest import Stack
from tests.e2e.conftest import _same as same
from tests.e2e.test_ingress import contacts_only, mutate_contacts, only_updatable

ROWS = 300  # plus the two rejected ones: 302 rows, 6 pages of 60


def signals(stack: Stack) -> dict[str, Signal]:
    return {
        "dataverse-pages": dataverse_requests(stack.dv, "GET", "/contacts"),
        "campaign-writes": campaign_requests(stack.acs, ("POST", "PATCH", "DELETE")),
        "campaign-upserts": campaign_requests(stack.acs, ("POST", "PATCH")),
        "campaign-deletes": campaign_requests(stack.acs, ("DELETE",)),
        "checkpoint-changes": checkpoint_changes(stack, "ingress", "contacts"),
    }


def resync_after_deletes(stack: Stack) -> None:
    """Dynamics deletes 15 synced contacts and changes 10 while the delta token expires: a full read and a sweep."""
    rng = random.Random(3)
    ids = [r["contactid"] for r in stack.dv.rows("contacts")]
    for contact in rng.sample(ids, 25)[:15]:
        stack.dv.delete("contacts", contact)
    for n, contact in enumerate(rng.sample([i for i in ids if stack.dv.get("contacts", i)], 10)):
        stack.dv.update("contacts", contact, {"lastname": f"Changed{n}"})
    stack.dv.expire_delta_tokens()


@pytest.mark.parametrize("point", selected("ingress"), ids=lambda p: p.id)
def test_killed_ingress_converges(stack_factory: Callable[..., Stack], tmp_path: pathlib.Path,
                                  point: KillPoint) -> None:  # fmt: skip
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="60", CAMPAIGN_MAX_PARALLEL="4")
    stack.dv.seed_contacts(ROWS, seed=5)
    rejected = {stack.dv.create("contacts", {"firstname": "X" * 45, "lastname": f"TooLong{n}"}) for n in range(2)}
    fields: Callable[[str], bool] = lambda _: True  # noqa: E731
    if not point.phase.startswith("initial") and point.phase != "checkpoint":
        [first] = stack.run()
        assert first.outcome == "completed", first.reason
        fields = only_updatable  # an increment writes only these (apply updates off for the rest)
        if point.phase.startswith("increment"):
            mutate_contacts(stack, random.Random(7), 60)
        else:
            resync_after_deletes(stack)
    stack.dv.clear_requests()
    stack.acs.clear_requests()
    cli = Cli(stack, tmp_path)

    kill_at(cli, point, signals(stack)[point.signal], "run", "ingress")
    cli.run_to_completion("run", "ingress")

    # The rows Campaign refuses, as they are now (an increment may have deleted or changed one of them).
    rejected = {c for c in rejected if len((stack.dv.get("contacts", c) or {}).get("firstname") or "") > 30}
    contacts = stack.table("contacts")
    rows = stack.campaign_rows(contacts)
    keys = [r["externalId"] for r in rows]
    expected = set(stack.expected(contacts)) - rejected
    lost, extra, duplicated = expected - set(keys), set(keys) - expected, len(keys) - len(set(keys))
    record(point, records=len(expected), lost=len(lost), extra=len(extra), duplicated=duplicated)
    assert (lost, extra, duplicated) == (set(), set(), 0)
    actual = {r["externalId"]: r for r in rows}
    wanted = {key: payload for key, payload in stack.expected(contacts).items() if key not in rejected}
    mismatches = [(key, name) for key, payload in wanted.items() for name, value in payload.items()
                  if fields(name) and not same(value, actual[key].get(name))]  # fmt: skip
    assert mismatches == [], mismatches[:5]  # every field, where it is written
    assert dead_letter_ids(stack, "ingress", "contacts") == rejected

    by_pkey = {row["PKey"]: row["externalId"] for row in rows}
    index = {e.record_id: e.href for e in RecordIndex(stack.svc.state.table("index")).iter_table("contacts")}
    assert set(index) == set(by_pkey.values())
    assert all(by_pkey.get(href.rstrip("/").rsplit("/", 1)[-1]) == record_id for record_id, href in index.items())

    cursor = CheckpointStore(stack.svc.state.table("checkpoints")).load("ingress", "contacts", ChangeFeedCursor)
    assert cursor.cursor.phase == INCREMENTAL and not cursor.cursor.sweep_epoch  # at the end, the sweep done
    writes = campaign_requests(stack.acs, ("POST", "PATCH", "DELETE"))
    before = writes()
    [again] = stack.run()
    assert again.outcome == "completed", again.reason
    assert writes() == before  # nothing left to write

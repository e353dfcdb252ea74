"""Ingress end to end: Dataverse sandbox -> flow -> Campaign sandbox, state on Azurite."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from shared.flows.change_feed import ChangeFeedCursor
from shared.state.checkpoints import CheckpointStore
from tests.e2e.conftest import Stack, example_config
from tests.flows.fakes import TickingClock

FIELDS_ON_UPDATE = {"firstName", "lastName", "email", "phone", "mobilePhone", "birthDate", "denyListEmail",
                    "denyListPhone", "externalId"}  # fmt: skip


def contacts_only(**overrides: Any) -> dict[str, Any]:
    config = example_config(contacts=overrides)
    config["ingress"]["tables"] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    return config


def mutate_contacts(stack: Stack, rng: random.Random, count: int) -> dict[str, int]:
    """Creates, updates and deletes as a Dynamics user would make them."""
    ids = [row["contactid"] for row in stack.dv.rows("contacts")]
    done = {"create": 0, "update": 0, "delete": 0}
    for n in range(count):
        kind = rng.choice(("create", "update", "update", "delete"))
        if kind == "create" or not ids:
            stack.dv.create(
                "contacts",
                {
                    "firstname": f"New{n}",
                    "lastname": "Person",
                    "statecode": rng.choice((0, 1)),
                    "emailaddress1": f"new{n}@example.org",
                    "donotbulkemail": rng.random() < 0.3,
                },
            )
            done["create"] += 1
        elif kind == "update":
            stack.dv.update("contacts", rng.choice(ids), {"lastname": f"Changed{n}", "donotphone": rng.random() < 0.5})
            done["update"] += 1
        else:
            ids.remove(victim := rng.choice(ids))
            stack.dv.delete("contacts", victim)
            done["delete"] += 1
    return done  # fmt: skip


def only_updatable(name: str) -> bool:
    return name in FIELDS_ON_UPDATE


def test_initial_load_then_increments_then_idle(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="1000", CAMPAIGN_MAX_PARALLEL="16")
    stack.dv.seed_contacts(4_000)  # four pages; bigger loads are measured by python -m bench
    inactive = sum(1 for r in stack.dv.rows("contacts") if r["statecode"] == 1)
    assert inactive > 100  # the seed carries inactive contacts, and the first load must too

    [first] = stack.run()
    assert first.outcome == "completed", first.reason
    assert first.counts == {"read": 4_000, "created": 4_000}
    print(f"initial load of 4,000 contacts: {first.duration_seconds:.1f} s")
    contacts = stack.table("contacts")
    stack.assert_campaign_matches(contacts)
    sample = next(r for r in stack.dv.rows("contacts") if r["gendercode"] == 2 and r["statecode"] == 1)
    [profile] = stack.acs.find_rows("profile", externalId=sample["contactid"])
    assert (profile["firstName"], profile["email"], profile["gender"]) == (
        sample["firstname"], sample["emailaddress1"], "female")  # fmt: skip

    changes = mutate_contacts(stack, random.Random(7), 200)
    [second] = stack.run()
    assert second.outcome == "completed", second.reason
    assert second.counts["created"] == changes["create"]
    assert second.counts["deleted"] == changes["delete"]
    stack.assert_campaign_matches(contacts, fields=only_updatable)

    stack.acs.clear_requests()
    stack.dv.clear_requests()
    [third] = stack.run()
    assert third.outcome == "completed" and {k: v for k, v in third.counts.items() if v} == {}
    assert stack.acs.requests() == []  # an idle tick in a warm process costs Campaign nothing, not even a token
    [delta_read] = stack.dv.requests()  # and Dataverse one request per table: metadata is cached
    assert delta_read["method"] == "GET" and "/contacts" in delta_read["path"]


@pytest.mark.parametrize(
    ("combine", "delete_filtered_out"), [("and", False), ("and", True), ("or", False), ("or", True)]
)
def test_filters(stack_factory: Callable[..., Stack], combine: str, delete_filtered_out: bool) -> None:
    rules = [{"field": "statecode", "operator": "eq", "value": 0},
             {"field": "donotbulkemail", "operator": "eq", "value": False}]  # fmt: skip
    filters = {"combine": combine, "deleteFilteredOut": delete_filtered_out, "rules": rules}
    stack = stack_factory(contacts_only(filters=filters))
    stack.dv.seed_contacts(400)
    [first] = stack.run()
    assert first.outcome == "completed", first.reason
    contacts = stack.table("contacts")
    stack.assert_campaign_matches(contacts)
    assert first.counts["filtered_out"] > 0 and first.counts["created"] > 0

    # Records start failing the filters: removed in Campaign only with deleteFilteredOut.
    synced = [r for r in stack.dv.rows("contacts") if r["statecode"] == 0 and not r["donotbulkemail"]][:20]
    for row in synced:
        stack.dv.update("contacts", row["contactid"], {"statecode": 1, "statuscode": 2, "donotbulkemail": True})
    [second] = stack.run()
    assert second.outcome == "completed", second.reason
    if delete_filtered_out:
        assert second.counts["deleted_filtered_out"] == 20
        stack.assert_campaign_matches(contacts, fields=only_updatable)
    else:
        assert second.counts["filtered_out"] == 20
        stack.assert_campaign_matches(contacts, fields=only_updatable, allow_extra=True)
        still_there = {r["externalId"] for r in stack.campaign_rows(contacts)}
        assert {r["contactid"] for r in synced} <= still_there


def test_replacements_and_apply_updates_off(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())
    ids = [
        stack.dv.create("contacts", {"firstname": "A", "lastname": "B", "gendercode": code}) for code in (1, 2, None)
    ]
    [run] = stack.run()
    assert run.outcome == "completed", run.reason
    genders = {r["externalId"]: r["gender"] for r in stack.campaign_rows(stack.table("contacts"))}
    assert [genders[i] for i in ids] == ["male", "female", "unknown"]

    # gender has applyUpdates off: an increment does not carry it, a replay does.
    stack.dv.update("contacts", ids[0], {"gendercode": 2, "firstname": "Changed"})
    [increment] = stack.run()
    [profile] = stack.acs.find_rows("profile", externalId=ids[0])
    assert increment.counts["updated"] == 1 and profile["firstName"] == "Changed" and profile["gender"] == "male"

    stack.dv.delete("contacts", ids[2])  # the replay's full read will not report this delete: the sweep will
    CheckpointStore(stack.svc.state.table("checkpoints")).request_reset("ingress", "contacts")
    [replay] = stack.run()
    [profile] = stack.acs.find_rows("profile", externalId=ids[0])
    assert replay.counts["updated"] == 2 and profile["gender"] == "female"
    assert replay.counts["deleted_after_resync"] == 1 and not stack.acs.find_rows("profile", externalId=ids[2])


def test_custom_table(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory()
    contact = stack.dv.create("contacts", {"firstname": "Card", "lastname": "Holder"})
    cards = [
        stack.dv.create("new_loyaltycards", {
            "new_name": f"card {n}", "new_cardnumber": f"C-{n:04d}", "new_points": n * 10, "new_tier": 1 + n % 3,
            "new_validuntil": "2027-06-30", "new_ContactId@odata.bind": f"/contacts({contact})"})
        for n in range(30)
    ]  # fmt: skip
    stack.dv.create("new_loyaltycards", {"new_name": "no number"})  # filtered out: notnull on the card number
    summaries = {s.scope: s for s in stack.run()}
    assert summaries["loyaltycards"].outcome == "completed", summaries["loyaltycards"].reason
    assert summaries["loyaltycards"].counts == {"read": 31, "created": 30, "filtered_out": 1}
    loyalty = stack.table("loyaltycards")
    stack.assert_campaign_matches(loyalty)
    [card] = stack.acs.find_rows("cusLoyaltyCard", crmId=cards[4])
    assert (card["cardNumber"], card["points"], card["tier"], card["contactId"]) == ("C-0004", 40, "silver", contact)

    stack.dv.delete("new_loyaltycards", cards[0])
    stack.dv.update("new_loyaltycards", cards[1], {"new_points": 999})
    summaries = {s.scope: s for s in stack.run("loyaltycards")}
    assert summaries["loyaltycards"].counts == {"read": 2, "deleted": 1, "updated": 1}
    stack.assert_campaign_matches(loyalty)


def test_expired_delta_token_resyncs(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(300)
    stack.run()
    rows = stack.dv.rows("contacts")
    stack.dv.update("contacts", rows[5]["contactid"], {"lastname": "AfterExpiry"})
    for row in rows[10:13]:  # deleted while the token expires: the full read cannot report these
        stack.dv.delete("contacts", row["contactid"])
    stack.dv.expire_delta_tokens()
    [run] = stack.run()
    assert run.outcome == "completed", run.reason
    assert run.counts["resyncs"] == 1 and run.counts["updated"] == 1 and run.counts["unchanged"] == 296
    assert run.counts["deleted_after_resync"] == 3  # swept: synced records the full read never met
    assert any("expired" in note for note in run.notes)
    stack.assert_campaign_matches(stack.table("contacts"), fields=only_updatable)
    [after] = stack.run()
    assert after.outcome == "completed" and {k: v for k, v in after.counts.items() if v} == {}


def test_deletes_ignored_unless_applied(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only(options={"applyDeletes": False, "picklists": "value"}))
    stack.dv.seed_contacts(50)
    stack.run()
    victim = stack.dv.rows("contacts")[0]["contactid"]
    stack.dv.delete("contacts", victim)
    [run] = stack.run()
    assert run.counts == {"read": 1, "deletes_ignored": 1}
    assert stack.acs.find_rows("profile", externalId=victim)


def test_bad_records_are_dead_lettered_and_retried(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(40)
    bad = stack.dv.create("contacts", {"firstname": "X" * 45, "lastname": "TooLongForCampaign"})  # firstName is 30
    [run] = stack.run()
    assert run.outcome == "completed" and run.counts["created"] == 40 and run.counts["dead_lettered"] == 1
    from shared.state.deadletters import DeadLetterStore

    letters = DeadLetterStore(stack.svc.state.table("deadletters"))
    [letter] = letters.entries("ingress", "contacts")
    assert letter.record_id == bad and "X" * 45 not in letter.reason  # reasons never carry values
    # Caught from Campaign's metadata before any write, and said as what it is: a refused value.
    assert letter.reason == "field 'firstname': value refused, longer than the 30 characters of 'firstName'"

    stack.dv.update("contacts", bad, {"firstname": "Fixed"})
    [retry] = stack.run()
    assert retry.counts["dead_letter_retries_ok"] == 1
    assert letters.entries("ingress", "contacts") == []
    [profile] = stack.acs.find_rows("profile", externalId=bad)
    assert profile["firstName"] == "Fixed"


def test_time_budget_stops_cleanly_and_resumes(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="100")
    stack.dv.seed_contacts(1000)
    # Every look at the clock costs a tick: a budget of 250 ticks lasts about two pages of 100 records.
    runs = [stack.run(budget=250, monotonic=TickingClock(step=1.0))[0] for _ in range(3)]
    assert [r.outcome for r in runs] == ["partial"] * 3
    assert all(0 < r.counts.get("created", 0) <= 300 for r in runs)
    checkpoints = CheckpointStore(stack.svc.state.table("checkpoints"))
    assert checkpoints.load("ingress", "contacts", ChangeFeedCursor).last_outcome == "partial"
    while runs[-1].outcome != "completed":
        runs.append(stack.run(budget=5000, monotonic=TickingClock(step=1.0))[0])
        assert len(runs) < 40
    assert sum(r.counts.get("created", 0) for r in runs) == 1000
    assert checkpoints.load("ingress", "contacts", ChangeFeedCursor).last_outcome == "completed"
    stack.assert_campaign_matches(stack.table("contacts"))


def test_table_without_change_tracking_is_refused(stack_factory: Callable[..., Stack]) -> None:
    config = example_config()
    untracked = {**config["ingress"]["tables"][1], "name": "untracked",
                 "source": {"entity": "new_untracked", "entitySet": "new_untrackeds", "primaryKey": "new_untrackedid"},
                 "fields": [{"source": "new_name", "target": "cardNumber"}], "filters": {"rules": []},
                 "replacements": []}  # fmt: skip
    config["ingress"]["tables"] = [untracked]
    config["optOut"] = {"mode": "disabled", "pairs": []}
    stack = stack_factory(config)
    [run] = stack.run()
    assert run.outcome == "failed"
    assert "new_untracked" in run.reason and "change tracking" in run.reason and "Track changes" in run.reason
    assert stack.acs.requests(method="POST") == [] or all("ims" in r["path"] for r in stack.acs.requests(method="POST"))


def test_concurrent_runs_never_both_write(stack_factory: Callable[..., Stack]) -> None:
    import threading

    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="100")
    stack.dv.seed_contacts(500)
    results = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        results.extend(stack.run())

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.outcome for r in results) == ["completed", "skipped"]
    stack.assert_campaign_matches(stack.table("contacts"))


def test_optout_fields_follow_the_instance_spelling(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())  # the mapping says denyListEmail / denyListPhone
    stack.acs.set_optout_spelling("blackList")
    opted_out = stack.dv.create("contacts", {"firstname": "No", "lastname": "Mail", "donotbulkemail": True})
    [run] = stack.run()
    assert run.outcome == "completed", run.reason
    [profile] = stack.acs.find_rows("profile", externalId=opted_out)
    assert profile["blackListEmail"] is True and "denyListEmail" not in profile


def test_mapping_that_does_not_fit_lists_every_problem_and_writes_nothing(stack_factory: Callable[..., Stack]) -> None:
    fields = [{"source": "firstname", "target": "firstNam"}, {"source": "nosuchcolumn", "target": "lastName"},
              {"source": "lastname", "target": "PKey"}]  # fmt: skip
    target = {"resource": "profile", "keyAttribute": "externalId", "lookupFilter": "byExternalIdentifier",
              "lookupParameter": "externalId_parameter"}  # fmt: skip
    config = contacts_only(fields=fields, target=target, replacements=[])
    config["optOut"] = {"mode": "disabled", "pairs": []}
    stack = stack_factory(config)
    stack.dv.seed_contacts(5)
    [run] = stack.run()
    assert run.outcome == "failed"
    for fragment in ("firstNam", "nosuchcolumn", "PKey", "byExternalIdentifier"):
        assert fragment in run.reason
    assert stack.acs.rows("profile") == []
    assert [r for r in stack.acs.requests() if r["method"] in ("POST", "PATCH") and "/ims/" not in r["path"]] == []


def test_throttled_and_flaky_services_still_converge(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only(), DATAVERSE_PAGE_SIZE="50")
    stack.dv.seed_contacts(200)
    stack.acs.set_budget(40, per_seconds=10.0)  # Campaign answers 429 + Retry-After beyond 40 calls per 10 s
    stack.dv.set_throttle("requests", limit=3, window_seconds=60)  # Dataverse service protection
    stack.acs.fail(503, method="POST", path="/profile", times=5)
    stack.acs.fail(action="drop_after", method="POST", path="/profile", times=3)  # written, answer lost
    [run] = stack.run()
    assert run.outcome == "completed", run.reason
    assert run.counts["created"] == 200
    assert len(stack.waits) > 10 and max(stack.waits) >= 1  # Retry-After waits were honoured
    assert any(r["status"] == 429 for r in stack.acs.requests())
    stack.assert_campaign_matches(stack.table("contacts"))


def test_literal_records_land_as_literal_profiles(stack_factory: Callable[..., Stack]) -> None:
    """The shipped example mapping, end to end, against values written out by hand."""
    stack = stack_factory()
    ada = stack.dv.create("contacts", {"contactid": "6d81597f-0f9f-e711-8122-000d3aa2331c", "firstname": "Ada",
                                       "lastname": "Lovelace", "emailaddress1": "ada@example.org",
                                       "telephone1": "+44 20 7946 0000", "birthdate": "1815-12-10", "gendercode": 2,
                                       "donotbulkemail": True, "donotphone": False, "statecode": 1,
                                       "statuscode": 2})  # fmt: skip
    bob = stack.dv.create("contacts", {"contactid": "0A8F6B53-1D2C-4E5F-8A9B-0C1D2E3F4A5B", "firstname": "Bob",
                                       "lastname": None, "gendercode": None})  # fmt: skip
    stack.dv.create("new_loyaltycards", {"new_loyaltycardid": "11111111-2222-3333-4444-555555555555",
                                         "new_name": "card", "new_cardnumber": "C-0042", "new_points": 1200,
                                         "new_tier": 3, "new_validuntil": "2027-06-30",
                                         "new_ContactId@odata.bind": f"/contacts({ada})"})  # fmt: skip
    summaries = {s.scope: s for s in stack.run()}
    assert [s.outcome for s in summaries.values()] == ["completed", "completed"]

    [profile_ada] = stack.acs.find_rows("profile", externalId="6d81597f-0f9f-e711-8122-000d3aa2331c")
    names = ("firstName", "lastName", "email", "phone", "birthDate", "gender", "denyListEmail", "denyListPhone")
    assert {k: profile_ada[k] for k in names} == {  # an inactive contact (statecode 1) is synced too
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.org",
        "phone": "+44 20 7946 0000",
        "birthDate": "1815-12-10",
        "gender": "female",
        "denyListEmail": True,
        "denyListPhone": False,
    }
    [profile_bob] = stack.acs.find_rows("profile", externalId="0a8f6b53-1d2c-4e5f-8a9b-0c1d2e3f4a5b")
    assert (bob.lower(), profile_bob["firstName"], profile_bob["lastName"], profile_bob["gender"]) == (
        "0a8f6b53-1d2c-4e5f-8a9b-0c1d2e3f4a5b", "Bob", "", "unknown")  # fmt: skip
    [card] = stack.acs.find_rows("cusLoyaltyCard", crmId="11111111-2222-3333-4444-555555555555")
    assert {k: card[k] for k in ("cardNumber", "points", "tier", "validUntil", "contactId")} == {
        "cardNumber": "C-0042", "points": 1200, "tier": "gold", "validUntil": "2027-06-30",
        "contactId": "6d81597f-0f9f-e711-8122-000d3aa2331c"}  # fmt: skip


def test_replay_with_open_dead_letters_writes_every_record_once(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(20)
    bad = stack.dv.create("contacts", {"firstname": "Y" * 45, "lastname": "TooLong"})  # firstName holds 30
    [first] = stack.run()
    assert first.counts["created"] == 20 and first.counts["dead_lettered"] == 1
    stack.dv.update("contacts", bad, {"firstname": "Fixed"})
    CheckpointStore(stack.svc.state.table("checkpoints")).request_reset("ingress", "contacts")
    stack.acs.clear_requests()
    [replay] = stack.run()
    assert replay.outcome == "completed", replay.reason
    writes = [r for r in stack.acs.requests() if r["method"] in ("POST", "PATCH") and "/ims/" not in r["path"]]
    assert sorted(r["method"] for r in writes) == ["PATCH"] * 20 + ["POST"]  # the fixed record once, not twice
    assert replay.counts["dead_letter_retries_ok"] == 1 and replay.counts["unchanged"] == 1


def test_a_record_campaign_keeps_failing_with_a_server_error_is_isolated_and_the_table_moves_on(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(30)
    stack.run()
    ids = [row["contactid"] for row in stack.dv.rows("contacts")[:5]]
    for n, contact in enumerate(ids):
        stack.dv.update("contacts", contact, {"lastname": f"Renamed{n}"})
    [victim] = stack.acs.find_rows("profile", externalId=ids[2])
    stack.acs.fail(500, method="PATCH", path=victim["PKey"], times=None)  # this record, always

    outcomes = [stack.run()[0] for _ in range(3)]
    assert [r.outcome for r in outcomes] == ["failed"] * 3  # the page is not checkpointed: nothing is lost
    [isolated] = stack.run()
    assert isolated.outcome == "completed", isolated.reason
    # The four others went through now, or in a failing run already (what finished is kept).
    assert isolated.counts.get("updated", 0) + isolated.counts.get("unchanged", 0) == 4
    assert isolated.counts["dead_lettered"] == 1
    assert any("one by one" in note for note in isolated.notes)
    from shared.state.deadletters import DeadLetterStore

    [letter] = DeadLetterStore(stack.svc.state.table("deadletters")).entries("ingress", "contacts")
    assert letter.record_id == ids[2] and "fails alone" in letter.reason and "500" in letter.reason
    assert sorted(r["lastName"] for r in stack.acs.rows("profile") if r["externalId"] in ids) == sorted(
        [f"Renamed{n}" for n in (0, 1, 3, 4)] + [victim["lastName"]])  # fmt: skip

    stack.acs.clear_faults()
    [healed] = stack.run()
    assert healed.counts["dead_letter_retries_ok"] == 1
    [profile] = stack.acs.find_rows("profile", externalId=ids[2])
    assert profile["lastName"] == "Renamed2"


def test_an_outage_is_not_mistaken_for_poison_records(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(contacts_only())
    stack.dv.seed_contacts(30)
    stack.run()
    for row in stack.dv.rows("contacts")[:10]:
        stack.dv.update("contacts", row["contactid"], {"lastname": "Changed"})
    stack.acs.fail(503, method="PATCH", path="/profile", times=None)  # Campaign refuses every write
    runs = [stack.run()[0] for _ in range(5)]
    assert [r.outcome for r in runs] == ["failed"] * 5
    from shared.state.deadletters import DeadLetterStore

    assert DeadLetterStore(stack.svc.state.table("deadletters")).entries() == []  # no record blamed
    stack.acs.clear_faults()
    [recovered] = stack.run()
    assert recovered.outcome == "completed" and recovered.counts["updated"] == 10

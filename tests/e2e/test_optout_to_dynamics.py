"""toDynamics and bidirectional end to end: Campaign's opt-out export file, written by the Campaign sandbox's
workflow to a real sshd, brings Campaign's opt-outs into Dynamics; in bidirectional mode the documented
conflict rule decides, and a change the connector wrote itself is not echoed back in either direction."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

from shared.flows.counts import Count
from tests.e2e import optout_harness
from tests.e2e.optout_harness import OptOutStack

optout_sftp_stack_factory = optout_harness.optout_sftp_stack_factory  # the fixture


def exported_files(stack: OptOutStack, folder: str) -> list[str]:
    assert stack.sftp_root is not None
    path = pathlib.Path(stack.sftp_root) / "d365_loads" / folder
    return sorted(p.name for p in path.glob("campaign_optouts_*.csv")) if path.exists() else []


def donot(stack: OptOutStack, contact: str, column: str = "donotbulkemail") -> bool:
    row = stack.dv.get("contacts", contact)
    assert row is not None
    return bool(row[column])


def test_to_dynamics_campaign_is_the_source_of_truth(optout_sftp_stack_factory: Callable[..., OptOutStack]) -> None:
    stack = optout_sftp_stack_factory("toDynamics")
    stack.dv.seed_contacts(6)
    stack.ingress()  # profiles without the opt-outs: the mapping does not carry them in this mode
    contacts = [r["contactid"] for r in stack.dv.rows("contacts")]
    first, gone = contacts[0], contacts[1]
    stack.acs.seed("profile", [{"email": "native@example.com"}])  # a profile that did not come from Dynamics
    stack.export()
    [summary] = stack.run("campaign-file")  # the first export lists every profile: Campaign's values win
    assert summary.outcome == "completed", summary.reason
    assert summary.counts[Count.OPTOUT_WITHOUT_EXTERNAL_ID] == 1
    for contact in contacts:
        profile = stack.profile(contact)
        assert (donot(stack, contact), donot(stack, contact, "donotphone")) == (
            profile["denyListEmail"], profile["denyListPhone"])  # fmt: skip
    assert exported_files(stack, "exports") == [] and len(exported_files(stack, "archive")) == 1

    stack.acs.unsubscribe(external_id=first)  # a Campaign user clicks the unsubscription link
    stack.dv.delete("contacts", gone)
    stack.acs.unsubscribe(external_id=gone)
    stack.export()
    [summary] = stack.run("campaign-file")
    assert summary.outcome == "completed", summary.reason
    assert donot(stack, first) is True
    assert summary.counts[Count.OPTOUT_TO_DYNAMICS] == 1 and summary.counts[Count.OPTOUT_CONTACT_MISSING] == 1
    assert stack.dv.get("contacts", gone) is None  # never created by the PATCH (If-Match: *)
    latest = stack.history(first)[0]
    assert (latest.source, latest.attribute, latest.verdict, latest.value) == ("file", "denyListEmail",
                                                                               "write Dynamics", True)  # fmt: skip
    [again] = stack.run("campaign-file")  # the files are archived: nothing to read
    assert again.counts.get(Count.READ, 0) == 0 and again.outcome == "completed"


def test_bidirectional_conflicts_follow_the_rule_and_nothing_echoes(
    optout_sftp_stack_factory: Callable[..., OptOutStack],
) -> None:
    stack = optout_sftp_stack_factory("bidirectional")
    stack.dv.seed_contacts(5)
    contacts = [r["contactid"] for r in stack.dv.rows("contacts")]
    for contact in contacts:
        stack.dv.update("contacts", contact, {"donotbulkemail": False, "donotphone": False})
    stack.ingress()
    stack.register_webhook()
    stack.export()
    stack.run("campaign-file")  # the first export: everything agrees already
    unsubscribed, resubscribed, reopened = contacts[0], contacts[1], contacts[2]

    # Campaign -> Dynamics, and the webhook Dataverse fires for the connector's own write is not sent back.
    stack.dv.advance_clock(2)
    stack.acs.advance_clock(2)
    stack.acs.unsubscribe(external_id=unsubscribed)
    stack.export()
    stack.acs.clear_requests()
    [summary] = stack.run("campaign-file")
    assert summary.outcome == "completed", summary.reason
    assert donot(stack, unsubscribed) is True
    stack.deliver()
    assert stack.acs.requests(method="PATCH") == []
    assert stack.history(unsubscribed)[0].rule == "written by the connector itself"

    # Dynamics -> Campaign: a Dynamics user opts out; Dynamics is newer, TRUE wins.
    stack.dv.advance_clock(2)
    stack.dv.update("contacts", resubscribed, {"donotbulkemail": True})
    stack.deliver()
    assert stack.profile(resubscribed)["denyListEmail"] is True

    # Campaign newer: a Campaign user opts back in after that; Campaign's value wins, in Dynamics too.
    stack.dv.advance_clock(2)
    stack.acs.advance_clock(4)
    stack.acs.unsubscribe(external_id=resubscribed, changes={"denyListEmail": False})
    stack.export()
    stack.run("campaign-file")
    assert donot(stack, resubscribed) is False
    [entry] = [e for e in stack.history(resubscribed) if e.source == "file"][:1]
    assert (entry.rule, entry.winner, entry.value) == ("bidirectional: Campaign newer, Campaign's value wins",
                                                       "campaign", False)  # fmt: skip

    # Dynamics newer: Campaign opted out at t, then a Dynamics user sets the contact's e-mail opt-out to false at
    # t + 2 (it was false: Dataverse still fires, the request set the column): opt-out TRUE wins on both sides.
    stack.acs.unsubscribe(external_id=reopened)
    stack.dv.advance_clock(2)
    stack.acs.advance_clock(2)
    stack.dv.update("contacts", reopened, {"donotbulkemail": False})
    stack.deliver()
    assert stack.profile(reopened)["denyListEmail"] is True
    assert donot(stack, reopened) is True  # set back in Dynamics, and audited as such
    entry = next(e for e in stack.history(reopened) if e.source == "webhook" and e.rule.startswith("bidirectional"))
    assert (entry.rule, entry.verdict, entry.value) == ("bidirectional: Dynamics newer or equal, opt-out TRUE wins",
                                                        "write Dynamics", True)  # fmt: skip
    stack.acs.clear_requests()
    stack.deliver()  # the webhook of the connector's own write back into Dynamics: nothing more
    assert stack.acs.requests(method="PATCH") == []

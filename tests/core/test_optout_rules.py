"""The opt-out core: the bidirectional conflict rule (table-driven, equal times included), the newest-applied
ordering that makes duplicated and reordered deliveries converge, and the decisions of each direction."""

from __future__ import annotations

import pytest

from shared.core.optout import (
    AppliedState,
    Mark,
    Rule,
    Side,
    Verdict,
    Winner,
    conflict_rule,
    decide_to_campaign,
    decide_to_dynamics,
    effective_time,
    file_boolean,
    file_seconds,
    iso_seconds,
    row_mark,
)

T = 1_800_000_000.0  # a fixed moment

# (Dynamics value, Dynamics time, Campaign value, Campaign time) -> (value, winner, rule). Adobe's rule: Campaign
# newer -> Campaign's value wins; Dynamics newer or equal -> opt-out TRUE wins.
CONFLICTS = [
    (True, T, True, T, True, "agree", Rule.SAME_VALUE),
    (False, T, False, T + 5, False, "agree", Rule.SAME_VALUE),
    (True, T, False, T + 1, False, "campaign", Rule.CAMPAIGN_NEWER),  # Campaign newer: its opt-in wins
    (False, T, True, T + 1, True, "campaign", Rule.CAMPAIGN_NEWER),
    (True, T + 1, False, T, True, "dynamics", Rule.OPT_OUT_WINS),  # Dynamics newer: TRUE
    (False, T + 1, True, T, True, "campaign", Rule.OPT_OUT_WINS),  # Dynamics newer, but TRUE wins: Campaign's
    (True, T, False, T, True, "dynamics", Rule.OPT_OUT_WINS),  # equal times: TRUE wins
    (False, T, True, T, True, "campaign", Rule.OPT_OUT_WINS),  # equal times: TRUE wins
    (False, T + 0.5, True, T, True, "campaign", Rule.OPT_OUT_WINS),
    (True, T, False, T + 0.001, False, "campaign", Rule.CAMPAIGN_NEWER),  # strictly newer is enough
]


@pytest.mark.parametrize(("d_value", "d_time", "c_value", "c_time", "value", "winner", "rule"), CONFLICTS)
def test_conflict_rule(d_value: bool, d_time: float, c_value: bool, c_time: float, value: bool, winner: str,
                       rule: Rule) -> None:  # fmt: skip
    resolution = conflict_rule(Side(d_value, d_time), Side(c_value, c_time))
    assert (resolution.value, str(resolution.winner), resolution.rule) == (value, winner, rule)


def test_marks_order_by_modifiedon_then_version() -> None:
    assert Mark(T, 5).newer_than(None)
    assert Mark(T + 1, 1).newer_than(Mark(T, 99))
    assert Mark(T, 6).newer_than(Mark(T, 5))  # same second: the version decides
    assert not Mark(T, 5).newer_than(Mark(T, 5))
    assert not Mark(T, 4).newer_than(Mark(T, 5))
    assert Mark(T, 5).same_as(Mark(T, 5)) and not Mark(T, 5).same_as(None)


def applied(value: bool, mark: Mark, origin: float | None = None, source: str = "webhook") -> AppliedState:
    return AppliedState(value, mark, mark.modifiedon if origin is None else origin, source)


# (value, mark, applied) -> (verdict, rule) in toCampaign mode
TO_CAMPAIGN = [
    (True, Mark(T, 10), None, Verdict.WRITE_CAMPAIGN, Rule.DYNAMICS_SOURCE),
    (True, Mark(T, 11), applied(False, Mark(T, 10)), Verdict.WRITE_CAMPAIGN, Rule.DYNAMICS_SOURCE),
    (True, Mark(T, 10), applied(True, Mark(T, 10)), Verdict.SKIP, Rule.DUPLICATE),  # redelivery
    (False, Mark(T, 9), applied(True, Mark(T, 10)), Verdict.SKIP, Rule.OLDER),  # reordered: an older change
    (False, Mark(T - 1, 99), applied(True, Mark(T, 10)), Verdict.SKIP, Rule.OLDER),
    (True, Mark(T + 3, 12), applied(True, Mark(T, 10)), Verdict.REMEMBER, Rule.ALREADY_IN_STEP),
]


@pytest.mark.parametrize(("value", "mark", "state", "verdict", "rule"), TO_CAMPAIGN)
def test_to_campaign_decisions(value: bool, mark: Mark, state: AppliedState | None, verdict: Verdict,
                               rule: Rule) -> None:  # fmt: skip
    decision = decide_to_campaign("denyListEmail", value, mark, state)
    assert (decision.verdict, decision.rule) == (verdict, rule)


def test_duplicated_and_reordered_deliveries_converge_to_the_newest() -> None:
    """An independent model: applying every permutation of three changes (with a duplicate) ends on the newest."""
    import itertools

    changes = [(Mark(T, 1), True), (Mark(T, 2), False), (Mark(T + 1, 3), True), (Mark(T, 2), False)]
    for order in itertools.permutations(changes):
        state: AppliedState | None = None
        campaign: bool | None = None
        for mark, value in order:
            decision = decide_to_campaign("denyListEmail", value, mark, state)
            if decision.verdict is Verdict.WRITE_CAMPAIGN:
                campaign = decision.value
            state = decision.applied_state("webhook") or state
        assert (campaign, state and state.mark) == (True, Mark(T + 1, 3)), order


def test_bidirectional_to_campaign_uses_the_rule_and_the_connector_own_write_is_no_newer_change() -> None:
    # Campaign holds the value the connector wrote at T (its lastModified moved to T+30 with that write): the
    # Dynamics change at T+10 is newer than the value's origin, so it is written (no false "Campaign newer").
    state = applied(False, Mark(T, 1))
    decision = decide_to_campaign("denyListEmail", True, Mark(T + 10, 2), state, campaign=Side(False, T + 30))
    assert (decision.verdict, decision.rule, decision.value) == (Verdict.WRITE_CAMPAIGN, Rule.OPT_OUT_WINS, True)
    # A Campaign user changed it (value differs from the applied one) after the Dynamics change: Campaign wins,
    # and Dynamics gets Campaign's value.
    decision = decide_to_campaign("denyListEmail", True, Mark(T + 10, 2), applied(True, Mark(T, 1)),
                                  campaign=Side(False, T + 30))  # fmt: skip
    assert (decision.verdict, decision.rule, decision.value, decision.winner) == (
        Verdict.WRITE_DYNAMICS, Rule.CAMPAIGN_NEWER, False, Winner.CAMPAIGN)  # fmt: skip
    # Dynamics opts back in after a Campaign opt-out: TRUE wins, Dynamics is set back.
    decision = decide_to_campaign("denyListEmail", False, Mark(T + 60, 3), applied(False, Mark(T, 1)),
                                  campaign=Side(True, T + 30))  # fmt: skip
    assert (decision.verdict, decision.value, decision.rule) == (Verdict.WRITE_DYNAMICS, True, Rule.OPT_OUT_WINS)
    # Both already agree: nothing to write, the position is remembered.
    decision = decide_to_campaign("denyListEmail", True, Mark(T + 60, 3), None, campaign=Side(True, T))
    assert (decision.verdict, decision.rule) == (Verdict.REMEMBER, Rule.SAME_VALUE)


FILE_CASES = [
    # campaign side, dynamics value, applied, bidirectional -> verdict, value, rule
    (Side(True, T + 5), False, None, False, Verdict.WRITE_DYNAMICS, True, Rule.CAMPAIGN_SOURCE),
    (Side(False, T - 5), True, None, False, Verdict.WRITE_DYNAMICS, False, Rule.CAMPAIGN_SOURCE),  # toDynamics
    (Side(True, T + 5), True, None, True, Verdict.REMEMBER, True, Rule.SAME_VALUE),
    (Side(True, T + 5), True, applied(True, Mark(T, 7), source="file"), True, Verdict.SKIP, True, Rule.SAME_VALUE),
    (Side(True, T + 5), False, None, True, Verdict.WRITE_DYNAMICS, True, Rule.CAMPAIGN_NEWER),
    (Side(False, T + 5), True, None, True, Verdict.WRITE_DYNAMICS, False, Rule.CAMPAIGN_NEWER),
    (Side(False, T), True, None, True, Verdict.WRITE_CAMPAIGN, True, Rule.OPT_OUT_WINS),  # equal: TRUE wins
    (Side(True, T), False, None, True, Verdict.WRITE_DYNAMICS, True, Rule.OPT_OUT_WINS),
    (Side(False, T - 5), True, None, True, Verdict.WRITE_CAMPAIGN, True, Rule.OPT_OUT_WINS),
    # The file's row predates the connector's own write of Dynamics' TRUE into Campaign: nothing to do.
    (Side(False, T - 5), True, applied(True, Mark(T, 7)), True, Verdict.SKIP, True, Rule.OPT_OUT_WINS),
]


@pytest.mark.parametrize(("campaign", "dynamics", "state", "bidirectional", "verdict", "value", "rule"), FILE_CASES)
def test_to_dynamics_decisions(campaign: Side, dynamics: bool, state: AppliedState | None, bidirectional: bool,
                               verdict: Verdict, value: bool, rule: Rule) -> None:  # fmt: skip
    decision = decide_to_dynamics("denyListEmail", campaign, dynamics, Mark(T, 7), state, bidirectional=bidirectional)
    assert (decision.verdict, decision.value, decision.rule) == (verdict, value, rule)


def test_a_value_the_connector_synced_counts_with_its_origin_time() -> None:
    state = AppliedState(True, Mark(T, 1), T - 100, "file")
    assert effective_time(True, T + 50, state) == T - 100
    assert effective_time(False, T + 50, state) == T + 50
    assert effective_time(True, T + 50, None) == T + 50


def test_applied_state_after_a_decision() -> None:
    decision = decide_to_campaign("denyListEmail", True, Mark(T, 4), None)
    assert decision.applied_state("ingress") == AppliedState(True, Mark(T, 4), T, "ingress")
    won = decide_to_dynamics("denyListEmail", Side(True, T + 9), False, Mark(T, 4), None, bidirectional=True)
    after = Mark(T + 20, 8)  # the row after the connector's PATCH
    assert won.applied_state("file", mark=after) == AppliedState(True, after, T + 9, "file")
    assert decide_to_campaign("denyListEmail", True, Mark(T, 4), won.applied_state("file")).verdict is Verdict.SKIP


def test_times_and_cells() -> None:
    assert iso_seconds("2019-09-25 23:20:35.000Z") == 1569453635.0
    assert iso_seconds("2019-09-25T23:20:35Z") == 1569453635.0
    assert iso_seconds("") is None and iso_seconds(None) is None and iso_seconds("yesterday") is None
    assert file_seconds("2019/09/25 23:20:35") == 1569453635.0
    assert file_seconds("2019-09-25 23:20:35") is None
    assert [file_boolean(x) for x in ("1", "0", "true", "FALSE", "", "yes")] == [True, False, True, False, None, None]
    assert row_mark({"modifiedon": "2019-09-25T23:20:35Z", "versionnumber": 812}) == Mark(1569453635.0, 812)
    assert row_mark({"modifiedon": "2019-09-25T23:20:35Z", "versionnumber": "812"}) == Mark(1569453635.0, 812)
    assert row_mark({"modifiedon": "2019-09-25T23:20:35Z"}) is None
    assert row_mark({"versionnumber": 1}) is None

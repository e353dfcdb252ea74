"""Opt-out decisions without I/O: how Dynamics changes are ordered, the bidirectional conflict rule, and
what one attribute's new value does given what the connector last made both sides agree on.

Vocabulary
- A *mark* orders the changes of one Dynamics contact: its `modifiedon` (seconds), then its row version.
- The *applied state* of a contact and attribute is the last value the connector made Campaign and Dynamics
  agree on, with the mark of the Dynamics row it belongs to and the time of the change it came from (its
  origin: a Dynamics `modifiedon`, or Campaign's `lastModified` when it came from the export file).
- The *conflict rule* (Adobe's, for bidirectional sync): Campaign newer: Campaign's value wins. Dynamics
  newer or equal: opt-out TRUE wins.

A side holding the value the connector itself synced last has not changed it since: its time for the rule is
that value's origin, not the record's modification time, which every write of the connector moves. That is
how a change the connector wrote is never taken for a newer change of the side it wrote to (no echo).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from shared.core.parse import parse_datetime

WEBHOOK, INGRESS, FILE = "webhook", "ingress", "file"  # where a decision was taken (audit `source`)


@dataclasses.dataclass(frozen=True)
class Mark:
    """Position of a Dynamics row state: modifiedon (epoch seconds, Dataverse keeps whole seconds), then version."""

    modifiedon: float
    version: int

    def newer_than(self, other: Mark | None) -> bool:
        return other is None or (self.modifiedon, self.version) > (other.modifiedon, other.version)

    def same_as(self, other: Mark | None) -> bool:
        return other is not None and (self.modifiedon, self.version) == (other.modifiedon, other.version)


@dataclasses.dataclass(frozen=True)
class AppliedState:
    """What the connector last made both sides agree on for one contact and attribute."""

    value: bool
    mark: Mark  # the Dynamics row state holding this value
    origin_time: float  # when the value was set on the side it came from
    source: str  # webhook | ingress | file


@dataclasses.dataclass(frozen=True)
class Side:
    """One side's value of an attribute and the time it was set there (epoch seconds)."""

    value: bool
    time: float


class Winner(enum.StrEnum):
    DYNAMICS = "dynamics"
    CAMPAIGN = "campaign"
    AGREE = "agree"  # both sides hold the same value


class Rule(enum.StrEnum):
    SAME_VALUE = "same value on both sides"
    CAMPAIGN_NEWER = "bidirectional: Campaign newer, Campaign's value wins"
    OPT_OUT_WINS = "bidirectional: Dynamics newer or equal, opt-out TRUE wins"
    DYNAMICS_SOURCE = "toCampaign: Dynamics is the source of truth"
    CREATED = "profile created by ingress with Dynamics' value"
    CAMPAIGN_SOURCE = "toDynamics: Campaign is the source of truth"
    OLDER = "older than the change already applied"
    DUPLICATE = "the change already applied (redelivery)"
    ALREADY_IN_STEP = "value already applied; newer position remembered"
    ECHO = "written by the connector itself"
    NO_PROFILE = "no Campaign profile yet: ingress carries the value when it creates it"
    CONTACT_GONE = "the Dynamics contact no longer exists"


@dataclasses.dataclass(frozen=True)
class Resolution:
    value: bool
    winner: Winner
    rule: Rule


def conflict_rule(dynamics: Side, campaign: Side) -> Resolution:
    """Adobe's bidirectional rule. Campaign strictly newer: Campaign's value; otherwise opt-out TRUE wins."""
    if dynamics.value == campaign.value:
        return Resolution(dynamics.value, Winner.AGREE, Rule.SAME_VALUE)
    if campaign.time > dynamics.time:
        return Resolution(campaign.value, Winner.CAMPAIGN, Rule.CAMPAIGN_NEWER)
    winner = Winner.DYNAMICS if dynamics.value else Winner.CAMPAIGN
    return Resolution(True, winner, Rule.OPT_OUT_WINS)


def effective_time(value: bool, changed_at: float, applied: AppliedState | None) -> float:
    """The time a side's value counts with in the conflict rule: the origin of the value the connector last
    synced when the side still holds it (it did not change since; the connector's own write moved its record
    time), else when the side's record changed."""
    if applied is not None and applied.value == value:
        return applied.origin_time
    return changed_at


# ------------------------------------------------------------------ Dynamics -> Campaign (webhook, ingress)


class Verdict(enum.StrEnum):
    WRITE_CAMPAIGN = "write Campaign"
    WRITE_DYNAMICS = "write Dynamics"  # Campaign won a conflict: Dynamics gets Campaign's value
    REMEMBER = "remember"  # nothing to write, the applied state moves on
    SKIP = "skip"  # nothing to write, nothing to remember


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with one attribute of one contact, and why (the audit row is made from it)."""

    attribute: str  # Campaign attribute, denyList* spelling
    verdict: Verdict
    value: bool  # the value the attribute ends with on both sides (the winner)
    rule: Rule
    winner: Winner
    dynamics: Side
    campaign: Side | None  # None when Campaign's value was not read (toCampaign)
    mark: Mark  # the Dynamics row state the decision is about

    @property
    def writes(self) -> bool:
        return self.verdict in (Verdict.WRITE_CAMPAIGN, Verdict.WRITE_DYNAMICS)

    def applied_state(self, source: str, *, mark: Mark | None = None) -> AppliedState | None:
        """The applied state after this decision is carried out (None: unchanged). `mark` is the row state
        after a write into Dynamics."""
        if self.verdict is Verdict.SKIP:
            return None
        origin = self.campaign.time if self.winner is Winner.CAMPAIGN and self.campaign else self.dynamics.time
        return AppliedState(self.value, mark or self.mark, origin, source)


def decide_to_campaign(
    attribute: str, value: bool, mark: Mark, applied: AppliedState | None, *, campaign: Side | None = None
) -> Decision:
    """A Dynamics value (`value` at `mark`) for Campaign. `campaign` is Campaign's current value and
    lastModified in bidirectional mode (None in toCampaign mode: Dynamics is the source of truth)."""
    dynamics = Side(value, mark.modifiedon)

    def decision(verdict: Verdict, result: bool, rule: Rule, winner: Winner) -> Decision:
        return Decision(attribute, verdict, result, rule, winner, dynamics, campaign, mark)

    if applied is not None and not mark.newer_than(applied.mark):
        rule = Rule.DUPLICATE if mark.same_as(applied.mark) else Rule.OLDER
        return decision(Verdict.SKIP, applied.value, rule, Winner.AGREE if applied.value == value else Winner.CAMPAIGN)
    if campaign is None:
        if applied is not None and applied.value == value:
            return decision(Verdict.REMEMBER, value, Rule.ALREADY_IN_STEP, Winner.AGREE)
        return decision(Verdict.WRITE_CAMPAIGN, value, Rule.DYNAMICS_SOURCE, Winner.DYNAMICS)
    resolution = conflict_rule(dynamics, Side(campaign.value, effective_time(campaign.value, campaign.time, applied)))
    if resolution.winner is Winner.AGREE:
        return decision(Verdict.REMEMBER, value, resolution.rule, Winner.AGREE)
    if resolution.value == value:
        return decision(Verdict.WRITE_CAMPAIGN, value, resolution.rule, Winner.DYNAMICS)
    return decision(Verdict.WRITE_DYNAMICS, resolution.value, resolution.rule, Winner.CAMPAIGN)


# ------------------------------------------------------------------ Campaign -> Dynamics (export file)


def decide_to_dynamics(
    attribute: str, campaign: Side, dynamics_value: bool, mark: Mark, applied: AppliedState | None, *,
    bidirectional: bool,
) -> Decision:  # fmt: skip
    """A Campaign value from the export file for a Dynamics contact whose row is at `mark`."""
    dynamics = Side(dynamics_value, mark.modifiedon)

    def decision(verdict: Verdict, result: bool, rule: Rule, winner: Winner) -> Decision:
        return Decision(attribute, verdict, result, rule, winner, dynamics, campaign, mark)

    if dynamics_value == campaign.value:
        in_step = applied is not None and applied.value == campaign.value and not mark.newer_than(applied.mark)
        return decision(Verdict.SKIP if in_step else Verdict.REMEMBER, campaign.value, Rule.SAME_VALUE, Winner.AGREE)
    if not bidirectional:
        return decision(Verdict.WRITE_DYNAMICS, campaign.value, Rule.CAMPAIGN_SOURCE, Winner.CAMPAIGN)
    resolution = conflict_rule(
        Side(dynamics_value, effective_time(dynamics_value, mark.modifiedon, applied)),
        Side(campaign.value, effective_time(campaign.value, campaign.time, applied)),
    )
    if resolution.value == campaign.value:
        return decision(Verdict.WRITE_DYNAMICS, campaign.value, resolution.rule, Winner.CAMPAIGN)
    if applied is not None and applied.value == dynamics_value:
        # Dynamics' value is the one the connector already wrote into Campaign: the file's row predates it.
        return decision(Verdict.SKIP, dynamics_value, resolution.rule, Winner.DYNAMICS)
    return decision(Verdict.WRITE_CAMPAIGN, resolution.value, resolution.rule, Winner.DYNAMICS)


# ------------------------------------------------------------------ reading times


def iso_seconds(text: Any) -> float | None:
    """ISO 8601 as epoch seconds: Dataverse `modifiedon`, Campaign `lastModified` ("2019-09-25 23:20:35.000Z")."""
    moment = parse_datetime(text) if isinstance(text, str) and text else None
    return moment.timestamp() if moment else None


def row_mark(row: Mapping[str, Any]) -> Mark | None:
    """A Dataverse row's position from its `modifiedon` and `versionnumber`, None without both."""
    modifiedon = iso_seconds(row.get("modifiedon"))
    version = row.get("versionnumber")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if modifiedon is None or not isinstance(version, int) or isinstance(version, bool):
        return None
    return Mark(modifiedon, version)


def file_seconds(text: str) -> float | None:
    """The export file's `lastModified`, `YYYY/MM/DD HH:MM:SS` in UTC (docs/campaign-optout-export.md)."""
    try:
        moment = dt.datetime.strptime(text.strip(), "%Y/%m/%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=dt.UTC).timestamp()


def file_boolean(text: str) -> bool | None:
    """A boolean cell of the export file: 1/0 (true/false accepted)."""
    return {"1": True, "0": False, "true": True, "false": False}.get(text.strip().lower())

"""Carrying out opt-out decisions for one contact, the same way for every path (webhook, ingress, file).

The configured pairs are resolved against both instances first (a Dynamics column that is not a Boolean, a
Campaign attribute that is not a factory opt-out: a configuration error naming the pair). Then, per contact:
read the newest-applied record -> decide per attribute (shared/core/optout.py) -> write Campaign and/or
Dynamics -> save the record with the ETag read -> audit. A save that meets a changed record means another
writer (the other path, or a concurrent delivery) wrote this contact meanwhile, in an order we cannot know:
the decisions are taken again on the fresh record, and whatever this call wrote into Campaign that the record
now contradicts is written again with the record's value, until a save goes through unchallenged. So the
value Campaign ends with is always the newest one, whichever writer finished last.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.clients.campaign import PROFILE_AND_SERVICES_EXT, CampaignClient, CampaignConfigError, KeyFilter, Record
from shared.clients.dataverse import DataverseClient
from shared.config.model import OptOutConfig, TableMapping, canonical_opt_out_field
from shared.core.optout import Decision, Mark, Rule, Side, Verdict, Winner, iso_seconds, row_mark
from shared.flows.counts import Count
from shared.http import ApiError, Outcome
from shared.state.index import RecordIndex
from shared.state.optout_applied import AppliedConflict, AppliedRecord, AppliedStore
from shared.state.optout_audit import AuditEntry, AuditLog

log = logging.getLogger("sync.optout")

CONTACT = "contact"
MAX_RECONCILE = 10  # saves that meet a changed record before giving up (the message is retried)


class OptOutConfigError(Exception):
    """The opt-out pairs do not fit the instances: nothing is written."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("optOut.pairs do not fit the instances: " + "; ".join(self.problems))


@dataclasses.dataclass(frozen=True)
class ResolvedPair:
    dynamics: str  # contact Boolean column
    attribute: str  # Campaign attribute, denyList* spelling (state and audit key)
    campaign: str  # the same attribute in the instance's own spelling (what is written)


@dataclasses.dataclass(frozen=True)
class Pairs:
    items: tuple[ResolvedPair, ...]

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(p.dynamics for p in self.items)

    def by_column(self, column: str) -> ResolvedPair | None:
        return next((p for p in self.items if p.dynamics == column), None)

    def by_attribute(self, attribute: str) -> ResolvedPair:
        return next(p for p in self.items if p.attribute == attribute)

    def campaign_payload(self, values: Mapping[str, bool]) -> dict[str, bool]:
        """attribute (denyList*) -> value, under the instance's attribute names."""
        return {self.by_attribute(attribute).campaign: value for attribute, value in values.items()}


def resolve_pairs(config: OptOutConfig, dataverse: DataverseClient, campaign: CampaignClient) -> Pairs:
    """Each pair checked against Dataverse metadata (a Boolean column of contact) and Campaign's profile
    resource (a factory opt-out attribute, in the instance's spelling); every problem reported together."""
    attributes = dataverse.entity_definition(CONTACT).attributes
    profile = campaign.resource_type("profile", root=PROFILE_AND_SERVICES_EXT)
    problems: list[str] = []
    resolved: list[ResolvedPair] = []
    for index, pair in enumerate(config.pairs):
        where = f"optOut.pairs[{index}] ({pair.dynamics} <-> {pair.campaign})"
        kind = attributes.get(pair.dynamics)
        if kind is None:
            problems.append(f"{where}: contact has no column '{pair.dynamics}'")
        elif kind != "Boolean":
            problems.append(f"{where}: Dynamics column '{pair.dynamics}' is {kind}, not a Boolean")
        try:
            name = campaign.resolve_optout_attribute(pair.campaign)
        except CampaignConfigError:
            problems.append(f"{where}: the Campaign profile has no attribute '{pair.campaign}' (in either spelling)")
            continue
        detail = profile.details.get(name)
        if detail is not None and detail.res_type != "boolean":
            problems.append(f"{where}: Campaign attribute '{name}' is {detail.res_type}, not a boolean")
        resolved.append(ResolvedPair(pair.dynamics, canonical_opt_out_field(pair.campaign), name))
    if problems:
        raise OptOutConfigError(problems)
    return Pairs(tuple(resolved))


def campaign_side(body: Mapping[str, Any], pair: ResolvedPair) -> Side:
    """Campaign's current value of a pair's attribute and the profile's lastModified (Campaign exposes no
    per-attribute time through its API [U])."""
    return Side(bool(body.get(pair.campaign)), iso_seconds(body.get("lastModified")) or 0.0)


class Profiles:
    """The Campaign profile of a contact: found through ingress's index (its href), else by externalId.

    Opt-out paths only ever PATCH a profile that exists: a profile is created by ingress, with every mapped
    field, never by an opt-out alone (a contact ingress filters out must not appear in Campaign)."""

    def __init__(self, campaign: CampaignClient, contacts: TableMapping, index: RecordIndex) -> None:
        self.resource = campaign.resource(contacts.resource, root=PROFILE_AND_SERVICES_EXT)
        self.key = KeyFilter(contacts.lookup_filter, contacts.lookup_parameter)
        self.table = contacts.name
        self.index = index

    def known_href(self, contact: str) -> str | None:
        entry = self.index.get(self.table, contact)
        return entry.href if entry is not None else None

    def read(self, contact: str, href: str | None = None) -> Record | None:
        href = href or self.known_href(contact)
        if href is not None:
            try:
                return self.resource.get(href)
            except ApiError as exc:
                if exc.status != 404:
                    raise
        found = self.resource.find_by(self.key.filter, self.key.parameter, contact)
        return found[0] if found else None

    def patch(self, contact: str, values: Mapping[str, bool], href: str | None = None) -> str | None:
        """PATCH the contact's profile; returns its href, None when there is no profile."""
        href = href or self.known_href(contact)
        if href is not None:
            try:
                return self.resource.patch(href, dict(values)).href or href
            except ApiError as exc:
                if exc.status != 404:
                    raise
        found = self.resource.find_href(self.key, contact)
        if found is None:
            return None
        return self.resource.patch(found, dict(values)).href or found


@dataclasses.dataclass
class ContactResult:
    decisions: list[Decision]
    counts: collections.Counter[str]
    href: str | None = None


Decide = Callable[[AppliedRecord], list[Decision]]


class OptOutWriter:
    def __init__(
        self, *, pairs: Pairs, profiles: Profiles, dataverse: DataverseClient, contacts_set: str,
        applied: AppliedStore, audit: AuditLog, clock: Callable[[], float] = time.time, dry_run: bool = False,
    ) -> None:  # fmt: skip
        self.pairs = pairs
        self.profiles = profiles
        self.dataverse = dataverse
        self.contacts_set = contacts_set
        self.applied = applied
        self.audit = audit
        self.clock = clock
        self.dry_run = dry_run

    @property
    def contact_columns(self) -> list[str]:
        return ["contactid", "modifiedon", "versionnumber", *sorted(self.pairs.columns)]

    def read_contact(self, contact: str) -> dict[str, Any] | None:
        return self.dataverse.retrieve(self.contacts_set, contact, self.contact_columns)

    def write_dynamics(self, contact: str, values: Mapping[str, bool]) -> Mark | None:
        """PATCH the contact (never creating it); the row's position after the write, None if it is gone."""
        body = {self.pairs.by_attribute(attribute).dynamics: value for attribute, value in values.items()}
        row = self.dataverse.update_returning(self.contacts_set, contact, body, ["contactid", "modifiedon",
                                                                                 "versionnumber"])  # fmt: skip
        if row is None:
            return None
        mark = row_mark(row)
        if mark is None:
            raise ApiError(Outcome.FATAL, 200, "Dataverse answered an update without modifiedon/versionnumber",
                           method="PATCH", url=self.contacts_set)  # fmt: skip
        return mark

    def carry_out(
        self, contact: str, decide: Decide, *, source: str, record: AppliedRecord | None = None,
        written: Mapping[str, bool] | None = None, href: str | None = None, note: str = "",
        audit_all: bool = True,
    ) -> ContactResult:  # fmt: skip
        """Decide on the newest-applied record, write, save with its ETag; on a conflict decide again on the
        fresh record and repair what this call wrote (see the module doc). `written` is what the caller
        already wrote into Campaign for this contact before (ingress's own upsert)."""
        record = record if record is not None else self.applied.get(contact)
        wrote: dict[str, bool] = dict(written or {})
        counts: collections.Counter[str] = collections.Counter()
        decisions: list[Decision] = []
        for attempt in range(MAX_RECONCILE):
            decisions = decide(record)
            to_campaign = {d.attribute: d.value for d in decisions if d.verdict is Verdict.WRITE_CAMPAIGN}
            if attempt == 0:  # the caller's own write already carried these (after a conflict they go again)
                to_campaign = {a: v for a, v in to_campaign.items() if wrote.get(a) != v}
            for attribute, value in wrote.items():  # a racing writer's newer value wins over ours: restore it
                state = record.get(attribute)
                if attribute not in to_campaign and state is not None and state.value != value:
                    to_campaign[attribute] = state.value
            to_dynamics = {d.attribute: d.value for d in decisions if d.verdict is Verdict.WRITE_DYNAMICS}
            if self.dry_run:
                break
            if to_campaign:
                href = self.profiles.patch(contact, self.pairs.campaign_payload(to_campaign), href)
                if href is None:
                    decisions = _skipped(decisions, Verdict.WRITE_CAMPAIGN, Rule.NO_PROFILE)
                    counts[Count.OPTOUT_NO_PROFILE] += 1
                else:
                    wrote.update(to_campaign)
            after: Mark | None = None
            if to_dynamics:
                after = self.write_dynamics(contact, to_dynamics)
                if after is None:
                    decisions = _skipped(decisions, Verdict.WRITE_DYNAMICS, Rule.CONTACT_GONE)
                    counts[Count.OPTOUT_CONTACT_MISSING] += 1
            changes = {}
            for d in decisions:
                state = d.applied_state(source, mark=after if d.verdict is Verdict.WRITE_DYNAMICS else None)
                if state is not None:
                    changes[d.attribute] = state
            if not changes and not to_campaign and not to_dynamics:
                break
            try:
                self.applied.save(record, changes)
                break
            except AppliedConflict:
                log.info("optout.reconcile contact=%s source=%s", contact, source)
                record = self.applied.get(contact)
        else:
            raise ApiError(Outcome.RETRY, 409, f"opt-out record of {contact} kept changing under us",
                           method="PUT", url="optoutapplied")  # fmt: skip
        counts.update(name for d in decisions if (name := count_of(d)))
        counts.update(Count.OPTOUT_RULE_DECIDED for d in decisions if is_conflict(d))
        if not self.dry_run:
            self.audit.append(self.audit_entries(contact, decisions, source, note, audit_all=audit_all))
        return ContactResult(decisions, counts, href)

    def audit_entries(
        self, contact: str, decisions: Iterable[Decision], source: str, note: str = "", *, audit_all: bool = True
    ) -> list[AuditEntry]:
        """Audit rows of a contact's decisions. Paths that re-read opt-outs which did not change (ingress reading a
        row changed elsewhere, the daily file listing every modified profile) record only what acted or decided
        a conflict (`audit_all=False`); a webhook delivery is an event of its own and is always recorded."""
        now = self.clock()
        return [AuditEntry.of(contact, d, source, now, note) for d in decisions if audit_all or worth_auditing(d)]


def _skipped(decisions: list[Decision], verdict: Verdict, rule: Rule) -> list[Decision]:
    return [dataclasses.replace(d, verdict=Verdict.SKIP, rule=rule) if d.verdict is verdict else d for d in decisions]


def worth_auditing(decision: Decision) -> bool:
    return decision.writes or is_conflict(decision) or decision.rule in (Rule.NO_PROFILE, Rule.CONTACT_GONE)


def is_conflict(decision: Decision) -> bool:
    return decision.rule in (Rule.CAMPAIGN_NEWER, Rule.OPT_OUT_WINS) and decision.winner is not Winner.AGREE


def count_of(decision: Decision) -> str:
    """The count an attribute's decision goes under ("" for a contact-level outcome counted once)."""
    if decision.rule in (Rule.NO_PROFILE, Rule.CONTACT_GONE):
        return ""
    if decision.verdict is Verdict.WRITE_CAMPAIGN:
        return Count.OPTOUT_TO_CAMPAIGN
    if decision.verdict is Verdict.WRITE_DYNAMICS:
        return Count.OPTOUT_TO_DYNAMICS
    if decision.rule is Rule.OLDER:
        return Count.OPTOUT_OLDER
    if decision.rule is Rule.DUPLICATE:
        return Count.OPTOUT_DUPLICATE
    return Count.OPTOUT_IN_STEP

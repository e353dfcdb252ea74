"""Ingress as the opt-out safety net (modes toCampaign and bidirectional).

The contact mapping carries the mapped opt-outs, so ingress catches any change the webhook missed. It goes
through the same newest-applied record as the webhook path, so the two never write the same change twice:
- the index's payload hashes leave the opt-out attributes out (the newest-applied record tracks those), so a
  row whose only change is an opt-out the webhook already applied costs ingress nothing;
- per row, each opt-out attribute is decided against the record (older or equal: dropped from the payload;
  same value: only remembered; newer and different: written with the rest of the payload, or alone);
- a create carries every opt-out, with the newest value known;
- after the page's writes the records are saved in bulk with their ETags; a contact whose record changed
  meanwhile (a webhook for it landed in between) is reconciled on its own (shared/flows/optout_apply.py).
Reading the row's `modifiedon` and `versionnumber` gives its position; ingress adds them to its $select.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from shared.config.model import TableMapping
from shared.core.decisions import Decision as IngressDecision
from shared.core.decisions import Known, Skip, Write
from shared.core.optout import INGRESS, Decision, Mark, Rule, Side, Verdict, Winner, decide_to_campaign, row_mark
from shared.flows.optout_apply import OptOutWriter, Pairs, ResolvedPair, campaign_side
from shared.flows.optout_deps import TO_CAMPAIGN_MODES, OptOutDeps, optout_deps
from shared.state.optout_applied import AppliedRecord
from shared.state.optout_audit import AuditEntry

if TYPE_CHECKING:
    from shared.wiring import Services

log = logging.getLogger("sync.optout.ingress")

POSITION_COLUMNS = ("modifiedon", "versionnumber")
UNCHANGED = "unchanged"


@dataclasses.dataclass
class Pending:
    """One contact's opt-out decisions taken with its ingress write; saved once the page's writes are done."""

    contact: str
    record: AppliedRecord
    decisions: list[Decision]
    wrote: dict[str, bool]
    candidates: list[tuple[ResolvedPair, bool]]
    mark: Mark
    sides: dict[str, Side]
    href: str | None = None

    @property
    def changes(self) -> dict[str, Any]:
        out = {}
        for d in self.decisions:
            state = d.applied_state(INGRESS)
            if state is not None:
                out[d.attribute] = state
        return out


class IngressOptOuts:
    def __init__(self, deps: OptOutDeps, table: TableMapping) -> None:
        self.deps = deps
        self.table = table
        self.pairs: Pairs = deps.pairs()
        self.writer: OptOutWriter = deps.writer()
        self.bidirectional = deps.mode.value == "bidirectional"
        mapped = {f.source for f in table.fields}
        self.active = [p for p in self.pairs.items if p.dynamics in mapped]

    @property
    def hash_excluded(self) -> frozenset[str]:
        """Payload attributes (instance spelling) whose last written value the newest-applied record tracks."""
        return frozenset(p.campaign for p in self.active)

    def prepare(self, contacts: Iterable[str], synced: Container[str], *, parallel: int | None = None,
                read: Mapping[str, AppliedRecord] | None = None) -> dict[str, AppliedRecord]:  # fmt: skip
        """The page's records. Contacts Campaign does not have yet (not `synced`) are not read: an opt-out alone
        never creates a profile, so they have none (if one is there after all, its save conflicts and the
        contact is reconciled on its own). `read`: what `read` returned for all of them, before it was known
        which are synced."""
        ids = list(contacts)
        records = {contact: AppliedRecord(contact) for contact in ids if contact not in synced}
        wanted = [contact for contact in ids if contact in synced]
        if read is None:
            read = self.read(wanted, parallel=parallel)
        records.update({contact: read[contact] for contact in wanted})
        return records

    def read(self, contacts: Iterable[str], *, parallel: int | None = None) -> dict[str, AppliedRecord]:
        """The stored records of these contacts (an empty record for a contact without one)."""
        return self.deps.applied.get_many(contacts, parallel=parallel or self.deps.max_parallel)

    def adjust(
        self, contact: str, row: Mapping[str, Any], decision: IngressDecision, known: Known | None,
        record: AppliedRecord | None,
    ) -> tuple[IngressDecision, Pending | None]:  # fmt: skip
        """The ingress decision with its opt-out attributes decided against the newest-applied record."""
        creating = isinstance(decision, Write) and known is None
        known_href = known.href if known is not None else None
        if not (isinstance(decision, Write) or (isinstance(decision, Skip) and decision.count == UNCHANGED)):
            return decision, None  # filtered out, deleted...: not synced, nothing of its opt-outs either
        candidates = [(p, bool(row[p.dynamics])) for p in self.active if row.get(p.dynamics) is not None]
        if not candidates:
            return decision, None
        record = record if record is not None else self.deps.applied.get(contact)
        mark = row_mark(row)
        sides: dict[str, Side] = {}
        if mark is None:  # a read from a link older than the opt-out columns: fall back on values alone
            decisions = [_by_value(p, value, record) for p, value in candidates]
        else:
            if self.bidirectional and not creating and self._may_write(candidates, mark, record):
                profile = self.writer.profiles.read(contact, known_href)
                if profile is not None:
                    sides = {p.attribute: campaign_side(profile.body, p) for p, _ in candidates}
            decisions = [decide_to_campaign(p.attribute, value, mark, record.get(p.attribute),
                                            campaign=sides.get(p.attribute)) for p, value in candidates]  # fmt: skip
        if creating:
            decisions = [dataclasses.replace(d, rule=Rule.CREATED) if d.writes else d for d in decisions]
        wrote = {d.attribute: d.value for d in decisions if d.verdict is Verdict.WRITE_CAMPAIGN}
        names = {p.attribute: p.campaign for p, _ in candidates}
        if isinstance(decision, Write):
            payload = dict(decision.payload)
            for d in decisions:
                name = names[d.attribute]
                if name not in payload:
                    continue  # not carried by this read (apply-updates off)
                if creating:
                    payload[name] = d.value  # a new profile carries the newest value known
                    wrote[d.attribute] = d.value
                elif d.verdict is Verdict.WRITE_CAMPAIGN:
                    payload[name] = d.value
                else:
                    del payload[name]
            adjusted: IngressDecision = dataclasses.replace(decision, payload=payload)
        elif wrote and known is not None:  # only opt-outs changed: write them alone, the hashes stay as they are
            payload = {self.table.key_attribute: contact, **{names[a]: v for a, v in wrote.items()}}
            adjusted = Write(payload, known.hash_full, known.hash_updates, known.href)
        else:
            adjusted = decision
        pending = Pending(contact, record, decisions, wrote, candidates, mark or Mark(0.0, 0), sides)
        return adjusted, pending

    def _may_write(self, candidates: list[tuple[ResolvedPair, bool]], mark: Mark, record: AppliedRecord) -> bool:
        for pair, value in candidates:
            state = record.get(pair.attribute)
            if mark.newer_than(state.mark if state else None) and (state is None or state.value != value):
                return True
        return False

    def learn(self, pendings: list[Pending], *, parallel: int | None = None) -> None:
        """Save the page's records in bulk; audit; reconcile the contacts whose record changed meanwhile."""
        if not pendings:
            return
        by_contact = {p.contact: p for p in pendings}
        to_dynamics = [p for p in pendings if any(d.verdict is Verdict.WRITE_DYNAMICS for d in p.decisions)]
        simple = [p for p in pendings if p not in to_dynamics and (p.changes or p.wrote)]
        conflicts = set(self.deps.applied.save_many([(p.record, p.changes) for p in simple],
                                                    parallel=parallel or self.deps.max_parallel))  # fmt: skip
        entries: list[AuditEntry] = []
        for p in simple:
            if p.contact not in conflicts:
                entries += self.writer.audit_entries(p.contact, p.decisions, INGRESS, audit_all=False)
        self.deps.audit.append(entries)
        for contact in sorted(conflicts) + [p.contact for p in to_dynamics]:
            pending = by_contact[contact]
            self.writer.carry_out(contact, self._decide(pending), source=INGRESS, written=pending.wrote,
                                  href=pending.href, audit_all=False)  # fmt: skip

    def _decide(self, pending: Pending) -> Any:
        def decide(record: AppliedRecord) -> list[Decision]:
            return [
                decide_to_campaign(p.attribute, value, pending.mark, record.get(p.attribute),
                                   campaign=pending.sides.get(p.attribute))
                for p, value in pending.candidates
            ]  # fmt: skip

        return decide


def _by_value(pair: ResolvedPair, value: bool, record: AppliedRecord) -> Decision:
    """No row position: write when the value differs from the one applied (never remember a position)."""
    state = record.get(pair.attribute)
    mark = state.mark if state else Mark(0.0, 0)
    differs = state is None or state.value != value
    verdict = Verdict.WRITE_CAMPAIGN if differs else Verdict.SKIP
    rule = Rule.DYNAMICS_SOURCE if differs else Rule.DUPLICATE
    return Decision(pair.attribute, verdict, value, rule, Winner.DYNAMICS if differs else Winner.AGREE,
                    Side(value, mark.modifiedon), None, mark)  # fmt: skip


def ingress_hook(services: Services, table: TableMapping) -> IngressOptOuts | None:
    """The hook for the contact mapping when Dynamics opt-outs go to Campaign; None otherwise."""
    if not table.is_profile or services.config.opt_out.mode not in TO_CAMPAIGN_MODES:
        return None
    deps = optout_deps(services)
    if not {p.dynamics for p in deps.config.pairs} & {f.source for f in table.fields}:
        return None
    return IngressOptOuts(deps, table)

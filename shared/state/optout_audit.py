"""The opt-out audit: every decision taken for a contact's opt-out attributes, so "why is this contact opted
out?" has an answer (`python -m shared.cli optout why CONTACT_ID`).

Per decision: contact id, attribute, the path (webhook, ingress, file), what was done, the rule, the winner, the
resulting value, both sides' values and times, the Dynamics row version. No names, no e-mail addresses. One row
holds the decisions one path took for one contact at one moment (PartitionKey `optout`, RowKey
`<contact>~<reverse time>~<n>`): a contact's history is a RowKey range, newest first; a page's rows are written in
transactions of 100, several at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from azure.data.tables import TableClient

from shared.core.optout import Decision
from shared.state.keys import reverse_ticks, safe_key
from shared.state.transactions import in_transactions, submit_transaction

PARTITION = "optout"
_PARALLEL = 8
_counter = itertools.count()
_PER_DECISION = ("attribute", "verdict", "rule", "winner", "value", "dynamics_value", "dynamics_time",
                 "campaign_value", "campaign_time", "version")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    contact: str
    attribute: str
    source: str  # webhook | ingress | file
    verdict: str
    rule: str
    winner: str
    value: bool
    dynamics_value: bool
    dynamics_time: float
    campaign_value: bool | None
    campaign_time: float | None
    version: int
    at: float
    note: str = ""

    @classmethod
    def of(cls, contact: str, decision: Decision, source: str, at: float, note: str = "") -> AuditEntry:
        campaign = decision.campaign
        return cls(contact, decision.attribute, source, str(decision.verdict), str(decision.rule),
                   str(decision.winner), decision.value, decision.dynamics.value, decision.dynamics.time,
                   campaign.value if campaign else None, campaign.time if campaign else None,
                   decision.mark.version, at, note)  # fmt: skip


class AuditLog:
    def __init__(self, table: TableClient, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock

    def append(self, entries: Iterable[AuditEntry]) -> None:
        groups: dict[tuple[str, str, float, str], list[AuditEntry]] = {}
        for entry in entries:
            groups.setdefault((entry.contact, entry.source, entry.at, entry.note), []).append(entry)
        rows = [_entity(group) for group in groups.values()]
        in_transactions(rows, lambda row: str(row["PartitionKey"]),
                        lambda chunk: submit_transaction(self._table, [("create", row) for row in chunk]),
                        parallel=_PARALLEL)  # fmt: skip

    def history(self, contact: str, limit: int = 100) -> list[AuditEntry]:
        """The contact's decisions, newest first (at most `limit`)."""
        low, high = f"{safe_key(contact)}~", f"{safe_key(contact)}~~"
        found = self._table.query_entities("PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                                           parameters={"pk": PARTITION, "low": low, "high": high},
                                           results_per_page=limit)  # fmt: skip
        out: list[AuditEntry] = []
        for entity in found:
            out.extend(_entries(entity))
            if len(out) >= limit:
                break
        return out[:limit]


def _entity(group: list[AuditEntry]) -> dict[str, Any]:
    first = group[0]
    key = f"{safe_key(first.contact)}~{reverse_ticks(first.at)}~{next(_counter):012d}"
    decisions = [{name: getattr(entry, name) for name in _PER_DECISION} for entry in group]
    return {"PartitionKey": PARTITION, "RowKey": key, "contact": first.contact, "source": first.source,
            "at": first.at, "note": first.note, "decisions": json.dumps(decisions, sort_keys=True)}  # fmt: skip


def _entries(entity: Any) -> list[AuditEntry]:
    contact, source, at, note = str(entity["contact"]), str(entity["source"]), float(entity["at"]), entity.get("note")
    out = []
    for d in json.loads(entity["decisions"]):
        campaign_time = d.get("campaign_time")
        out.append(AuditEntry(contact, str(d["attribute"]), source, str(d["verdict"]), str(d["rule"]), str(d["winner"]),
                              bool(d["value"]), bool(d["dynamics_value"]), float(d["dynamics_time"]),
                              d.get("campaign_value"), float(campaign_time) if campaign_time is not None else None,
                              int(d["version"]), at, str(note or "")))  # fmt: skip
    return out

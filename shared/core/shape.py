"""A table mapping resolved against both instances: which rows pass, and the payload a row becomes.

Built once per run from the mapping and the types and labels read from Dataverse and Campaign, so a
row looks the same whichever way it travels (API writes or import files).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from shared.config.model import TableMapping
from shared.core.filters import passes
from shared.core.projection import project, record_key


@dataclasses.dataclass(frozen=True)
class TableShape:
    table: TableMapping
    source_types: Mapping[str, str]
    target_types: Mapping[str, str]
    labels: Mapping[str, Mapping[int, str]]
    renames: Mapping[str, str] = dataclasses.field(default_factory=dict)  # configured -> instance attribute name
    # Attributes left out of the payload hashes: their last written value is tracked elsewhere (the opt-out
    # attributes, by the newest-applied record, when opt-outs go to Campaign).
    hash_exclude: frozenset[str] = frozenset()

    def passes(self, row: Mapping[str, Any]) -> bool:
        return passes(row, self.table.filters)

    def record_key(self, row: Mapping[str, Any]) -> str:
        return record_key(row, self.table)

    def payload(self, row: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
        """Every mapped field (full) or the apply-updates ones only, under the instance's attribute names."""
        payload = project(row, self.table, full=full, source_types=self.source_types, target_types=self.target_types,
                          labels=self.labels)  # fmt: skip
        if not self.renames:
            return payload
        return {self.renames.get(name, name): value for name, value in payload.items()}

    @property
    def columns(self) -> tuple[str, ...]:
        """The payload's attribute names in mapping order, key last (file headers)."""
        names = [self.renames.get(f.target, f.target) for f in self.table.fields]
        return (*dict.fromkeys(names), self.table.key_attribute)

    def hashed(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the payload hashes cover."""
        if not self.hash_exclude:
            return payload
        return {name: value for name, value in payload.items() if name not in self.hash_exclude}

    def updates_of(self, full_payload: Mapping[str, Any]) -> dict[str, Any]:
        """The apply-updates part of a full payload (what an increment carries), without projecting again."""
        keep = {self.renames.get(f.target, f.target) for f in self.table.fields if f.apply_updates}
        keep.add(self.table.key_attribute)
        return {name: value for name, value in full_payload.items() if name in keep}

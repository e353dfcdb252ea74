"""A table mapping resolved against both instances: which rows pass, and the payload a row becomes.

Built once per run from the mapping and the types, labels and limits read from Dataverse and Campaign
(filters and projection compiled once, not decided per value), so a row looks the same whichever way it
travels (API writes or import files), and a value Campaign would refuse for its length is caught here,
as the record's own fault, before any write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.config.model import TableMapping
from shared.core.errors import RecordError
from shared.core.filters import compile_filters
from shared.core.projection import compile_projection


class TableShape:
    def __init__(
        self,
        table: TableMapping,
        *,
        source_types: Mapping[str, str],
        target_types: Mapping[str, str],
        labels: Mapping[str, Mapping[int, str]] | None = None,
        renames: Mapping[str, str] | None = None,
        max_lengths: Mapping[str, int] | None = None,
        hash_exclude: frozenset[str] = frozenset(),
    ) -> None:
        """`renames`: configured target -> the instance's attribute name; `max_lengths`: instance attribute ->
        the most characters Campaign accepts (from its metadata); `hash_exclude`: attributes left out of the
        payload hashes, whose last written value is tracked elsewhere (the opt-out attributes, by the
        newest-applied record, when opt-outs go to Campaign)."""
        self.table = table
        self.renames = dict(renames or {})
        self.target_types = dict(target_types)  # configured target -> type (import files write values by it)
        self.hash_exclude = frozenset(hash_exclude)
        self._projection = compile_projection(table, source_types=source_types, target_types=target_types,
                                              labels=labels, renames=self.renames)  # fmt: skip
        self._passes = compile_filters(table.filters)
        self._source_of = {self.renames.get(f.target, f.target): f.source for f in table.fields}
        self._limits = {name: limit for name, limit in (max_lengths or {}).items() if name in self._source_of}
        self._updates = {self.renames.get(f.target, f.target) for f in table.fields if f.apply_updates}
        self._updates.add(self.renames.get(table.key_attribute, table.key_attribute))

    def passes(self, row: Mapping[str, Any]) -> bool:
        return self._passes(row)

    def record_key(self, row: Mapping[str, Any]) -> str:
        return self._projection.record_key(row)

    def payload(self, row: Mapping[str, Any], *, full: bool) -> dict[str, Any]:
        """Every mapped field (full) or the apply-updates ones only, under the instance's attribute names."""
        payload = self._projection.project(row, full=full)
        for name, limit in self._limits.items():
            value = payload.get(name)
            if isinstance(value, str) and len(value) > limit:
                source = self._source_of[name]
                raise RecordError(f"field '{source}': value refused, longer than the {limit} characters of "
                                  f"'{name}'", field=source)  # fmt: skip
        return payload

    @property
    def columns(self) -> tuple[str, ...]:
        """The payload's attribute names in mapping order, key last (file headers)."""
        names = [self.renames.get(f.target, f.target) for f in self.table.fields]
        key = self.renames.get(self.table.key_attribute, self.table.key_attribute)
        return (*dict.fromkeys(name for name in names if name != key), key)

    def hashed(self, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the payload hashes cover."""
        if not self.hash_exclude:
            return payload
        return {name: value for name, value in payload.items() if name not in self.hash_exclude}

    def updates_of(self, full_payload: Mapping[str, Any]) -> dict[str, Any]:
        """The apply-updates part of a full payload (what an increment carries), without projecting again."""
        return {name: value for name, value in full_payload.items() if name in self._updates}

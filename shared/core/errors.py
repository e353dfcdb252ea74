"""Errors of the pure core. Messages name fields and types, never the values (they may be personal data)."""

from __future__ import annotations


class ConversionError(ValueError):
    """A value cannot become the target type. Field-agnostic: the caller adds the field's name."""


class RecordError(Exception):
    """One record cannot be synced (its own fault, not the system's): park it, carry on with the others."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)


class FilterError(RecordError):
    """A row value and a configured filter value cannot be compared (e.g. a number field against "abc")."""

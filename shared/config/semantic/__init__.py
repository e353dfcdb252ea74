"""Semantic checks of the sync configuration: what a JSON Schema cannot say (limits across lists, uniqueness,
cross-references). They read the raw document defensively, so they run even when the schema found problems,
and every problem is reported at once."""

from __future__ import annotations

from typing import Any

from shared.config.findings import Finding
from shared.config.semantic.flows import check_egress, check_opt_out
from shared.config.semantic.raw import obj, raw_tables
from shared.config.semantic.tables import check_tables, effective_name

__all__ = ["effective_name", "semantic_findings"]


def semantic_findings(document: Any) -> list[Finding]:
    if not isinstance(document, dict):
        return []
    tables = raw_tables(document)
    contact = next((t for t in tables if t.is_profile), None)
    return [
        *check_tables(tables),
        *check_egress(obj(document.get("egress"))),
        *check_opt_out(obj(document.get("optOut")), contact),
    ]

"""Defensive reading of a document that may have failed the schema, so semantic checks still run on the rest."""

from __future__ import annotations

import dataclasses
from typing import Any

from shared.config.findings import PathParts
from shared.config.model import PROFILE_RESOURCE


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclasses.dataclass(frozen=True)
class RawTable:
    """One entry of ingress.tables as written, with its path."""

    index: int
    raw: dict[str, Any]

    @property
    def at(self) -> PathParts:
        return ("ingress", "tables", self.index)

    def get(self, section: str, key: str) -> str | None:
        return text(obj(self.raw.get(section)).get(key))

    @property
    def resource(self) -> str | None:
        return self.get("target", "resource")

    @property
    def is_profile(self) -> bool:
        return self.resource == PROFILE_RESOURCE

    @property
    def fields(self) -> list[tuple[int, dict[str, Any]]]:
        return [(i, f) for i, f in enumerate(items(self.raw.get("fields"))) if isinstance(f, dict)]

    @property
    def fields_readable(self) -> bool:
        """False when the field list is missing or malformed: checks that depend on it would only add noise."""
        return isinstance(self.raw.get("fields"), list)


def raw_tables(document: dict[str, Any]) -> list[RawTable]:
    tables = items(obj(document.get("ingress")).get("tables"))
    return [RawTable(i, t) for i, t in enumerate(tables) if isinstance(t, dict)]

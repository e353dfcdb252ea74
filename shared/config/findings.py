"""Problems found while checking a document, kept with their structured path until they are reported."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from shared.config.errors import Problem

PathParts = tuple[str | int, ...]

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


@dataclasses.dataclass(frozen=True)
class Finding:
    parts: PathParts  # from the document root: ("ingress", "tables", 2, "fields", 4, "target")
    message: str


def json_path(parts: PathParts) -> str:
    """$.ingress.tables[2].fields[4].target; keys that are not identifiers are quoted: $['odd key']."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}"
        else:
            text += "[" + repr(part) + "]"
    return text


def to_problems(findings: Iterable[Finding], key_order: Mapping[str, int]) -> list[Problem]:
    """Deduplicated problems in document order: indices numerically, keys in the schema's order, unknown keys last."""

    def sort_key(finding: Finding) -> tuple[tuple[int, int, str], ...]:
        return tuple(
            (0, part, "") if isinstance(part, int) else (1, key_order.get(part, len(key_order)), part)
            for part in finding.parts
        )

    unique = list(dict.fromkeys(findings))
    return [Problem(json_path(f.parts), f.message) for f in sorted(unique, key=sort_key)]

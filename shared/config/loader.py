"""Load the sync configuration: inline JSON or a file, then schema, then semantic checks, then the typed model.

Every problem is collected and raised together as one ConfigError, each with its JSON path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.config.build import build_sync_config
from shared.config.errors import ConfigError, Problem
from shared.config.findings import Finding, PathParts, to_problems
from shared.config.model import SyncConfig
from shared.config.schema import key_order, schema_findings
from shared.config.semantic import semantic_findings

ROOT = "$"


def load_sync_config(value: str, base_dir: Path | None = None) -> SyncConfig:
    """value: inline JSON (starts with '{') or a path to a JSON file, relative to base_dir (default: the cwd)."""
    return parse_sync_config(read_document(value, base_dir))


def parse_sync_config(document: Any) -> SyncConfig:
    """Check an already parsed document and build the model; raises ConfigError listing every problem."""
    problems = check_document(document)
    if problems:
        raise ConfigError(problems)
    return build_sync_config(document)


def check_document(document: Any) -> list[Problem]:
    findings = [*_duplicate_keys(document, ()), *schema_findings(document), *semantic_findings(document)]
    return to_problems(findings, key_order())


def read_document(value: str, base_dir: Path | None = None) -> Any:
    """The parsed JSON (objects are dicts); raises ConfigError with one problem if it cannot be read."""
    text = value.strip()
    if not text:
        raise ConfigError([Problem(ROOT, "empty: give inline JSON or the path of a JSON file")])
    if text.startswith("{"):
        return _parse(text, "inline JSON")
    path = Path(text)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    try:
        content = path.read_text(encoding="utf-8-sig")  # tolerate the BOM some Windows editors write
    except FileNotFoundError:
        raise ConfigError([Problem(ROOT, f"file not found: {path}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(ROOT, f"not UTF-8 text: {path}")]) from None
    except OSError as e:
        raise ConfigError([Problem(ROOT, f"cannot read {path}: {e.strerror or type(e).__name__}")]) from None
    return _parse(content, str(path))


class _Object(dict[str, Any]):
    """A JSON object that remembers keys written twice (json keeps the last one silently)."""

    duplicates: tuple[str, ...] = ()


class _BadConstant(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        result.duplicates = tuple(dict.fromkeys(k for k in keys if keys.count(k) > 1))
    return result


def _reject_constant(name: str) -> Any:
    raise _BadConstant(name)


def _parse(text: str, origin: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ConfigError(
            [Problem(ROOT, f"invalid JSON ({origin}) at line {e.lineno}, column {e.colno}: {e.msg}")]
        ) from None
    except _BadConstant as e:
        raise ConfigError([Problem(ROOT, f"invalid JSON ({origin}): {e} is not allowed")]) from None
    except RecursionError:  # no mapping document nests this deep; without this it is a stack trace
        raise ConfigError([Problem(ROOT, f"invalid JSON ({origin}): nested too deeply")]) from None


def _duplicate_keys(node: Any, at: PathParts) -> list[Finding]:
    findings: list[Finding] = []
    if isinstance(node, dict):
        findings += [
            Finding((*at, key), "key written twice; write each key once") for key in getattr(node, "duplicates", ())
        ]
        for key, value in node.items():
            findings += _duplicate_keys(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            findings += _duplicate_keys(value, (*at, index))
    return findings

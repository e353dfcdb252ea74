"""Structural check of the sync configuration against its JSON Schema (sync_config.schema.json, draft 2020-12).

jsonschema finds every error with its instance path; this module only rewrites its messages into short,
path-first sentences (an unknown key is reported at its own path, with a "did you mean" hint).
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from shared.config.findings import Finding, PathParts

SCHEMA_PATH = Path(__file__).with_name("sync_config.schema.json")

_TYPE_WORDS = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@functools.cache
def load_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def key_order() -> dict[str, int]:
    """Every property name of the schema, numbered in the order the schema lists them (for sorting problems)."""
    order: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name in node.get("properties", {}):
                order.setdefault(name, len(order))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema())
    return order


def schema_findings(document: Any) -> list[Finding]:
    findings: list[Finding] = []
    for error in _validator().iter_errors(document):
        findings.extend(_translate(error))
    return findings


def _translate(error: ValidationError) -> list[Finding]:
    at: PathParts = tuple(error.absolute_path)
    kind, instance, schema = error.validator, error.instance, error.schema
    expected: Any = error.validator_value  # always set on errors from iter_errors
    if kind == "additionalProperties" and isinstance(instance, dict) and isinstance(schema, dict):
        allowed = list(schema.get("properties", {}))
        return [Finding((*at, key), "unknown property" + _hint(key, allowed)) for key in instance if key not in allowed]
    if kind == "required" and isinstance(instance, dict):
        return [Finding((*at, key), "is required") for key in expected if key not in instance]
    return [Finding(at, _message(str(kind), expected, schema, error.message))]


def _message(kind: str, expected: Any, schema: Any, fallback: str) -> str:
    description = schema.get("description") if isinstance(schema, dict) else None
    if kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        return "must be " + " or ".join(_TYPE_WORDS.get(str(n), str(n)) for n in names)
    if kind == "enum":
        return "must be one of: " + ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in expected)
    if kind == "const":
        return f"must be {json.dumps(expected)}"
    if kind == "pattern":
        return f"must be {description}" if description else f"must match {expected}"
    if kind == "minItems":
        return "must not be empty" if expected == 1 else f"must have at least {expected} items"
    if kind == "minimum":
        return f"must be at least {expected}"
    if kind == "maximum":
        return f"must be at most {expected}"
    return fallback


def _hint(key: str, allowed: list[str]) -> str:
    names = [name for name in allowed if not name.startswith("$")]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; expected one of: {', '.join(names)}"

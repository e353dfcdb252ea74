"""The JSON Schema stays in step with the model, and the validate command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from shared.config import model
from shared.config.__main__ import main
from shared.config.schema import load_schema
from tests.config.docs import good

REPO = Path(__file__).resolve().parents[2]


def _objects(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def test_schema_is_valid_draft_2020_12() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_object_rejects_unknown_keys() -> None:
    objects = _objects(load_schema())
    assert len(objects) >= 15
    assert all(o.get("additionalProperties") is False for o in objects)


@pytest.mark.parametrize(
    ("definition", "key", "expected"),
    [
        ("rule", "operator", model.FILTER_OPERATORS),
        ("field", "sourceType", model.SOURCE_TYPES),
        ("field", "targetType", model.TARGET_TYPES),
        ("pair", "campaign", model.OPT_OUT_CAMPAIGN_FIELDS),
        ("optOut", "mode", tuple(m.value for m in model.OptOutMode)),
        ("filters", "combine", tuple(c.value for c in model.Combine)),
    ],
)
def test_schema_enums_match_the_model(definition: str, key: str, expected: tuple[str, ...]) -> None:
    assert tuple(load_schema()["$defs"][definition]["properties"][key]["enum"]) == expected


def test_schema_event_keys_match_the_model() -> None:
    egress = load_schema()["$defs"]["egress"]["properties"]
    for block in ("events", "activityTables"):
        assert [k for k in egress[block]["properties"] if not k.startswith("$")] == list(model.EGRESS_EVENTS)


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", json.dumps(good())]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 2 tables (2 enabled; profile <- contacts; 1 custom), 6 mapped fields")


def test_validate_prints_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    doc = good()
    doc["version"] = 3
    doc["egress"]["events"]["open"] = True
    assert main(["validate", json.dumps(doc)]) == 2
    err = capsys.readouterr().err
    assert "  - $.version: must be 1" in err
    assert "  - $.egress.activityTables.open: needs an activity table: 'open' events are on" in err


def test_validate_as_a_module_on_the_shipped_example() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "shared.config", "validate", "config/sync.example.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 2 tables")
    missing = subprocess.run(
        [sys.executable, "-m", "shared.config", "validate", "config/none.json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "file not found" in missing.stderr


def test_importing_errors_and_model_does_not_load_jsonschema() -> None:
    """The settings module imports shared.config.errors on every cold start; the validator loads on first use."""
    code = "import sys, shared.config.errors, shared.config.model; print('jsonschema' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

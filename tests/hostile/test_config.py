"""Hostile mapping documents and settings files: every one is refused with a ConfigError whose problems name the
setting, the JSON path or the file, never a stack trace; a document with many problems lists them all at once.
tests/config and tests/settings have the ordinary mistakes; these are the malicious or broken files."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from shared.cli import CONFIG_PROBLEMS, main
from shared.config import ConfigError
from shared.config.loader import load_sync_config
from shared.settings import read_local_settings
from tests.config.docs import cards, contacts, custom_table, good

DEEP = 100_000


def deep_document() -> str:
    return '{"version": 1, "ingress": ' + '{"a": ' * DEEP + "{}" + "}" * DEEP + "}"


# (name, file bytes, the gist every problem list must hold)
FILES: list[tuple[str, bytes, str]] = [
    ("empty file", b"", "invalid JSON"),
    ("whitespace only", b" \n\t\n", "invalid JSON"),
    ("deeply nested", deep_document().encode(), "nested too deeply"),
    ("a JSON array", b"[1, 2]", "$"),
    ("a JSON string", b'"sync"', "$"),
    ("trailing garbage", json.dumps(good()).encode() + b" }{", "Extra data"),
    ("NUL bytes", b"{\x00}", "invalid JSON"),
    ("invalid UTF-8", b'{"version": 1, "\xff\xfe": 2}', "not UTF-8"),
    ("UTF-16 with BOM", json.dumps(good()).encode("utf-16"), "not UTF-8"),
    ("a huge unknown value", json.dumps({**good(), "padding": "x" * 5_000_000}).encode(), "$.padding"),
]


@pytest.mark.parametrize(("content", "gist"), [f[1:] for f in FILES], ids=[f[0] for f in FILES])
def test_a_hostile_mapping_file_is_one_clear_problem(tmp_path: pathlib.Path, content: bytes, gist: str) -> None:
    path = tmp_path / "sync.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_sync_config(str(path))
    text = str(caught.value)
    assert gist in text and "Traceback" not in text and len(text) < 2_000  # a 5 MB value is not echoed


def _everything_wrong(d: dict[str, Any]) -> None:
    contacts(d)["fields"][0]["target"] = 7  # wrong type
    contacts(d)["fieldz"] = []  # unknown key
    cards(d)["fields"].append({"source": "new_points", "target": "cardNumber"})  # a target mapped twice
    contacts(d)["filters"]["rules"].append({"field": "statecode", "operator": "like", "value": 0})  # bad operator
    d["ingress"]["tables"] += [custom_table(i) for i in range(2, 22)]  # 21 custom tables


def _hostile_names(d: dict[str, Any]) -> None:
    cards(d)["source"]["entitySet"] = "new_loyaltycards?$filter=x eq '1'"  # OData in a name
    cards(d)["target"]["resource"] = "cusCard/../profile"  # a path in a resource
    contacts(d)["fields"][0]["source"] = "firstname\r\nX-Injected: 1"  # a header in a column name


def _bad_filters(d: dict[str, Any]) -> None:
    rules = contacts(d)["filters"]["rules"]
    rules.append({"field": "statecode", "operator": "in", "value": {"not": "a list"}})
    rules.append({"field": "statecode", "operator": "eq"})  # no value
    contacts(d)["filters"]["combine"] = "xor"


# (name, change, JSON paths that must each be named)
DOCUMENTS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("five kinds of mistake at once", _everything_wrong,
     ["$.ingress.tables[0].fields[0].target", "$.ingress.tables[0].fieldz", "$.ingress.tables[1].fields",
      "$.ingress.tables[0].filters.rules[1].operator", "$.ingress.tables"]),
    ("names crafted as URLs, paths and headers", _hostile_names,
     ["$.ingress.tables[1].source.entitySet", "$.ingress.tables[1].target.resource",
      "$.ingress.tables[0].fields[0].source"]),
    ("filters of the wrong shape", _bad_filters,
     ["$.ingress.tables[0].filters.rules[1]", "$.ingress.tables[0].filters.rules[2]",
      "$.ingress.tables[0].filters.combine"]),
]  # fmt: skip


@pytest.mark.parametrize(("change", "paths"), [d[1:] for d in DOCUMENTS], ids=[d[0] for d in DOCUMENTS])
def test_every_problem_of_a_hostile_document_is_listed_at_once(
    change: Callable[[dict[str, Any]], None], paths: list[str]
) -> None:
    document = good()
    change(document)
    with pytest.raises(ConfigError) as caught:
        load_sync_config(json.dumps(document))
    named = [p.path for p in caught.value.problems]
    missing = [path for path in paths if not any(n == path or n.startswith(path + ".") or
                                                  n.startswith(path + "[") for n in named)]  # fmt: skip
    assert missing == [], named


# (name, local.settings.json bytes, gist)
SETTINGS_FILES: list[tuple[str, bytes, str]] = [
    ("truncated JSON", b'{"Values": {', "invalid JSON at line 1"),
    ("deeply nested", b'{"Values": ' + b"[" * DEEP + b"]" * DEEP + b"}", "nested too deeply"),
    ("Values not an object", b'{"Values": ["DATAVERSE_URL"]}', '"Values" object'),
    ("not UTF-8", b'{"Values": {"A": "\xff"}}', "not UTF-8"),
]


@pytest.mark.parametrize(("content", "gist"), [f[1:] for f in SETTINGS_FILES], ids=[f[0] for f in SETTINGS_FILES])
def test_a_hostile_local_settings_file_names_itself(tmp_path: pathlib.Path, content: bytes, gist: str) -> None:
    path = tmp_path / "local.settings.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_local_settings(path)
    assert [p.path for p in caught.value.problems] == [str(path)] and gist in str(caught.value)


def test_the_cli_reports_a_broken_settings_file_as_a_configuration_problem(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "local.settings.json"
    path.write_bytes(b'{"Values": {')
    assert main(["--settings", str(path), "status"]) == CONFIG_PROBLEMS
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err

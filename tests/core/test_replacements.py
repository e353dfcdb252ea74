"""Replacements: type-aware matching on the raw value, first match wins, no chains, new dict."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config.model import Replacement
from shared.core.replacements import apply_replacements, compile_matcher, replace_row, value_matches


@pytest.mark.parametrize(
    ("row_value", "configured", "expected"),
    [
        (1, 1, True),
        (1, "1", True),
        (1, 1.0, True),
        (1, "1.0", True),
        (1.5, "1.50", True),
        (1, 2, False),
        (1, "one", False),
        (1, True, False),  # a Boolean is not the number 1
        (True, True, True),
        (True, "true", True),
        (True, "TRUE", True),
        (False, "false", True),
        (True, 1, False),
        (True, "1", False),
        (False, None, False),
        ("F", "F", True),
        ("F", "f", False),  # text matches exactly
        ("1", 1, True),  # a configured number against a text field: its canonical text
        ("1.0", 1, False),
        ("true", True, True),
        (None, None, True),
        (None, 0, False),
        (None, "", False),
        ("", None, False),
        ([1], 1, False),
        (float("nan"), "nan", False),
    ],
)
def test_value_matches(row_value: Any, configured: Any, expected: bool) -> None:
    assert value_matches(row_value, configured) is expected
    assert (compile_matcher([configured])(row_value) == 0) is expected  # the compiled form agrees


@pytest.mark.parametrize(
    ("row_value", "position"),
    [
        (1, 0),  # "1" comes before 1.0 and 1
        (1.0, 0),
        ("1", 0),
        ("1.0", 2),  # text matches exactly: only the configured text "1.0"
        (True, 3),  # "true" then True: the first one wins
        ("true", 3),
        (None, 5),
        (2, None),
        ("", None),
        ([1], None),
        (float("inf"), None),
    ],
)
def test_compiled_matcher_returns_the_first_matching_position(row_value: Any, position: int | None) -> None:
    match = compile_matcher(["1", 1.0, "1.0", "true", True, None, 1, None])
    assert match(row_value) == position


def test_replaces_matching_values_and_leaves_the_row_alone() -> None:
    row = {"gendercode": 2, "donotemail": True, "lastname": "Lee"}
    replacements = [
        Replacement("gendercode", "1", "male"),
        Replacement("gendercode", 2, "female"),
        Replacement("donotemail", "true", "Y"),
    ]
    result = apply_replacements(row, replacements)
    assert result == {"gendercode": "female", "donotemail": "Y", "lastname": "Lee"}
    assert row == {"gendercode": 2, "donotemail": True, "lastname": "Lee"}
    assert result is not row


def test_no_match_keeps_the_value() -> None:
    assert apply_replacements({"gendercode": 3}, [Replacement("gendercode", 1, "male")]) == {"gendercode": 3}


def test_null_can_be_replaced_but_a_missing_column_is_not_invented() -> None:
    replacements = [Replacement("gendercode", None, "unknown")]
    assert apply_replacements({"gendercode": None}, replacements) == {"gendercode": "unknown"}
    assert apply_replacements({}, replacements) == {}


def test_replacements_do_not_chain() -> None:
    replacements = [Replacement("code", 1, 2), Replacement("code", 2, 3)]
    assert apply_replacements({"code": 1}, replacements) == {"code": 2}
    assert apply_replacements({"code": 2}, replacements) == {"code": 3}


def test_replace_row_reports_which_fields_changed() -> None:
    values, replaced = replace_row({"a": 1, "b": 1}, [Replacement("a", 1, None), Replacement("b", 9, 0)])
    assert values == {"a": None, "b": 1}
    assert replaced == frozenset({"a"})


def test_the_first_matching_replacement_wins() -> None:
    # The loader refuses such configurations; the core still behaves predictably.
    replacements = [Replacement("code", "1", "first"), Replacement("code", 1.0, "second")]
    assert apply_replacements({"code": 1}, replacements) == {"code": "first"}

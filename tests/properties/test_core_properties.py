"""Properties of the pure core, on generated inputs (hypothesis): round trips, agreement of the compiled
forms with the reference, and error messages that never carry the value."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config.model import Combine, FieldMapping, FilterRule, FilterSet, PicklistMode, Replacement, TableMapping
from shared.core.convert import INTEGER_RANGES, convert_value
from shared.core.delimited import Dialect, Record, encode_line, read_records
from shared.core.errors import ConversionError, RecordError
from shared.core.filters import compile_filters, passes
from shared.core.projection import compile_projection, payload_hash, project

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # any text but lone surrogates


@FAST
@given(st.lists(st.lists(TEXT, min_size=3, max_size=3), min_size=1, max_size=8), st.sampled_from([";", "\t", ","]),
       st.integers(1, 64))  # fmt: skip
def test_any_text_survives_a_delimited_round_trip(rows: list[list[str]], separator: str, chunk: int) -> None:
    header = ["a", "b", "c"]
    data = (encode_line(header, separator) + "".join(encode_line(r, separator) for r in rows)).encode()
    parsed = list(read_records([data[i : i + chunk] for i in range(0, len(data), chunk)], Dialect(separator=separator)))
    # Every row comes back whole, in order, in any chunking: a row of empty fields too (";;" is a record).
    assert parsed == [Record(line, dict(zip(header, r, strict=True))) for line, r in zip(_lines(rows, separator), rows,
                                                                                           strict=True)]  # fmt: skip


def _lines(rows: list[list[str]], separator: str) -> list[int]:
    """The physical line each record starts on (the header is line 1; a quoted line break adds a line)."""
    lines, line = [], 2
    for row in rows:
        lines.append(line)
        line += encode_line(row, separator).count("\n")
    return lines


@FAST
@given(st.sampled_from(sorted(INTEGER_RANGES)), st.integers(-(2**70), 2**70))
def test_integers_convert_exactly_inside_the_target_range_and_are_refused_outside(target: str, n: int) -> None:
    low, high = INTEGER_RANGES[target]
    try:
        converted = convert_value(n, "Integer" if abs(n) < 2**31 else "BigInt", target)
    except ConversionError as exc:
        assert not low <= n <= high
        assert str(n) not in str(exc) or len(str(n)) < 2  # the value is never in the message
    else:
        assert low <= n <= high and converted == n


@FAST
@given(TEXT)
def test_text_to_text_is_the_identity(text: str) -> None:
    assert convert_value(text, "String", "string") == text


@FAST
@given(st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_dates_keep_their_day(day: dt.date) -> None:
    assert convert_value(day.isoformat(), "Date", "date") == day.isoformat()


RULE_VALUES = st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from(["a", "B", "ab", ""]), st.none())
OPERATORS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "notin", "contains", "startswith", "endswith", "null", "notnull"]


@st.composite
def rules(draw: st.DrawFn) -> FilterRule:
    operator = draw(st.sampled_from(OPERATORS))
    if operator in ("null", "notnull"):
        return FilterRule("f", operator)
    if operator in ("in", "notin"):
        return FilterRule("f", operator, tuple(draw(st.lists(st.integers(-5, 5), min_size=1, max_size=3))))
    if operator in ("contains", "startswith", "endswith"):
        return FilterRule("f", operator, draw(st.sampled_from(["a", "B", "x"])))
    return FilterRule("f", operator, draw(st.integers(-5, 5)))


@FAST
@given(st.lists(rules(), min_size=0, max_size=4), st.sampled_from(list(Combine)),
       st.one_of(st.integers(-5, 5), st.sampled_from(["a", "Ab", "xb", ""]), st.none()))  # fmt: skip
def test_compiled_filters_agree_with_the_reference(rules_: list[FilterRule], combine: Combine, value: Any) -> None:
    filters = FilterSet(tuple(rules_), combine)
    row = {"f": value}
    try:
        expected: Any = passes(row, filters)
    except RecordError as exc:
        expected = type(exc)
    try:
        got: Any = compile_filters(filters)(row)
    except RecordError as exc:
        got = type(exc)
    assert got == expected
    if not rules_:
        assert expected is True  # no rule: everything passes


def _table(replacements: tuple[Replacement, ...]) -> TableMapping:
    return TableMapping(
        name="t", entity="contact", entity_set="contacts", primary_key="contactid", resource="profile",
        key_attribute="externalId", lookup_filter="byExternalId", lookup_parameter="externalId_parameter",
        fields=(FieldMapping("firstname", "firstName"), FieldMapping("gendercode", "gender", apply_updates=False),
                FieldMapping("donotbulkemail", "denyListEmail"), FieldMapping("new_points", "points")),
        replacements=replacements, picklists=PicklistMode.VALUE,
    )  # fmt: skip


ROWS = st.fixed_dictionaries(
    {"contactid": st.uuids().map(str)},
    optional={"firstname": st.one_of(TEXT, st.none()), "gendercode": st.one_of(st.integers(0, 3), st.none()),
              "donotbulkemail": st.one_of(st.booleans(), st.none()),
              "new_points": st.one_of(st.integers(-(2**31), 2**31 - 1), st.none())},
)  # fmt: skip
TYPES = {"firstname": "String", "gendercode": "Picklist", "donotbulkemail": "Boolean", "new_points": "Integer"}
TARGETS = {"firstName": "string", "gender": "string", "denyListEmail": "boolean", "points": "long"}


@FAST
@given(ROWS, st.booleans(), st.lists(st.tuples(st.integers(0, 3), TEXT), max_size=3))
def test_compiled_projection_agrees_with_the_reference(row: dict[str, Any], full: bool,
                                                       pairs: list[tuple[int, str]]) -> None:  # fmt: skip
    table = _table(tuple(Replacement("gendercode", code, text) for code, text in dict(pairs).items()))
    reference = project(row, table, full=full, source_types=TYPES, target_types=TARGETS)
    compiled = compile_projection(table, source_types=TYPES, target_types=TARGETS).project(row, full=full)
    assert compiled == reference
    assert reference["externalId"] == row["contactid"].lower()
    if not full:
        assert "gender" not in reference  # apply-updates off: never in an increment
    if full and row.get("gendercode") in dict(pairs):
        assert reference["gender"] == dict(pairs)[row["gendercode"]]  # a replacement wins over conversion


@FAST
@given(st.dictionaries(st.text(max_size=8), st.one_of(TEXT, st.integers(), st.booleans(), st.none()), max_size=6))
def test_payload_hash_ignores_key_order(payload: dict[str, Any]) -> None:
    assert payload_hash(payload) == payload_hash(dict(reversed(list(payload.items()))))

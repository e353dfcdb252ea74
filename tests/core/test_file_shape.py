"""A shaped payload as one line of an import file: header, formats by target type, quoting, missing columns."""

from __future__ import annotations

import random
import sys

import pytest

from sandbox.campaign import delimited
from shared.config.model import FieldMapping, TableMapping
from shared.core.delimited import encode_line
from shared.core.errors import RecordError
from shared.core.file_shape import FileShaper, column_types
from shared.core.shape import TableShape


def shape(**renames: str) -> TableShape:
    table = TableMapping(
        name="contacts", entity="contact", entity_set="contacts", primary_key="contactid", resource="profile",
        key_attribute="externalId", lookup_filter="byExternalId", lookup_parameter="externalId_parameter",
        fields=(
            FieldMapping("firstname", "firstName"),
            FieldMapping("birthdate", "birthDate", target_type="date"),
            FieldMapping("lastvisit", "lastVisit"),
            FieldMapping("donotbulkemail", "denyListEmail"),
            FieldMapping("points", "points"),
            FieldMapping("ratio", "ratio"),
        ),
    )  # fmt: skip
    targets = {"firstName": "string", "lastVisit": "datetime", "denyListEmail": "boolean", "points": "long",
               "ratio": "double"}  # fmt: skip
    return TableShape(table, source_types={}, target_types=targets, labels={}, renames=renames)


def test_header_is_the_shape_columns_key_last_under_instance_names() -> None:
    shaper = FileShaper.for_shape(shape(denyListEmail="blackListEmail"), ";")
    assert shaper.header() == "firstName;birthDate;lastVisit;blackListEmail;points;ratio;externalId\n"
    assert column_types(shape(denyListEmail="blackListEmail"))["blackListEmail"] == "boolean"


def test_values_are_written_by_their_target_type() -> None:
    shaper = FileShaper.for_shape(shape(), ";")
    payload = {"firstName": "Ann", "birthDate": "1990-02-03", "lastVisit": "2024-05-06T07:08:09Z",
               "denyListEmail": True, "points": -12, "ratio": 1e-07, "externalId": "c-1"}  # fmt: skip
    assert shaper.line(payload) == "Ann;1990/02/03;2024/05/06 07:08:09;1;-12;0.0000001;c-1\n"
    payload.update(denyListEmail=False, lastVisit="2024-05-06T23:30:00+02:00", ratio=3.5)
    assert shaper.line(payload) == "Ann;1990/02/03;2024/05/06 21:30:00;0;-12;3.5;c-1\n"


def test_nulls_and_absent_columns_are_empty() -> None:
    shaper = FileShaper.for_shape(shape(), ";")
    assert shaper.line({"firstName": None, "birthDate": None, "externalId": "c-2"}) == ";;;;;;c-2\n"


@pytest.mark.parametrize(
    ("text", "written"),
    [("semi;colon", '"semi;colon"'), ('a "q"', '"a ""q"""'), ("two\nlines", '"two\nlines"'), ("cr\rx", '"cr\rx"'),
     (" lead", '" lead"'), ("tail\t", '"tail\t"'), ("emoji 🎉", "emoji 🎉"), ("tab\tinside", "tab\tinside")],
)  # fmt: skip
def test_hostile_text_is_quoted_where_needed(text: str, written: str) -> None:
    shaper = FileShaper(("firstName", "externalId"), {"firstName": "string"}, ";")
    assert shaper.line({"firstName": text, "externalId": "k"}) == f"{written};k\n"


def test_tab_separator_quotes_tabs_not_semicolons() -> None:
    shaper = FileShaper(("a", "b"), {}, "\t")
    assert shaper.line({"a": "x\ty", "b": "p;q"}) == '"x\ty"\tp;q\n'


def test_a_value_that_cannot_be_file_text_is_the_record_s_error() -> None:
    shaper = FileShaper.for_shape(shape(), ";")
    with pytest.raises(RecordError) as info:
        shaper.line({"firstName": ["a", "list"], "externalId": "k"})
    assert info.value.field == "firstName"
    assert info.value.reason == "column 'firstName': TypeError in file shaping"  # the type, never the value
    with pytest.raises(RecordError):
        shaper.line({"birthDate": "not a date", "externalId": "k"})


@pytest.mark.parametrize("separator", [";", "\t", ","])
def test_any_text_survives_the_round_trip_through_an_independent_reader(separator: str) -> None:
    """Random text of the troublesome characters, read back by the Campaign sandbox's hand-written parser."""
    rng = random.Random(separator)
    alphabet = ["a", "Z", " ", "\t", ";", ",", '"', "\r", "\n", "é", "🎉", "\u2028", "\u00a0", "\x0b"]
    columns = ("a", "b", "c", "d")
    shaper = FileShaper(columns, dict.fromkeys(columns, "string"), separator)
    for _ in range(3000):
        values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in columns]
        line = shaper.line(dict(zip(columns, values, strict=True)))
        [record] = list(delimited.parse(line, separator))
        assert record.problem is None and record.fields == values, (values, line)
        assert line == encode_line(values, separator)  # the fast path writes what field-by-field quoting writes


def test_every_whitespace_but_the_space_is_non_printable() -> None:
    """The line shaper scans for unusual whitespace only in lines that are not printable: that shortcut holds
    only while no whitespace other than ' ' counts as printable (checked over all of Unicode)."""
    printable_spaces = [hex(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c).isprintable()]
    assert printable_spaces == ["0x20"]

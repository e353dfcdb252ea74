"""The sandbox's own delimited-text reader and writer (docs/file-format.md), checked against literals and against
Python's csv module as an independent model (the sandbox itself never uses csv)."""

from __future__ import annotations

import csv
import io
import random

import pytest

from sandbox.campaign import delimited

HOSTILE = [
    "plain",
    "semi;colon",
    'a "quoted" word',
    '"',
    '""',
    "line\nbreak",
    "crlf\r\ninside",
    "lone\rcr",
    " leading space",
    "trailing tab\t",
    "emoji 🎉 and ZWJ 👩‍💻",
    "ünïcödé ñ 中文 العربية",
    ";",
    "\\back\\slash",
    "=1+1",
    "tab\tinside",
]


def fields(text: str, separator: str = ";") -> list[list[str]]:
    records = list(delimited.parse(text, separator))
    assert all(r.problem is None for r in records), [r.problem for r in records]
    return [r.fields for r in records]


def test_literal_records() -> None:
    text = 'a;b;c\n1;"x;y";\n"he said ""hi""";" two\nlines ";z\r\n'
    assert fields(text) == [["a", "b", "c"], ["1", "x;y", ""], ['he said "hi"', " two\nlines ", "z"]]


def test_bom_crlf_trailing_blank_lines_and_no_final_newline() -> None:
    assert fields("\ufeffid;name\r\n1;Ada\r\n\r\n2;Grace") == [["id", "name"], ["1", "Ada"], ["2", "Grace"]]


def test_tab_separator() -> None:
    assert fields('a\tb\n"x\ty"\tz\n', "\t") == [["a", "b"], ["x\ty", "z"]]


def test_line_numbers_count_newlines_inside_quotes() -> None:
    records = list(delimited.parse('h\n"one\ntwo\nthree"\nnext\n'))
    assert [(r.line, r.fields) for r in records] == [(1, ["h"]), (2, ["one\ntwo\nthree"]), (5, ["next"])]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('h;v\n1;ab"c\n2;ok\n', 2, "a double quote inside a field that is not quoted"),
        ('h;v\n1;"ab"c\n2;ok\n', 2, "text after the closing quote of a field"),
        ("h;v\n1;a\rb\n2;ok\n", 2, "a carriage return inside a field that is not quoted"),
    ],
)
def test_a_malformed_record_is_reported_and_reading_goes_on(text: str, line: int, problem: str) -> None:
    records = list(delimited.parse(text))
    bad = [r for r in records if r.problem]
    assert [(r.line, r.problem) for r in bad] == [(line, problem)]
    assert records[-1].fields == ["2", "ok"]
    assert records[-1].problem is None


def test_an_unclosed_quote_swallows_the_rest_and_says_so() -> None:
    records = list(delimited.parse('h;v\n1;"never closed\n2;x\n'))
    assert records[-1].line == 2
    assert records[-1].problem == "a quoted field is not closed before the end of the file"


def test_writer_quotes_only_what_needs_it() -> None:
    text = delimited.write_text(["id", "text"], [["1", "plain"], ["2", "a;b"], ["3", " pad"], ["4", None], ["5", 'q"']])
    assert text == 'id;text\n1;plain\n2;"a;b"\n3;" pad"\n4;\n5;"q"""\n'


def test_hostile_text_round_trips() -> None:
    rows = [[str(i), value] for i, value in enumerate(HOSTILE)]
    text = delimited.write_text(["id", "value"], rows)
    assert fields(text)[1:] == rows


@pytest.mark.parametrize("separator", [";", "\t", ","])
def test_agrees_with_an_independent_csv_implementation(separator: str) -> None:
    rng = random.Random(7)
    alphabet = ["a", "Z", " ", ";", ",", "\t", '"', "\n", "\r\n", "é", "🎉", "x"]
    rows = [["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(4)] for _ in range(300)]
    # Python's csv writes with its own quoting rules; ours must read what it writes...
    out = io.StringIO()
    csv.writer(out, delimiter=separator, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    # (csv leaves whitespace-edged fields bare; they carry no CR or quote, so they read back as they are)
    assert fields(out.getvalue(), separator) == rows
    # ...and csv must read what ours writes.
    ours = delimited.write_text(["a", "b", "c", "d"], rows, separator)
    assert list(csv.reader(io.StringIO(ours, newline=""), delimiter=separator))[1:] == rows


def test_bad_separators_are_refused() -> None:
    for separator in ['"', "\n", ";;", ""]:
        with pytest.raises(ValueError):
            list(delimited.parse("a", separator))

"""Campaign delimited text: literal files written and read, hostile text, malformed records."""

from __future__ import annotations

import pytest

from shared.core.delimited import (
    DelimitedError,
    Dialect,
    Malformed,
    Record,
    campaign_date,
    campaign_datetime,
    cell,
    encode_line,
    read_records,
)

HOSTILE = ["a;b", 'say "hi"', "two\nlines", " leading", "trailing ", "emoji 😀", "", "sep\u2028arator", "cr\ronly"]


def test_fields_are_quoted_only_when_they_must_be() -> None:
    assert encode_line(["plain", "a;b", 'q"q', "l\nl", " s", "e ", ""]) == ('plain;"a;b";"q""q";"l\nl";" s";"e ";\n')
    assert encode_line(["a\tb", "c"], "\t") == '"a\tb";c\n'.replace(";", "\t")


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "1"), (False, "0"), (42, "42"), (-7, "-7"), (1.5, "1.5"), (1e-07, "0.0000001"),
     (12345678901234567890, "12345678901234567890"), ("x", "x")],
)  # fmt: skip
def test_cells(value: object, text: str) -> None:
    assert cell(value) == text


def test_dates_and_datetimes_in_campaign_form() -> None:
    assert campaign_date("2027-06-30") == "2027/06/30"
    assert campaign_date("2027-06-30T10:00:00Z") == "2027/06/30"
    assert campaign_datetime("2026-12-01T21:30:05Z") == "2026/12/01 21:30:05"
    assert campaign_datetime("2026-12-01T23:30:05+02:00") == "2026/12/01 21:30:05"
    assert campaign_datetime("2026-12-01T21:30:05") == "2026/12/01 21:30:05"  # naive means UTC
    assert campaign_date(None) is None and campaign_datetime("") is None


def test_hostile_text_survives_the_round_trip_in_any_chunking() -> None:
    columns = [f"c{i}" for i in range(len(HOSTILE))]
    data = (encode_line(columns) + encode_line(HOSTILE) + encode_line(list(reversed(HOSTILE)))).encode()
    for size in (1, 3, 7, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(read_records(chunks)) == [
            Record(2, dict(zip(columns, HOSTILE, strict=True))),
            Record(4, dict(zip(columns, reversed(HOSTILE), strict=True))),  # the record above spans lines 2-3
        ]


def test_bom_crlf_blank_lines_and_latin_encoding() -> None:
    data = "\ufeffid;name\r\n1;Zoë\r\n\r\n2;Ann\r\n".encode()
    assert [r.values for r in read_records([data])] == [{"id": "1", "name": "Zoë"}, {"id": "2", "name": "Ann"}]
    latin = "id;name\n1;Zoë\n".encode("latin-1")
    assert [r.values for r in read_records([latin], Dialect(encoding="latin-1"))] == [{"id": "1", "name": "Zoë"}]


def test_malformed_records_are_reported_by_line_and_the_rest_goes_on() -> None:
    data = b'id;name\n1;ok\n2;too;many\n3\n4;\xff\xfe\n5;fine\n6;"never closed\n'
    assert list(read_records([data])) == [
        Record(2, {"id": "1", "name": "ok"}),
        Malformed(3, "3 fields where the header has 2"),
        Malformed(4, "1 fields where the header has 2"),
        Malformed(5, "not valid utf-8"),
        Record(6, {"id": "5", "name": "fine"}),
        Malformed(7, "a quoted field is not closed before the end of the file"),
    ]


def test_a_huge_field_is_malformed_not_a_memory_problem() -> None:
    data = b"id;name\n1;" + b"x" * 200_000 + b"\n2;ok\n"
    records = list(read_records([data]))
    assert isinstance(records[0], Malformed) and "longer than" in records[0].reason
    assert records[-1] == Record(3, {"id": "2", "name": "ok"})


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty file"),
        (b"a;a\n1;2\n", "twice"),
        (b"\xff;b\n", "not valid text"),
        (b"x;y\n", r"lacks column\(s\) id"),
    ],
)
def test_files_that_cannot_be_read_at_all(data: bytes, problem: str) -> None:
    with pytest.raises(DelimitedError, match=problem):
        list(read_records([data], required=["id"] if b"x;y" in data else ()))


def test_dialects_that_cannot_work_are_refused() -> None:
    for separator in ('"', "\n", ";;"):
        with pytest.raises(DelimitedError):
            Dialect(separator=separator)
    with pytest.raises(DelimitedError, match="not supported"):
        Dialect(encoding="utf-16")

"""Campaign delimited text (docs/file-format.md): the files exchanged through Campaign's SFTP.

Writing: a header row, then one line per record; a field is quoted when it holds the separator, a
quote, a line break, or starts or ends with whitespace (quotes doubled inside); an empty field is a
null; booleans 1/0; dates YYYY/MM/DD and date-times YYYY/MM/DD HH:MM:SS in UTC. So any text survives
the round trip.

Reading: Python's csv module (C speed) over the bytes decoded with surrogate escapes, so one record
holding invalid UTF-8 is reported as malformed by line number and the rest of the file goes on; a
UTF-8 byte-order mark is tolerated; CRLF or LF. Records are checked against the header's width. No I/O
here: callers hand in byte chunks (or files) and get records back.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

DEFAULT_SEPARATOR = ";"
DEFAULT_ENCODING = "utf-8"
MAX_FIELD_CHARS = csv.field_size_limit()  # 131,072: a longer field is a malformed record
# Encodings whose separator, quote and line-break bytes are plain ASCII, so a record splits the same
# before and after decoding.
ASCII_COMPATIBLE = frozenset({"utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "iso-8859-15", "cp1252", "ascii"})


class DelimitedError(ValueError):
    """The file as a whole cannot be read (no header, an unsupported encoding...)."""


@dataclasses.dataclass(frozen=True)
class Dialect:
    separator: str = DEFAULT_SEPARATOR
    encoding: str = DEFAULT_ENCODING

    def __post_init__(self) -> None:
        if len(self.separator) != 1 or self.separator in '"\r\n':
            raise DelimitedError(
                f"separator must be one character other than a quote or a line break: {self.separator!r}"
            )
        if codecs.lookup(self.encoding).name not in {codecs.lookup(e).name for e in ASCII_COMPATIBLE}:
            raise DelimitedError(f"encoding {self.encoding!r} is not supported (use UTF-8 or a Latin one)")


DEFAULT_DIALECT = Dialect()


# -- writing ----------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """One value as file text. Dates and date-times must already be strings (see campaign_date/_datetime)."""
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # never an exponent: 1e-07 reads as 0.0000001
    if isinstance(value, int | Decimal | str):
        return str(value) if not isinstance(value, Decimal) else format(value, "f")
    raise TypeError(f"a {type(value).__name__} cannot go into a delimited file")


def campaign_date(value: str | None) -> str | None:
    """An ISO date (YYYY-MM-DD, or the date part of a date-time) as YYYY/MM/DD."""
    if not value:
        return None
    return dt.date.fromisoformat(value[:10]).strftime("%Y/%m/%d")


def campaign_datetime(value: str | None) -> str | None:
    """An ISO date-time (offset or Z; naive means UTC) as YYYY/MM/DD HH:MM:SS in UTC."""
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.strftime("%Y/%m/%d %H:%M:%S")


def encode_line(fields: Iterable[str], separator: str = DEFAULT_SEPARATOR) -> str:
    """One record, with its line end, quoting only the fields that need it."""
    needs_quotes = _needs_quotes(separator)
    return (
        separator.join(
            '"' + field.replace('"', '""') + '"' if field and needs_quotes(field) else field for field in fields
        )
        + "\n"
    )


_QUOTE_TESTS: dict[str, Any] = {}


def _needs_quotes(separator: str) -> Any:
    test = _QUOTE_TESTS.get(separator)
    if test is None:
        test = _QUOTE_TESTS[separator] = re.compile(rf'[{re.escape(separator)}"\r\n]|^\s|\s$').search
    return test


# -- reading ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Record:
    line: int  # the physical line the record starts on (the header is line 1)
    values: dict[str, str]  # column name -> text ("" for an empty field)


@dataclasses.dataclass(frozen=True)
class Malformed:
    line: int
    reason: str  # names the problem, never the content


def read_records(
    chunks: Iterable[bytes], dialect: Dialect = DEFAULT_DIALECT, *, required: Sequence[str] = ()
) -> Iterator[Record | Malformed]:
    """Records of a delimited file given as byte chunks, each as a Record or a Malformed (and go on).

    Raises DelimitedError when the file has no header or lacks a `required` column: nothing in it can
    be read then."""
    lines = _decoded_lines(chunks, dialect.encoding)
    reader = csv.reader(lines, delimiter=dialect.separator, quotechar='"', doublequote=True, strict=True)
    header = _header(reader, required)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Malformed(start, _csv_problem(exc))
            continue
        if not fields:
            continue  # a blank line
        if len(fields) != len(header):
            yield Malformed(start, f"{len(fields)} fields where the header has {len(header)}")
            continue
        if any(_has_bad_bytes(f) for f in fields):
            yield Malformed(start, f"not valid {dialect.encoding}")
            continue
        yield Record(start, dict(zip(header, fields, strict=True)))


def _header(reader: Any, required: Sequence[str]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise DelimitedError("empty file: no header row") from None
    except csv.Error as exc:
        raise DelimitedError(f"unreadable header: {_csv_problem(exc)}") from None
    if any(_has_bad_bytes(name) for name in header):
        raise DelimitedError("the header is not valid text in the file's encoding")
    header = [name.strip() for name in header]
    if len(set(header)) != len(header):
        raise DelimitedError("the header names a column twice")
    missing = [name for name in required if name not in header]
    if missing:
        raise DelimitedError(f"the header lacks column(s) {', '.join(missing)} ({_found(header)})")
    return header


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _found(header: Sequence[str]) -> str:
    """The columns the header has, to spot a typo; only when they all look like names: a file that lost its
    header has a data row there (ids, e-mail addresses), which must not reach a log or a run note."""
    if all(_COLUMN_NAME.fullmatch(name) for name in header):
        return f"has {', '.join(header)}"
    return f"its first line has {len(header)} field(s) that are not all column names: a data row?"


def _decoded_lines(chunks: Iterable[bytes], encoding: str) -> Iterator[str]:
    """Text lines, line ends kept (csv needs them inside quoted fields); invalid bytes as surrogates."""
    decoder = codecs.getincrementaldecoder("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)(
        errors="surrogateescape"
    )
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")  # only \n ends a line: str.splitlines would cut at \u2028 too
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


_SURROGATES = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    return _SURROGATES.search(text) is not None


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a field longer than {MAX_FIELD_CHARS} characters"
    if "unexpected end of data" in text or "EOF" in text:
        return "a quoted field is not closed before the end of the file"
    return "badly quoted field"  # csv's own message may quote the content: never pass it on


def header_line(columns: Sequence[str], separator: str = DEFAULT_SEPARATOR) -> str:
    return encode_line(columns, separator)


def to_row(values: Mapping[str, Any], columns: Sequence[str]) -> list[str]:
    """The cells of one record in column order (missing columns are empty)."""
    return [cell(values.get(name)) for name in columns]

"""Campaign delimited text, read and written by hand (docs/file-format.md).

Deliberately not Python's `csv` module: the connector writes its import files with its own code, and the sandbox
must read them with an independent implementation, so that a quoting bug in one cannot be hidden by the same bug
in the other. The rules:

- first line: header of column names; separator `;` by default (any single character but `"`, CR or LF);
- records end with LF, CRLF is accepted; a UTF-8 BOM at the start is skipped;
- a field may be enclosed in double quotes, and must be when it holds the separator, `"`, CR or LF, or starts or
  ends with whitespace; inside quotes `"` is doubled; an unquoted field is taken exactly as it is;
- an empty field is an empty value (None).

Reading never gives up on a whole file for one bad record: a record that breaks the rules comes back with a
reason (and its line number) so the caller can reject it and go on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

BOM = "\ufeff"


@dataclasses.dataclass(frozen=True)
class Record:
    line: int  # physical line (1-based) where the record starts
    fields: list[str]
    problem: str | None = None  # why the record is malformed; fields are then partial


def check_separator(separator: str) -> str:
    if len(separator) != 1 or separator in '"\r\n':
        raise ValueError("the separator must be one character other than '\"', CR and LF")
    return separator


def parse(text: str, separator: str = ";") -> Iterator[Record]:
    """Every record of `text` in order, the header included (it is the first)."""
    check_separator(separator)
    if text.startswith(BOM):
        text = text[1:]
    pos = 0
    end = len(text)
    line = 1
    while pos < end:
        # A line with nothing on it is no record (a trailing blank line, or CRLF leftovers).
        if text[pos] == "\n":
            pos += 1
            line += 1
            continue
        if text.startswith("\r\n", pos):
            pos += 2
            line += 1
            continue
        start_line = line
        fields: list[str] = []
        problem: str | None = None
        while True:
            if pos < end and text[pos] == '"':
                value, pos, newlines, closed = _quoted(text, pos + 1)
                line += newlines
                fields.append(value)
                if not closed:
                    problem = "a quoted field is not closed before the end of the file"
                    pos = end
                    break
                if pos >= end:
                    break
                if text[pos] == separator:
                    pos += 1
                    continue
                if text[pos] == "\n":
                    pos += 1
                    line += 1
                    break
                if text.startswith("\r\n", pos):
                    pos += 2
                    line += 1
                    break
                problem = "text after the closing quote of a field"
                pos, skipped = _skip_line(text, pos)
                line += skipped
                break
            newline = text.find("\n", pos)
            if newline < 0:
                newline = end
            cut = text.find(separator, pos, newline)
            stop = cut if cut >= 0 else newline
            value = text[pos:stop]
            if cut < 0 and value.endswith("\r"):
                value = value[:-1]
            if '"' in value and problem is None:
                problem = "a double quote inside a field that is not quoted"
            if "\r" in value and problem is None:
                problem = "a carriage return inside a field that is not quoted"
            fields.append(value)
            if cut >= 0:
                pos = cut + 1
                continue
            pos = newline + 1
            if newline < end:
                line += 1
            break
        yield Record(start_line, fields, problem)


def _quoted(text: str, pos: int) -> tuple[str, int, int, bool]:
    """(value, position after the closing quote, newlines inside, closed?) of a quoted field starting at pos."""
    parts: list[str] = []
    newlines = 0
    while True:
        quote = text.find('"', pos)
        if quote < 0:
            chunk = text[pos:]
            parts.append(chunk)
            return "".join(parts), len(text), newlines + chunk.count("\n"), False
        chunk = text[pos:quote]
        newlines += chunk.count("\n")
        parts.append(chunk)
        if text.startswith('""', quote):
            parts.append('"')
            pos = quote + 2
            continue
        return "".join(parts), quote + 1, newlines, True


def _skip_line(text: str, pos: int) -> tuple[int, int]:
    newline = text.find("\n", pos)
    return (len(text), 0) if newline < 0 else (newline + 1, 1)


def needs_quotes(value: str, separator: str) -> bool:
    return (
        separator in value
        or '"' in value
        or "\n" in value
        or "\r" in value
        or (value != "" and (value[0].isspace() or value[-1].isspace()))
    )


def format_field(value: str | None, separator: str = ";") -> str:
    if value is None or value == "":
        return ""
    if needs_quotes(value, separator):
        return '"' + value.replace('"', '""') + '"'
    return value


def format_record(values: Sequence[str | None], separator: str = ";") -> str:
    return separator.join(format_field(value, separator) for value in values) + "\n"


def write_text(header: Sequence[str], rows: Iterable[Sequence[str | None]], separator: str = ";") -> str:
    """A whole file: header, then one record per row, each ending with LF (no BOM)."""
    check_separator(separator)
    return format_record(header, separator) + "".join(format_record(row, separator) for row in rows)

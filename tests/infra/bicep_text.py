"""Just enough Bicep reading for structural tests: comments, strings, blocks, resources, top-level object entries.

No Bicep compiler can run offline here, so the tests read the text. The scanner knows Bicep's lexical rules that
matter for that: `//` and `/* */` comments, '...' strings with backslash escapes and `${...}` interpolation
(which may nest strings), and '''...''' verbatim strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_OPENERS = {"{": "}", "[": "]", "(": ")"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}


class BicepSyntaxError(ValueError):
    """The text is not lexically valid Bicep (unterminated string or comment)."""


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _end_of_string(text: str, i: int, start: int) -> int:
    """`i` is just past an opening quote; return the index just past the closing one."""
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == "'":
            return i + 1
        elif text[i] == "\n":
            break
        elif text.startswith("${", i):
            i = _end_of_interpolation(text, i + 2, start)
        else:
            i += 1
    raise BicepSyntaxError(f"line {_line(text, start)}: string not closed on its line")


def _end_of_interpolation(text: str, i: int, start: int) -> int:
    depth = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _end_of_string(text, i + 1, i)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    raise BicepSyntaxError(f"line {_line(text, start)}: interpolation not closed")


@lru_cache(maxsize=512)  # the same texts are scanned again and again while walking nested blocks
def _spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, 'comment' | 'string') spans, in order."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(text):
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            spans.append((i, end, "comment"))
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                raise BicepSyntaxError(f"line {_line(text, i)}: block comment not closed")
            end = close + 2
            spans.append((i, end, "comment"))
        elif text.startswith("'''", i):
            close = text.find("'''", i + 3)
            if close < 0:
                raise BicepSyntaxError(f"line {_line(text, i)}: multi-line string not closed")
            end = close + 3
            spans.append((i, end, "string"))
        elif text[i] == "'":
            end = _end_of_string(text, i + 1, i)
            spans.append((i, end, "string"))
        else:
            i += 1
            continue
        i = end
    return tuple(spans)


def _blank(segment: str) -> str:
    return "".join("\n" if c == "\n" else " " for c in segment)


def strip_comments(text: str) -> str:
    """The text with comments blanked out (same length and line numbers)."""
    out, last = [], 0
    for start, end, kind in _spans(text):
        if kind == "comment":
            out += [text[last:start], _blank(text[start:end])]
            last = end
    return "".join([*out, text[last:]])


@lru_cache(maxsize=512)
def code_mask(text: str) -> str:
    """The text with comments and string contents blanked (quotes kept): only code characters remain."""
    out, last = [], 0
    for start, end, kind in _spans(text):
        if kind == "comment":
            out += [text[last:start], _blank(text[start:end])]
        else:
            out += [text[last:start], "'", _blank(text[start + 1 : end - 1]), "'"]
        last = end
    return "".join([*out, text[last:]])


def bracket_problems(text: str) -> list[str]:
    """Unbalanced or mismatched (), [], {} in code, and lexical errors."""
    try:
        mask = code_mask(text)
    except BicepSyntaxError as error:
        return [str(error)]
    problems, stack = [], []
    for pos, char in enumerate(mask):
        if char in _OPENERS:
            stack.append((char, pos))
        elif char in _CLOSERS:
            if not stack or stack[-1][0] != _CLOSERS[char]:
                problems.append(f"line {_line(text, pos)}: unexpected {char!r}")
                return problems
            stack.pop()
    problems += [f"line {_line(text, pos)}: {char!r} never closed" for char, pos in stack]
    return problems


def block_at(text: str, open_pos: int) -> str:
    """The balanced bracket block that opens at `open_pos` (inclusive of both brackets)."""
    mask = code_mask(text)
    opener = mask[open_pos]
    if opener not in _OPENERS:
        raise ValueError(f"no bracket at {open_pos}")
    depth = 0
    for pos in range(open_pos, len(mask)):
        if mask[pos] == opener:
            depth += 1
        elif mask[pos] == _OPENERS[opener]:
            depth -= 1
            if depth == 0:
                return text[open_pos : pos + 1]
    raise BicepSyntaxError(f"line {_line(text, open_pos)}: {opener!r} never closed")


def _end_of_value(mask: str, start: int) -> int:
    """End of a value that starts at `start`: the first newline outside any bracket it opens (a value such as
    `union(tags, {...})` or a `cond ? {...} : {...}` ternary can span lines)."""
    depth = 0
    for pos in range(start, len(mask)):
        char = mask[pos]
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            if depth == 0:
                return pos  # the enclosing block closes on the value's own line
            depth -= 1
        elif char == "\n" and depth == 0:
            # A ternary continues on the next line (`? {...}` / `: {...}`); anything else ends here.
            rest = mask[pos + 1 :].lstrip()
            if not rest.startswith(("?", ":")) or re.match(r"[ \t]*[A-Za-z_]\w*[ \t]*:", mask[pos + 1 :]):
                return pos
    return len(mask)


def top_level_entries(block: str) -> dict[str, str]:
    """Entries `key: value` directly inside an object block `{...}`; a bracketed value is returned whole."""
    mask = code_mask(block)
    entries: dict[str, str] = {}
    depth, pos = 0, 0
    key_re = re.compile(r"[ \t]*([A-Za-z_]\w*|'[^'\n]*')[ \t]*:[ \t]*")
    while pos < len(mask):
        char = mask[pos]
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
        elif char == "\n" and depth == 1:
            match = key_re.match(block, pos + 1)
            if match and mask[match.start(1)] != " ":
                key = match.group(1).strip("'")
                value_start = match.end()
                end = _end_of_value(mask, value_start)
                value = strip_comments(block[value_start:end]).strip()
                entries[key] = value
                pos = end
                continue
        pos += 1
    return entries


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: str

    def get(self, *path: str) -> str | None:
        """The raw value at a property path, e.g. get('properties', 'sku', 'name'); None when absent."""
        value: str | None = self.body
        for key in path:
            if value is None or not value.startswith("{"):
                return None
            value = top_level_entries(value).get(key)
        return value


_RESOURCE_RE = re.compile(
    r"^resource\s+(\w+)\s+'([^'@]+)@([^']+)'\s+(existing\s+)?=\s*(?:if\s*\([^\n]*?\)\s*)?\{", re.MULTILINE
)


def resources(text: str) -> list[Resource]:
    text = strip_comments(text)
    return [
        Resource(m.group(1), m.group(2), m.group(3), bool(m.group(4)), block_at(text, m.end() - 1))
        for m in _RESOURCE_RE.finditer(text)
    ]


def declarations(text: str, keyword: str) -> dict[str, str]:
    """`var`/`param`/`output` name -> the raw text after the name (type and default, or value); a value spanning
    lines (a block, a call, a ternary) is returned whole."""
    text = strip_comments(text)
    mask = code_mask(text)
    found: dict[str, str] = {}
    for match in re.finditer(rf"^{keyword}\s+(\w+)\s*", text, re.MULTILINE):
        rest_start = match.end()
        eq = re.compile(r"[^\n=]*=\s*").match(mask, rest_start)
        end = _end_of_value(mask, eq.end()) if eq else text.find("\n", rest_start)
        found[match.group(1)] = text[rest_start : len(text) if end < 0 else end].strip()
    return found


def decorators(text: str, keyword: str = "param") -> dict[str, str]:
    """Declaration name -> the decorator text written above it (`@description(...)`, `@allowed([...])`, ...)."""
    lines = strip_comments(text).split("\n")
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = re.match(rf"{keyword}\s+(\w+)", line)
        if not match:
            continue
        start = index
        while start > 0 and (lines[start - 1].startswith(("@", " ", "\t", "]", ")")) and lines[start - 1].strip()):
            start -= 1
        found[match.group(1)] = "\n".join(lines[start:index])
    return found


def description(decorator_text: str) -> str:
    match = re.search(r"@description\('((?:[^'\\]|\\.)*)'\)", decorator_text)
    return match.group(1).replace("\\'", "'") if match else ""


def split_top_level(text: str, separator: str) -> list[str]:
    """`text` split at `separator` characters outside brackets and strings."""
    mask = code_mask(text)
    parts, depth, last = [], 0, 0
    for pos, char in enumerate(mask):
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[last:pos])
            last = pos + 1
    parts.append(text[last:])
    return [part.strip() for part in parts]


def split_ternary(expr: str) -> tuple[str, str, str] | None:
    """`cond ? a : b` (outside brackets) -> (cond, a, b); anything else -> None."""
    mask = code_mask(expr)
    depth, question = 0, -1
    for pos, char in enumerate(mask):
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth -= 1
        elif depth == 0 and char == "?" and question < 0 and mask[pos + 1 : pos + 2] not in ("?", "."):
            question = pos
        elif depth == 0 and char == ":" and question >= 0:
            return expr[:question].strip(), expr[question + 1 : pos].strip(), expr[pos + 1 :].strip()
    return None


def unquote(value: str | None) -> str | None:
    """'abc' -> abc; anything that is not a plain string literal -> None."""
    if value and re.fullmatch(r"'[^'\\$]*'", value):
        return value[1:-1]
    return None

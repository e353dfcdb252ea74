"""OData pieces of the sandbox: error shape, Prefer header, query options and a small $filter."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from sandbox.dataverse.schema import Column, TableDef

# Error codes. Sources: reference/dataverse.md sections 3, 4, 6 and 8; "community" ones are seen in
# public client code against real Dataverse, not in a Microsoft list.
ODATA_PARSE = "0x80060888"  # OData layer: unknown segment/property, bad syntax (community)
RECORD_NOT_FOUND = "0x80040217"  # "<entity> With Id = <guid> Does Not Exist" (community)
DUPLICATE_RECORD = "0x80040237"  # "A record with matching key values already exists." (community)
VALIDATION = "0x80044331"  # e.g. subject longer than 200 (MS batch doc)
EXPIRED_VERSION_STAMP = "0x80044352"  # ExpiredVersionStamp (change tracking doc)
THROTTLE_REQUESTS = "0x80072322"  # api-limits.md
THROTTLE_EXECUTION_TIME = "0x80072321"
THROTTLE_CONCURRENCY = "0x80072326"
OPTION_OUT_OF_RANGE = "0x8004431a"  # picklist value outside the option set (unverified code)
NOT_MODELLED = "0x80040216"  # [U] code on the sandbox's 501 answers (Dataverse's generic unexpected error)

JSON_TYPE = "application/json; odata.metadata=minimal"


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def not_found_segment(segment: str) -> ODataError:
    return ODataError(404, ODATA_PARSE, f"Resource not found for the segment '{segment}'.")


def record_not_found(logical_name: str, row_id: str) -> ODataError:
    return ODataError(404, RECORD_NOT_FOUND, f"Entity '{logical_name}' With Id = {row_id} Does Not Exist")


def unknown_property(table: TableDef, name: str) -> ODataError:
    return ODataError(
        400,
        ODATA_PARSE,
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table.logical_name}'.",
    )


def not_modelled(what: str) -> ODataError:
    """The sandbox's loud answer for a real Dataverse feature it does not model (never a silent success)."""
    return ODataError(501, NOT_MODELLED, f"{what} is not modelled by the Dataverse sandbox (see its README).")


_PREFERENCE = re.compile(r'\s*([^=,\s]+)\s*(?:=\s*("[^"]*"|[^,]*))?\s*(?:,|$)')


def parse_prefer(values: list[str]) -> dict[str, str]:
    """Prefer preferences, e.g. {'odata.maxpagesize': '100', 'odata.track-changes': ''}; quoted values may
    hold commas (odata.include-annotations="a,b")."""
    prefs: dict[str, str] = {}
    for header in values:
        pos = 0
        while pos < len(header):
            match = _PREFERENCE.match(header, pos)
            if match is None or match.end() == pos:
                break
            pos = match.end()
            if match.group(1):
                prefs[match.group(1).lower()] = (match.group(2) or "").strip().strip('"')
    return prefs


# System query options (OData 4.0 part 2, section 5). The sandbox models some; the others are refused.
MODELLED_OPTIONS = frozenset({"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$deltatoken"})
UNMODELLED_OPTIONS = frozenset({"$expand", "$apply", "$search", "$compute", "$levels", "$format", "$index"})
# Dataverse's own query parameters that select another query language or a saved view.
DATAVERSE_QUERIES = {
    "sql": "?sql= (SQL queries)",
    "fetchXml": "?fetchXml=",
    "savedQuery": "?savedQuery=",
    "userQuery": "?userQuery=",
}


def check_options(query: dict[str, str], allowed: frozenset[str]) -> None:
    """Refuse what is not modelled: unknown system options 400, known-but-unmodelled ones 501.

    Parameter aliases (@p) are allowed; `tag` is Dataverse's shared-variable parameter (bulk operations doc).
    """
    for name in query:
        if name.startswith("@") or name == "tag" or name in allowed:
            continue
        if name == "$skip":
            raise ODataError(400, ODATA_PARSE, "The query parameter $skip is not supported.")
        if name in UNMODELLED_OPTIONS or (name.startswith("$") and name in MODELLED_OPTIONS):
            raise not_modelled(f"The query option '{name}' here")
        if name.startswith("$"):
            raise ODataError(400, ODATA_PARSE, f"The system query option '{name}' is not supported.")
        if name in DATAVERSE_QUERIES:
            raise not_modelled(DATAVERSE_QUERIES[name])
        # [U] Dataverse may ignore unknown custom options; the sandbox refuses them so nothing passes unnoticed.
        raise ODataError(400, ODATA_PARSE, f"The query parameter '{name}' is not known to the Dataverse sandbox.")


def parse_query(raw: str) -> dict[str, str]:
    return dict(parse_qsl(raw, keep_blank_values=True))


def select_columns(table: TableDef, select: str | None) -> list[Column]:
    """Columns named by $select (all when absent); the primary key always comes back."""
    if not select:
        return list(table.columns)
    columns: list[Column] = []
    for name in select.split(","):
        name = name.strip()
        column = table.by_select_name(name)
        if column is None:
            raise unknown_property(table, name)
        columns.append(column)
    key = table.column(table.primary_key)
    if key is not None and key not in columns:
        columns.append(key)
    return columns


def project(row: dict[str, Any], columns: list[Column]) -> dict[str, Any]:
    get = row.get
    out: dict[str, Any] = {"@odata.etag": f'W/"{get("versionnumber", 0)}"'}
    for column in columns:
        out[column.select_name] = get(column.name)
    return out


def context_url(api_root: str, table: TableDef, columns: list[Column] | None, select: str | None) -> str:
    shape = f"({select})" if select else ""
    return f"{api_root}$metadata#{table.entity_set}{shape}"


# -- $filter -------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|"
    r'(?P<jstr>"(?:[^"\\]|\\.)*")'
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<date>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?)|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),=\[\]])"
    r"|(?P<alias>@[A-Za-z_]\w*)|(?P<word>[A-Za-z_][\w./]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}
_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda a, b: b.lower() in a.lower(),
    "startswith": lambda a, b: a.lower().startswith(b.lower()),
    "endswith": lambda a, b: a.lower().endswith(b.lower()),
}
Predicate = Callable[[dict[str, Any]], bool]


Getter = Callable[[dict[str, Any]], Any]


def table_resolver(table: TableDef) -> Callable[[str], Getter]:
    """Property names of a table's rows in $filter: column names, and `_x_value` for lookups."""

    def resolve(name: str) -> Getter:
        column = table.by_select_name(name) or table.column(name)
        if column is None:
            raise unknown_property(table, name)
        key = column.name
        return lambda row: row.get(key)

    return resolve


def path_resolver(properties: frozenset[str], type_name: str) -> Callable[[str], Getter]:
    """Property paths of metadata items (plain dicts), e.g. `CanChangeTrackingBeEnabled/Value`.

    The first step must be a property the sandbox models for that type; anything else is refused like
    an unknown property (400), so a filter can never silently match nothing.
    """

    def resolve(name: str) -> Getter:
        steps = name.split("/")
        if steps[0] not in properties:
            raise ODataError(400, ODATA_PARSE, f"Could not find a property named '{steps[0]}' on type '{type_name}'.")

        def get(item: dict[str, Any]) -> Any:
            value: Any = item
            for step in steps:
                value = value.get(step) if isinstance(value, dict) else None
            return value

        return get

    return resolve


_ARITHMETIC = frozenset({"add", "sub", "mul", "div", "mod", "in", "has"})
_CRM_FUNCTIONS = {"microsoft.dynamics.crm.in": False, "microsoft.dynamics.crm.notin": True}  # name -> negated


def compile_filter(text: str, resolve: Callable[[str], Getter], aliases: dict[str, str] | None = None) -> Predicate:
    """A predicate for a subset of $filter: comparisons, and/or/not, parentheses, contains/startswith/endswith,
    Microsoft.Dynamics.CRM.In/NotIn and parameter aliases (@p). Other functions and operators answer 501."""
    parser = _FilterParser(resolve, _tokens(text), text.strip(), aliases or {})
    predicate = parser.parse_or()
    if parser.i != len(parser.tokens):
        raise _syntax(text, parser.i)
    return predicate


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _syntax(text, pos)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _syntax(text: str, at: int) -> ODataError:
    return ODataError(400, ODATA_PARSE, f"Syntax error at position {at} in '$filter'.")


class _FilterParser:
    def __init__(
        self, resolve: Callable[[str], Getter], tokens: list[tuple[str, str]], text: str, aliases: dict[str, str]
    ) -> None:
        self.resolve, self.tokens, self.text, self.i, self.aliases = resolve, tokens, text, 0, aliases

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        at = self.i + ahead
        return self.tokens[at] if at < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end" or (value is not None and token[1].lower() != value.lower()):
            raise _syntax(self.text, self.i)
        self.i += 1
        return token

    def parse_or(self) -> Predicate:
        left = self.parse_and()
        while self.peek()[1].lower() == "or":
            self.take()
            right = self.parse_and()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def parse_and(self) -> Predicate:
        left = self.parse_unary()
        while self.peek()[1].lower() == "and":
            self.take()
            right = self.parse_unary()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def parse_unary(self) -> Predicate:
        kind, value = self.peek()
        if value.lower() == "not":
            self.take()
            inner = self.parse_unary()
            return lambda row: not inner(row)
        if value == "(":
            self.take()
            inner = self.parse_or()
            self.take(")")
            return inner
        if kind == "word" and self.peek(1)[1] == "(":
            return self.function()
        getter = self.resolve(self.take()[1])
        operator = self.take()[1].lower()
        if operator in _ARITHMETIC:
            raise not_modelled(f"The $filter operator '{operator}'")
        if operator not in _COMPARE:
            raise _syntax(self.text, self.i)
        literal = self.literal()
        compare = _COMPARE[operator]
        return lambda row: compare(_comparable(getter(row)), literal)

    def function(self) -> Predicate:
        name = self.take()[1]
        lowered = name.lower()
        if lowered in _CRM_FUNCTIONS:
            return self.crm_in(negated=_CRM_FUNCTIONS[lowered])
        if lowered not in _FUNCTIONS:
            raise not_modelled(f"The $filter function '{name}'")
        function = _FUNCTIONS[lowered]
        self.take("(")
        getter = self.resolve(self.take()[1])
        self.take(",")
        literal = self.literal()
        self.take(")")
        if not isinstance(literal, str):
            raise _syntax(self.text, self.i)

        def matches(row: dict[str, Any]) -> bool:
            value = getter(row)
            return isinstance(value, str) and function(value, literal)

        return matches

    def crm_in(self, negated: bool) -> Predicate:
        """Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['a','b']) (PA query-function reference)."""
        self.take("(")
        arguments: dict[str, Any] = {}
        while True:
            name = self.take()[1]
            self.take("=")
            if self.peek()[1] == "[":
                self.take("[")
                values: list[Any] = []
                while self.peek()[1] != "]":
                    values.append(self.literal())
                    if self.peek()[1] == ",":
                        self.take(",")
                self.take("]")
                arguments[name] = values
            else:
                arguments[name] = self.literal()
            if self.peek()[1] == ",":
                self.take(",")
                continue
            self.take(")")
            break
        prop, values = arguments.get("PropertyName"), arguments.get("PropertyValues") or []
        if set(arguments) != {"PropertyName", "PropertyValues"} or not isinstance(prop, str) or not values:
            raise ODataError(
                400, ODATA_PARSE, "Microsoft.Dynamics.CRM.In needs PropertyName='<name>' and PropertyValues=[...]."
            )
        getter = self.resolve(prop)
        wanted = {_text(v) for v in values}
        return lambda row: (_text(getter(row)) in wanted) != negated

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "alias":
            if value not in self.aliases:
                raise ODataError(400, ODATA_PARSE, f"The parameter alias '{value}' has no value in the query.")
            inner = _FilterParser(self.resolve, _tokens(self.aliases[value]), self.aliases[value], {})
            literal = inner.literal()
            if inner.i != len(inner.tokens):
                raise _syntax(self.aliases[value], inner.i)
            return literal
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind == "jstr":  # JSON string, as in collection parameters: PropertyValues=["a","b"]
            return json.loads(value)
        if kind in ("guid", "date"):
            return value.lower() if kind == "guid" else value
        if kind == "num":
            return float(value) if "." in value else int(value)
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered == "null":
            return None
        raise _syntax(self.text, self.i)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _comparable(value: Any) -> Any:
    return value.lower() if isinstance(value, str) and len(value) == 36 and value.count("-") == 4 else value

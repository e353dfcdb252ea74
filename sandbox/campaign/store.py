"""Records of one resource: opaque PKeys, unique custom key, audit and per-attribute modification times.

Not thread-safe on its own: the sandbox state serialises every call under one lock.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import functools
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sandbox.campaign import errors
from sandbox.campaign.schema import AttributeSpec, FilterSpec, ResourceSpec, ValueProblem

# Sent by clients but never written: Campaign maintains them (read-only in the metadata).
SERVER_MAINTAINED = frozenset({"PKey", "href", "created", "lastModified"})


@dataclasses.dataclass
class Row:
    seq: int
    pkey: str
    values: dict[str, Any]  # attribute -> stored value (audit fields excluded)
    created: float
    last_modified: float
    attribute_times: dict[str, float]  # attribute -> when its value last changed


class Table:
    def __init__(self, spec: ResourceSpec) -> None:
        self.spec = spec
        self.rows: dict[int, Row] = {}
        self._by_pkey: dict[str, int] = {}
        self._by_key: dict[Any, int] = {}
        self._order: list[int] = []  # seqs in ascending order: keyset paging
        self._next_seq = 1

    # -- reads

    def __len__(self) -> int:
        return len(self.rows)

    def by_pkey(self, pkey: str) -> Row:
        seq = self._by_pkey.get(pkey)
        if seq is None:
            raise errors.invalid_pkey(pkey)
        return self.rows[seq]

    def by_key(self, value: Any) -> Row | None:
        seq = self._by_key.get(value)
        return self.rows[seq] if seq is not None else None

    def page(self, filters: list[tuple[FilterSpec, str]], after: int, limit: int) -> tuple[list[Row], int | None]:
        """Up to `limit` matching rows with seq > after, and the cursor of the next page (None: last)."""
        key = self.spec.key
        if len(filters) == 1 and key and filters[0][0].attribute == key and not filters[0][0].prefix:
            # A custom key is unique and indexed in Campaign: answer from the key index, not a scan.
            row = self.by_key(filters[0][1])
            return ([row] if row is not None and row.seq > after else []), None
        start = bisect.bisect_right(self._order, after)
        found: list[Row] = []
        for index in range(start, len(self._order)):
            row = self.rows[self._order[index]]
            if all(_matches(row, spec, value) for spec, value in filters):
                if len(found) == limit:
                    return found, found[-1].seq
                found.append(row)
        return found, None

    def page_sorted(
        self,
        filters: list[tuple[FilterSpec, str]],
        order: list[tuple[str, bool]],
        after: SortCursor | None,
        limit: int,
    ) -> tuple[list[Row], SortCursor | None]:
        """Like `page`, in `_order` order: (attribute, descending) pairs, ties broken by creation order.

        The cursor is the last row's sort values and seq (keyset), so the next page starts right after
        it even when rows are added or changed in between."""
        matching = [row for row in self.rows.values() if all(_matches(row, spec, value) for spec, value in filters)]
        directions = tuple(desc for _, desc in order)
        keyed = sorted(
            ((_SortKey(tuple(self.sort_value(row, name) for name, _ in order), row.seq, directions), row))
            for row in matching
        )
        start = 0
        if after is not None:
            bound = _SortKey(tuple(after.values), after.seq, directions)
            start = bisect.bisect_right([key for key, _ in keyed], bound)
        found = [row for _, row in keyed[start : start + limit + 1]]
        if len(found) <= limit:
            return found, None
        last = found[limit - 1]
        return found[:limit], SortCursor([self.sort_value(last, name) for name, _ in order], last.seq)

    def sort_value(self, row: Row, name: str) -> Any:
        if name == "created":
            return row.created
        if name == "lastModified":
            return row.last_modified
        return row.values.get(name)

    def count(self, filters: list[tuple[FilterSpec, str]]) -> int:
        if not filters:
            return len(self.rows)
        return sum(1 for row in self.rows.values() if all(_matches(row, s, v) for s, v in filters))

    # -- writes

    def create(
        self,
        body: Mapping[str, Any],
        now: float,
        visible: Iterable[AttributeSpec],
        link_exists: Callable[[str, str], bool],
    ) -> Row:
        attrs = {a.name: a for a in visible}
        values = self._checked(body, attrs, link_exists)
        key = self.spec.key
        key_value = values.get(key) if key else None
        if key and key_value not in (None, "") and key_value in self._by_key:
            raise errors.duplicate_key(self.spec.name, key, key_value)
        for name, attr in attrs.items():
            if name not in values and name not in SERVER_MAINTAINED:
                values[name] = attr.default()
        row = self._insert(values, now, now, {name: now for name in values})
        return row

    def patch(
        self,
        pkey: str,
        body: Mapping[str, Any],
        now: float,
        visible: Iterable[AttributeSpec],
        link_exists: Callable[[str, str], bool],
    ) -> Row:
        row = self.by_pkey(pkey)
        attrs = {a.name: a for a in visible}
        values = self._checked(body, attrs, link_exists)
        key = self.spec.key
        if key and key in values and values[key] != row.values.get(key):
            # "A custom key cannot be changed with PATCH" (must-read.md).
            raise errors.bad_request(
                f"The value of the '{key}' property is not valid (a custom key cannot be modified)."
            )
        changed = [name for name, value in values.items() if row.values.get(name) != value]
        for name in changed:
            row.values[name] = values[name]
            row.attribute_times[name] = now
        if changed:
            row.last_modified = now
        return row

    def delete(self, pkey: str) -> Row:
        row = self.by_pkey(pkey)
        del self.rows[row.seq]
        del self._by_pkey[pkey]
        key = self.spec.key
        if key and row.values.get(key) not in (None, ""):
            self._by_key.pop(row.values[key], None)
        index = bisect.bisect_left(self._order, row.seq)
        del self._order[index]
        return row

    def seed(
        self,
        values: Mapping[str, Any],
        *,
        created: float,
        last_modified: float,
        attribute_times: Mapping[str, float],
    ) -> Row:
        """Insert a trusted row (control API): values already checked by the caller."""
        key = self.spec.key
        if key and values.get(key) not in (None, "") and values[key] in self._by_key:
            raise ValueError(f"duplicate {key} in seed rows")
        filled = {a.name: a.default() for a in self.spec.attributes if a.name not in SERVER_MAINTAINED}
        filled.update(values)
        times = {name: created for name in filled}
        times.update(attribute_times)
        return self._insert(filled, created, last_modified, times)

    def insert_imported(self, values: Mapping[str, Any], now: float) -> Row:
        """A record created by a workflow's Update data: checked values, every other attribute at its default."""
        filled = {a.name: a.default() for a in self.spec.attributes if a.name not in SERVER_MAINTAINED}
        for name, value in values.items():
            filled[name] = value if value is not None else self.spec_default(name)
        return self._insert(filled, now, now, {name: now for name in filled})

    def update_imported(self, row: Row, values: Mapping[str, Any], now: float) -> bool:
        """Update data on an existing record: only changed values move the modification times. True if any did."""
        changed = False
        for name, value in values.items():
            stored = value if value is not None else self.spec_default(name)
            if row.values.get(name) != stored:
                row.values[name] = stored
                row.attribute_times[name] = now
                changed = True
        if changed:
            row.last_modified = now
        return changed

    def change(self, row: Row, values: Mapping[str, Any], now: float) -> list[str]:
        """Trusted change (control API, 'as a Campaign user'): the attributes whose value really changed."""
        changed = [name for name, value in values.items() if row.values.get(name) != value]
        for name in changed:
            row.values[name] = values[name]
            row.attribute_times[name] = now
        if changed:
            row.last_modified = now
        return changed

    def spec_default(self, name: str) -> Any:
        attr = self.spec.attribute(name)
        return attr.default() if attr is not None else None

    def rename(self, mapping: Mapping[str, str]) -> None:
        for row in self.rows.values():
            for old, new in mapping.items():
                if old in row.values and old != new:
                    row.values[new] = row.values.pop(old)
                    if old in row.attribute_times:
                        row.attribute_times[new] = row.attribute_times.pop(old)

    # -- internals

    def _insert(self, values: dict[str, Any], created: float, last_modified: float, times: dict[str, float]) -> Row:
        seq = self._next_seq
        self._next_seq += 1
        pkey = "@" + secrets.token_urlsafe(36)  # opaque, like Campaign's
        row = Row(seq, pkey, values, created, last_modified, times)
        self.rows[seq] = row
        self._by_pkey[pkey] = seq
        key = self.spec.key
        if key and values.get(key) not in (None, ""):
            self._by_key[values[key]] = seq
        self._order.append(seq)
        return row

    def _checked(
        self, body: Mapping[str, Any], attrs: Mapping[str, AttributeSpec], link_exists: Callable[[str, str], bool]
    ) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise errors.bad_request("The request body must be a JSON object.")
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name in SERVER_MAINTAINED:
                raise errors.read_only_property(name, self.spec.name)
            attr = attrs.get(name)
            if attr is None and self.spec.name == "profile" and name == "orgUnit":
                raise errors.not_modelled("organizational units (a profile's orgUnit)")
            if attr is None:
                raise errors.unknown_property(name, self.spec.name)
            if attr.type == "link":
                values[name] = _link_value(attr, value, link_exists)
                continue
            try:
                values[name] = attr.check(value)
            except ValueProblem as problem:
                raise errors.bad_request(str(problem)) from None
        return values


def _link_value(attr: AttributeSpec, value: Any, link_exists: Callable[[str, str], bool]) -> str | None:
    if value is None:
        return None
    pkey = value.get("PKey") if isinstance(value, Mapping) else None
    if not isinstance(pkey, str) or not link_exists(attr.target or "", pkey):
        raise errors.bad_request(f"'{attr.name}' link target does not exist.")
    return pkey


def _matches(row: Row, spec: FilterSpec, value: str) -> bool:
    stored = row.values.get(spec.attribute)
    if spec.prefix:
        candidates = [row.values.get("email"), row.values.get("lastName")]
        return any(isinstance(c, str) and c.startswith(value) for c in candidates)
    if isinstance(stored, bool):
        return str(stored).lower() == value.lower()
    return str(stored) == value if stored is not None else False


@dataclasses.dataclass(frozen=True)
class SortCursor:
    values: list[Any]
    seq: int


@functools.total_ordering
class _SortKey:
    """Orders rows by their `_order` values, each ascending or descending, then by seq (always ascending)."""

    __slots__ = ("directions", "seq", "values")

    def __init__(self, values: tuple[Any, ...], seq: int, directions: tuple[bool, ...]) -> None:
        self.values = values
        self.seq = seq
        self.directions = directions

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SortKey) and (self.values, self.seq) == (other.values, other.seq)

    def __lt__(self, other: _SortKey) -> bool:
        for mine, theirs, desc in zip(self.values, other.values, self.directions, strict=True):
            if mine == theirs:
                continue
            # An empty value sorts before any other [U: the database's NULL ordering is not documented].
            less = mine is None if mine is None or theirs is None else mine < theirs
            return less != desc
        return self.seq < other.seq


def encode_cursor(position: int | SortCursor) -> str:
    if isinstance(position, SortCursor):
        text = "lo:" + json.dumps([position.values, position.seq], separators=(",", ":"))
    else:
        text = f"ls:{position}"
    return "@" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token: str, *, sorted_: bool = False) -> Any:
    """The seq after which an unsorted page starts, or the SortCursor of a sorted one."""
    raw = token[1:] if token.startswith("@") else token
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if sorted_ and text.startswith("lo:"):
            values, seq = json.loads(text[3:])
            return SortCursor(list(values), int(seq))
        if not sorted_ and text.startswith("ls:"):
            return int(text[3:])
        raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise errors.bad_request(
            "The '_lineStart' parameter is not valid: use the next.href Campaign returned."
        ) from None

"""In-memory tables with change versions, compact enough for a million seeded contacts.

A table holds three kinds of rows:
- seeded rows, generated from their index on demand (see generate.py) and never stored;
- materialised rows: created rows, and seeded rows once changed (their full current state);
- tombstones: seeded rows that were deleted.

Versions are one counter for the whole organisation, like Dataverse's row versions. Every
create, update and delete bumps it and appends (version, id, deleted) to the table's change log;
a seeding run takes one version for all its rows. A delta token names a version: the changes
after it are the log entries and seeded segments with a higher version.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from sandbox.dataverse import generate
from sandbox.dataverse.schema import KeyDef, TableDef

Row = dict[str, Any]
KeyValues = tuple[Any, ...]


def key_value(value: Any) -> Any:
    """Index form of one key value: text compares case-insensitively, like SQL Server's default collation [U]."""
    return value.casefold() if isinstance(value, str) else value


@dataclasses.dataclass(frozen=True)
class Segment:
    start: int  # first index
    count: int
    seed: int
    version: int


@dataclasses.dataclass(frozen=True)
class ChangeWindow:
    """The changes of one table in (since, until]: seeded segments, then upserts by version, then deletes."""

    segments: tuple[Segment, ...]
    upserts: tuple[str, ...]
    deletes: tuple[str, ...]
    touched: frozenset[str]  # every id with a log entry in the window

    @property
    def seeded(self) -> int:
        return sum(s.count for s in self.segments)

    def __len__(self) -> int:
        return self.seeded + len(self.upserts) + len(self.deletes)


class Table:
    def __init__(self, definition: TableDef, generator: Callable[..., Row] | None = None) -> None:
        self.definition = definition
        self.generator = generator
        self.segments: list[Segment] = []
        self.seeded = 0
        self.rows: dict[str, Row] = {}
        self.tombstones: set[str] = set()
        self.changed_seeded: set[int] = set()  # indices of seeded rows updated or deleted since seeding
        self.created: list[str] = []  # ids of non-seeded rows in creation order (deleted ones stay, skipped)
        self.log_versions: list[int] = []
        self.log_ids: list[str] = []
        self.log_deleted: list[bool] = []
        self.live = 0
        self._windows: OrderedDict[tuple[int, int], ChangeWindow] = OrderedDict()
        # Alternate keys: key logical name -> {normalised values: row id}. Only Active keys are indexed.
        self.key_index: dict[str, dict[KeyValues, str]] = {}

    # -- alternate keys ------------------------------------------------------------------------
    @staticmethod
    def key_values(key: KeyDef, row: Row) -> KeyValues | None:
        """The normalised values of `key` in `row`; None when one is null (such rows are not indexed [U])."""
        values = tuple(row.get(name) for name in key.attributes)
        if any(v is None for v in values):
            return None
        return tuple(key_value(v) for v in values)

    def find_by_key(self, key: KeyDef, values: KeyValues) -> str | None:
        return self.key_index.get(key.logical_name, {}).get(tuple(key_value(v) for v in values))

    def conflicting_key(self, row: Row, row_id: str) -> KeyDef | None:
        """The first active key whose values in `row` already belong to another row."""
        for key in self.definition.keys:
            index = self.key_index.get(key.logical_name)
            values = self.key_values(key, row) if index is not None else None
            if values is not None and index is not None and index.get(values, row_id) != row_id:
                return key
        return None

    def build_index(self, key: KeyDef) -> bool:
        """Index every live row for `key`; False (nothing indexed) when existing rows hold duplicates."""
        index: dict[KeyValues, str] = {}
        pk = self.definition.primary_key
        for _, row in self.scan(("s", 0), tuple(dict.fromkeys((pk, *key.attributes)))):
            values = self.key_values(key, row)
            if values is None:
                continue
            if values in index:
                return False
            index[values] = row[pk]
        self.key_index[key.logical_name] = index
        return True

    def _index(self, row: Row | None, row_id: str, add: bool) -> None:
        if row is None:
            return
        for key in self.definition.keys:
            index = self.key_index.get(key.logical_name)
            values = self.key_values(key, row) if index is not None else None
            if values is None or index is None:
                continue
            if add:
                index[values] = row_id
            elif index.get(values) == row_id:
                del index[values]

    # -- reads ---------------------------------------------------------------------------------
    def seeded_index(self, row_id: str) -> int | None:
        if not self.segments:
            return None
        index = generate.index_of(row_id)
        if index is None or index >= self.seeded:
            return None
        segment = self._segment_of(index)
        return index if generate.guid_for(index, segment.seed) == row_id else None

    def get(self, row_id: str) -> Row | None:
        row = self.rows.get(row_id)
        if row is not None:
            return row
        index = self.seeded_index(row_id)
        if index is None or row_id in self.tombstones:
            return None
        return self._generate(index)

    def _segment_of(self, index: int) -> Segment:
        starts = [s.start for s in self.segments]
        return self.segments[bisect.bisect_right(starts, index) - 1]

    def _generate(self, index: int, segment: Segment | None = None) -> Row:
        segment = segment or self._segment_of(index)
        assert self.generator is not None
        return self.generator(index, segment.seed, segment.version)

    def seeded_row(self, index: int, segment: Segment, columns: tuple[str, ...] | None = None) -> Row | None:
        """Current state of seeded row `index` (None if deleted); generated rows hold only `columns` if given."""
        if index in self.changed_seeded:
            row_id = generate.guid_for(index, segment.seed)
            row = self.rows.get(row_id)
            if row is not None:
                return row
            if row_id in self.tombstones:
                return None
        if self.generator is None:
            return None
        if columns is None:
            return self.generator(index, segment.seed, segment.version)
        return self.generator(index, segment.seed, segment.version, columns)

    def scan(
        self, cursor: tuple[str, int], columns: tuple[str, ...] | None = None
    ) -> Iterator[tuple[tuple[str, int], Row]]:
        """Live rows from `cursor` on, each with the cursor of the row after it.

        Cursor ("s", i) is seeded index i; ("c", j) is the j-th created row. Rows seeded after a scan
        moved past the seeded part are not returned to that scan; the delta after it has them.
        """
        kind, pos = cursor
        if kind == "s":
            for segment in list(self.segments):
                end = segment.start + segment.count
                for index in range(max(pos, segment.start), end):
                    row = self.seeded_row(index, segment, columns)
                    if row is not None:
                        yield ("s", index + 1), row
                pos = max(pos, end)
            pos = 0
        for j in range(pos, len(self.created)):
            row = self.rows.get(self.created[j])
            if row is not None:
                yield ("c", j + 1), row

    def window(self, since: int, until: int) -> ChangeWindow:
        """Changes in (since, until]; immutable once `until` is past, so cached for paging."""
        key = (since, until)
        cached = self._windows.get(key)
        if cached is not None:
            self._windows.move_to_end(key)
            return cached
        lo = bisect.bisect_right(self.log_versions, since)
        hi = bisect.bisect_right(self.log_versions, until)
        last: dict[str, tuple[int, bool]] = {}
        for i in range(lo, hi):
            last[self.log_ids[i]] = (self.log_versions[i], self.log_deleted[i])
        ordered = sorted(last.items(), key=lambda item: item[1][0])
        window = ChangeWindow(
            segments=tuple(s for s in self.segments if since < s.version <= until),
            upserts=tuple(i for i, (_, deleted) in ordered if not deleted),
            deletes=tuple(i for i, (_, deleted) in ordered if deleted),
            touched=frozenset(last),
        )
        self._windows[key] = window
        if len(self._windows) > 16:
            self._windows.popitem(last=False)
        return window

    # -- writes (the Store calls these under its lock and records undo steps) --------------------
    def mark_seeded_change(self, row_id: str) -> bool:
        """Note that a seeded row no longer matches its generated state. True if `row_id` is seeded."""
        index = self.seeded_index(row_id)
        if index is None:
            return False
        self.changed_seeded.add(index)
        return True

    def _log(self, version: int, row_id: str, deleted: bool) -> None:
        self.log_versions.append(version)
        self.log_ids.append(row_id)
        self.log_deleted.append(deleted)


class Store:
    """All tables plus the organisation-wide version counter, behind one lock."""

    def __init__(self, tables: list[TableDef], *, clock: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.version = 1000
        self.expired_before = 0  # delta tokens naming a lower version answer ExpiredVersionStamp
        self.tables: dict[str, Table] = {}
        self.by_set: dict[str, Table] = {}
        for definition in tables:
            table = Table(definition, generate.contact if definition.logical_name == "contact" else None)
            self.tables[definition.logical_name] = table
            self.by_set[definition.entity_set] = table
            for key in definition.keys:
                table.build_index(key)
        pointers = PointerView(self)
        self.tables[pointers.definition.logical_name] = pointers  # type: ignore[assignment]
        self.by_set[pointers.definition.entity_set] = pointers  # type: ignore[assignment]
        self._journal: list[Callable[[], None]] | None = None
        # Committed-write listeners (webhooks). Inside a transaction events wait for the commit.
        self.listeners: list[Callable[[Any], None]] = []
        self._pending: list[Any] | None = None

    def add_table(self, definition: TableDef) -> Table:
        """A new, empty table (metadata create)."""
        with self.lock:
            table = Table(definition)
            self.tables[definition.logical_name] = table
            self.by_set[definition.entity_set] = table
            return table

    def set_definition(self, table: Table, definition: TableDef) -> None:
        """Replace a table's definition (metadata update); new alternate keys are indexed now.

        A key whose existing rows hold duplicates is stored with status Failed and not indexed, as
        Dataverse's index job fails (PA define-alternate-keys-entity.md, EntityKeyIndexStatus).
        """
        with self.lock:
            keys = []
            for key in definition.keys:
                if key.logical_name not in table.key_index and key.status == "Active":
                    table.definition = definition  # build_index reads the new columns
                    if not table.build_index(key):
                        key = dataclasses.replace(key, status="Failed")
                keys.append(key)
            definition = dataclasses.replace(definition, keys=tuple(keys))
            wanted = {k.logical_name for k in definition.keys if k.status == "Active"}
            for name in list(table.key_index):
                if name not in wanted:
                    del table.key_index[name]
            table.definition = definition
            table._windows.clear()

    def preload(self, table: Table, row: Row) -> None:
        """Store a row that exists from the start (systemusers): no version of its own, not in any delta."""
        with self.lock:
            row_id = row[table.definition.primary_key]
            row["versionnumber"] = self.version
            table.rows[row_id] = row
            table.created.append(row_id)
            table.live += 1

    def emit(self, event: Any) -> None:
        """Tell listeners about a write once it is committed (at once outside a transaction)."""
        if self._pending is not None:
            self._pending.append(event)
            return
        for listener in list(self.listeners):
            listener(event)

    def _bump(self) -> int:
        self.version += 1
        return self.version

    def seed(self, logical_name: str, count: int, seed: int) -> Segment:
        with self.lock:
            table = self.tables[logical_name]
            if table.generator is None:
                raise ValueError(f"table {logical_name} has no row generator")
            segment = Segment(table.seeded, count, seed, self._bump())
            table.segments.append(segment)
            table.seeded += count
            table.live += count
            if table.key_index:  # generated rows join the alternate key indexes
                table.key_index.clear()
                self.set_definition(table, table.definition)
            return segment

    def insert(self, table: Table, row: Row) -> None:
        with self.lock:
            row_id = row[table.definition.primary_key]
            version = self._bump()
            row["versionnumber"] = version
            was_tombstone = row_id in table.tombstones
            table.rows[row_id] = row
            table.tombstones.discard(row_id)
            seeded = table.mark_seeded_change(row_id)
            if not seeded:
                table.created.append(row_id)
            table.live += 1
            table._log(version, row_id, False)
            table._index(row, row_id, add=True)
            self._undo(lambda: self._undo_insert(table, row_id, seeded, was_tombstone))

    def _undo_insert(self, table: Table, row_id: str, seeded: bool, was_tombstone: bool) -> None:
        table._index(table.rows.get(row_id), row_id, add=False)
        table.rows.pop(row_id, None)
        if was_tombstone:
            table.tombstones.add(row_id)
        if not seeded:
            table.created.pop()
        table.live -= 1
        self._unlog(table)

    def replace(self, table: Table, row_id: str, row: Row) -> None:
        """Store the new full state of an existing row."""
        with self.lock:
            previous = table.rows.get(row_id)
            old_state = (previous or table.get(row_id)) if table.key_index else None
            version = self._bump()
            row["versionnumber"] = version
            table._index(old_state, row_id, add=False)
            table.rows[row_id] = row
            table.mark_seeded_change(row_id)
            table._log(version, row_id, False)
            table._index(row, row_id, add=True)
            self._undo(lambda: self._undo_replace(table, row_id, previous, old_state))

    def _undo_replace(self, table: Table, row_id: str, previous: Row | None, old_state: Row | None) -> None:
        table._index(table.rows.get(row_id), row_id, add=False)
        if previous is None:
            table.rows.pop(row_id, None)
        else:
            table.rows[row_id] = previous
        table._index(old_state, row_id, add=True)
        self._unlog(table)

    def remove(self, table: Table, row_id: str) -> None:
        with self.lock:
            old_state = table.get(row_id) if table.key_index else None
            previous = table.rows.pop(row_id, None)
            seeded = table.mark_seeded_change(row_id)
            if seeded:
                table.tombstones.add(row_id)
            table.live -= 1
            table._log(self._bump(), row_id, True)
            table._index(old_state, row_id, add=False)
            self._undo(lambda: self._undo_remove(table, row_id, previous, seeded, old_state))

    def _undo_remove(
        self, table: Table, row_id: str, previous: Row | None, seeded: bool, old_state: Row | None
    ) -> None:
        table._index(old_state, row_id, add=True)
        if previous is not None:
            table.rows[row_id] = previous
        if seeded:
            table.tombstones.discard(row_id)
        table.live += 1
        self._unlog(table)

    @staticmethod
    def _unlog(table: Table) -> None:
        table.log_versions.pop()
        table.log_ids.pop()
        table.log_deleted.pop()
        table._windows.clear()

    def _undo(self, step: Callable[[], None]) -> None:
        if self._journal is not None:
            self._journal.append(step)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside roll back together if the block raises (a $batch change set)."""
        with self.lock:
            outer, outer_pending = self._journal, self._pending
            journal: list[Callable[[], None]] = []
            pending: list[Any] = []
            self._journal, self._pending = journal, pending
            committed = False
            try:
                yield
                committed = True
            except BaseException:
                for step in reversed(journal):
                    step()
                raise
            finally:
                self._journal, self._pending = outer, outer_pending
                if committed:
                    if outer is not None:
                        outer.extend(journal)
                    for event in pending:  # to the enclosing transaction, or out to the listeners
                        self.emit(event)


class PointerView:
    """activitypointers: every row of every activity table, read only, with the activitypointer columns.

    Each activity row also exists as an activitypointer with the same activityid (PA custom-activities.md);
    here that is a view over the activity tables rather than a second copy.
    """

    def __init__(self, store: Store) -> None:
        from sandbox.dataverse.schema import ACTIVITYPOINTER

        self.store = store
        self.definition = ACTIVITYPOINTER
        self.key_index: dict[str, dict[KeyValues, str]] = {}
        self.generator = None

    def _activities(self) -> list[Table]:
        return [t for t in self.store.tables.values() if isinstance(t, Table) and t.definition.is_activity]

    @property
    def live(self) -> int:
        return sum(t.live for t in self._activities())

    def get(self, row_id: str) -> Row | None:
        for table in self._activities():
            row = table.get(row_id)
            if row is not None:
                return row
        return None

    def scan(
        self, cursor: tuple[Any, ...], columns: tuple[str, ...] | None = None
    ) -> Iterator[tuple[tuple[Any, ...], Row]]:
        """Rows of each activity table in turn; the cursor is ("a", table, inner kind, inner position)."""
        tables = self._activities()
        names = [t.definition.logical_name for t in tables]
        start, inner = 0, ("s", 0)
        if cursor[0] == "a" and len(cursor) == 4 and cursor[1] in names:
            start, inner = names.index(cursor[1]), (cursor[2], cursor[3])
        for table in tables[start:]:
            for (kind, pos), row in table.scan(inner):
                yield ("a", table.definition.logical_name, kind, pos), row
            inner = ("s", 0)

    def conflicting_key(self, row: Row, row_id: str) -> KeyDef | None:
        return None

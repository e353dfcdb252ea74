"""Small in-memory stand-ins for Table Storage, for fast unit tests of the runner and the executor.

They model what the state classes rely on: ETags on create/update/delete, the two error types, and
the query shapes the state classes send (conditions `Name eq @param` joined by and/or, parentheses).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.state.store import TABLE_NAMES


class FakeEntity(dict[str, Any]):
    def __init__(self, values: Mapping[str, Any], etag: str) -> None:
        super().__init__(values)
        self.metadata = {"etag": etag}


class FakeTable:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self.calls: list[str] = []
        self.fail: dict[str, BaseException] = {}  # operation name -> raise this
        self._etags = itertools.count(1)
        self._lock = threading.Lock()

    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if operation in self.fail:
            raise self.fail[operation]

    def _store(self, entity: Mapping[str, Any]) -> dict[str, str]:
        etag = f"W/{next(self._etags)}"
        self.rows[(entity["PartitionKey"], entity["RowKey"])] = (dict(entity), etag)
        return {"etag": etag}

    def create_entity(self, entity: Mapping[str, Any]) -> dict[str, str]:
        with self._lock:
            self._call("create_entity")
            if (entity["PartitionKey"], entity["RowKey"]) in self.rows:
                raise ResourceExistsError("exists")
            return self._store(entity)

    def upsert_entity(self, entity: Mapping[str, Any], mode: Any = None) -> dict[str, str]:
        with self._lock:
            self._call("upsert_entity")
            return self._store(entity)

    def get_entity(self, partition_key: str, row_key: str) -> FakeEntity:
        with self._lock:
            self._call("get_entity")
            if (partition_key, row_key) not in self.rows:
                raise ResourceNotFoundError("missing")
            values, etag = self.rows[(partition_key, row_key)]
            return FakeEntity(values, etag)

    def update_entity(self, entity: Mapping[str, Any], mode: Any = None, etag: str | None = None,
                      match_condition: Any = None) -> dict[str, str]:  # fmt: skip
        with self._lock:
            self._call("update_entity")
            key = (entity["PartitionKey"], entity["RowKey"])
            if key not in self.rows:
                raise ResourceNotFoundError("missing")
            if etag is not None and self.rows[key][1] != etag:
                raise ResourceModifiedError("etag")
            return self._store(entity)

    def delete_entity(self, partition_key: str, row_key: str, etag: str | None = None,
                      match_condition: Any = None) -> None:  # fmt: skip
        with self._lock:
            self._call("delete_entity")
            key = (partition_key, row_key)
            if key not in self.rows:
                raise ResourceNotFoundError("missing")
            if etag is not None and self.rows[key][1] != etag:
                raise ResourceModifiedError("etag")
            del self.rows[key]

    def submit_transaction(self, operations: list[tuple[str, Mapping[str, Any], dict[str, Any]]]) -> None:
        for _, entity, _options in operations:
            self.upsert_entity(entity)

    def list_entities(self, **_: Any) -> Iterator[FakeEntity]:
        self._call("list_entities")
        return iter([FakeEntity(v, e) for v, e in list(self.rows.values())])

    def query_entities(self, query: str, parameters: Mapping[str, Any] | None = None, **_: Any) -> Iterator[FakeEntity]:
        self._call("query_entities")
        test = _compile(query, dict(parameters or {}))
        return iter([FakeEntity(v, e) for v, e in list(self.rows.values()) if test(v)])


_CONDITION = re.compile(r"(\w+) eq (@\w+|'[^']*')")


def _compile(query: str, parameters: dict[str, Any]) -> Any:
    def value(token: str) -> Any:
        return parameters[token[1:]] if token.startswith("@") else token[1:-1]

    expression = _CONDITION.sub(lambda m: f"(row.get({m.group(1)!r}) == {value(m.group(2))!r})", query)
    code = compile(expression, "<query>", "eval")
    return lambda row: eval(code, {"__builtins__": {}}, {"row": row})  # a test fake evaluating its own query strings


class FakeState:
    """StateStore's table() over FakeTables."""

    def __init__(self) -> None:
        self.tables = {name: FakeTable() for name in TABLE_NAMES}

    def table(self, name: str) -> FakeTable:
        return self.tables[name]


class TickingClock:
    """A monotonic clock that moves `step` at every reading: budgets run out after a known number of checks."""

    def __init__(self, step: float = 1.0, start: float = 0.0) -> None:
        self.now = start
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now

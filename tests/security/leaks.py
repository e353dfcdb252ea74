"""Finding secrets and personal data in what a run leaves behind (log lines, summaries, dead-letter reasons).

`LeakGuard` is the autouse guard of the end-to-end suite (tests/e2e/conftest.py): during a test it records every
log record the way the production host would see it (the connector's loggers at DEBUG, the SDK loggers that
shared/telemetry quiets at WARNING), every `Secret` the app settings wrap, and at teardown the seeded rows of the
sandboxes the test used; then it fails the test naming what leaked where. `find_leaks` is the pure part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from shared.settings import Secret
from shared.telemetry import NOISY_LOGGERS

PERSONAL_COLUMNS = ("firstname", "lastname", "fullname", "emailaddress1", "emailaddress2", "telephone1", "mobilephone")
PROFILE_FIELDS = ("email", "firstName", "lastName", "mobilePhone", "phone")
MIN_NAME = 4  # shorter names are ordinary words ("Ada" in "Adapter"); word boundaries keep longer ones precise
MIN_SECRET = 6
NOT_PRODUCT = ("sandbox",)  # loggers of the local sandboxes: not what the connector writes
STATE_TABLES = ("deadletters", "runs")  # reasons and stored run summaries
PRODUCT_LOGGERS = ("sync", "shared")  # the connector's own loggers: recorded at DEBUG whatever an earlier test set


@dataclasses.dataclass(frozen=True)
class Leak:
    where: str  # "log sync.ingress", "run summary", "dead letter"...
    kind: str  # secret | personal
    value: str


def _pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(values), key=len, reverse=True)  # the longest value wins where two overlap
    if not ordered:
        return None
    return re.compile(r"(?<![\w])(?:" + "|".join(re.escape(v) for v in ordered) + r")(?![\w])")


def find_leaks(texts: Iterable[tuple[str, str]], *, secrets: Iterable[str], personal: Iterable[str]) -> list[Leak]:
    """Every occurrence of a secret or a personal value, as a whole word, in (where, text) pairs."""
    secret_set = {s for s in secrets if len(s) >= MIN_SECRET}
    personal_set = {p for p in personal if len(p) >= MIN_NAME} - secret_set
    pattern = _pattern(secret_set | personal_set)
    if pattern is None:
        return []
    found: dict[tuple[str, str], Leak] = {}
    for where, text in texts:
        for match in pattern.finditer(text):
            value = match.group(0)
            found[(where, value)] = Leak(where, "secret" if value in secret_set else "personal", value)
    return list(found.values())


def secret_parts(value: str) -> list[str]:
    """What to look for of a secret: itself, and each long line of a multi-line one (a PEM key's body)."""
    lines = [line.strip() for line in value.splitlines()]
    parts = [line for line in lines if len(line) >= 16 and not line.startswith("-----")]
    return [value, *parts] if len(lines) > 1 else [value]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in NOT_PRODUCT:
            return
        if any(record.name == n or record.name.startswith(n + ".") for n in NOISY_LOGGERS) and (
            record.levelno < logging.WARNING
        ):
            return  # production quiets these below WARNING (shared/telemetry.configure_logging)
        self.records.append(record)


def record_texts(records: Iterable[logging.LogRecord]) -> Iterator[tuple[str, str]]:
    formatter = logging.Formatter()
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + formatter.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        yield f"log {record.name}", text


class LeakGuard:
    """Start before the test, `check` after it: the leaks of everything the test made the connector write."""

    def __init__(self) -> None:
        self.handler = _Capture()
        self.secrets: set[str] = set()
        self._root_level = logging.NOTSET
        self._levels: dict[str, int] = {}
        self._original_init: Any = None

    def start(self) -> None:
        root = logging.getLogger()
        self._root_level = root.level
        root.setLevel(logging.DEBUG)
        root.addHandler(self.handler)
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if isinstance(logger, logging.Logger) and name.split(".")[0] in PRODUCT_LOGGERS:
                self._levels[name] = logger.level  # e.g. the CLI's main() sets "sync" to INFO
                logger.setLevel(logging.NOTSET)
        original = Secret.__init__
        seen = self.secrets

        def recording_init(secret: Secret, value: str) -> None:
            seen.update(secret_parts(value))
            original(secret, value)

        self._original_init = original
        Secret.__init__ = recording_init  # type: ignore[method-assign]

    def stop(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self._root_level)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        if self._original_init is not None:
            Secret.__init__ = self._original_init  # type: ignore[method-assign]

    def check(self, fixtures: Mapping[str, Any], extra_texts: Iterable[tuple[str, str]] = ()) -> list[Leak]:
        secrets, personal = set(self.secrets), set()
        for value in fixtures.values():
            secrets.update(_fixture_secrets(value))
            personal.update(_fixture_personal(value))
        texts = [*record_texts(self.handler.records), *extra_texts, *_state_texts(fixtures)]
        return find_leaks(texts, secrets=secrets, personal=personal)


def _fixture_secrets(value: Any) -> list[str]:
    secret = getattr(value, "client_secret", None)
    return [secret] if isinstance(secret, str) and _is_sandbox(value) else []


def _fixture_personal(value: Any) -> list[str]:
    from sandbox.campaign import CampaignSandbox
    from sandbox.dataverse import DataverseSandbox

    out: list[str] = []
    if isinstance(value, DataverseSandbox):
        with contextlib.suppress(Exception):  # a stopped sandbox or a missing table: nothing to look at
            for row in value.rows("contacts"):
                out += [str(row[c]) for c in PERSONAL_COLUMNS if row.get(c)]
    elif isinstance(value, CampaignSandbox):
        with contextlib.suppress(Exception):  # a stopped sandbox or a missing table: nothing to look at
            for row in value.rows("profile"):
                out += [str(row[f]) for f in PROFILE_FIELDS if row.get(f)]
    return out


def _is_sandbox(value: Any) -> bool:
    return type(value).__module__.startswith("sandbox.")


def _state_texts(fixtures: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Dead-letter reasons and stored run summaries of the test's own state tables (its table prefix)."""
    prefix, connection = fixtures.get("table_prefix"), fixtures.get("storage_connection_string")
    if not (isinstance(prefix, str) and isinstance(connection, str)):
        return []
    from azure.data.tables import TableServiceClient

    texts: list[tuple[str, str]] = []
    service = TableServiceClient.from_connection_string(connection)
    with contextlib.suppress(Exception):  # a stopped sandbox or a missing table: nothing to look at
        names = {t.name for t in service.list_tables()}
        for table in STATE_TABLES:
            if prefix + table not in names:
                continue
            for entity in service.get_table_client(prefix + table).list_entities():
                texts += [(f"state {table}", str(v)) for v in entity.values() if isinstance(v, str)]
    return texts

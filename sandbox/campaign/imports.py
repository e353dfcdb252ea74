"""The import workflow Campaign runs on an External signal (docs/campaign-import-workflow.md), for real.

Transfer file (the named files from the SFTP import folder) -> Load file (gunzip, the sandbox's own delimited-text
parser, each column converted to its attribute's type; rows that do not convert are rejects) -> Reconciliation on
the key attribute -> Update data (insert or update). Planning (reading, parsing, converting) needs no lock and runs
in the background; applying the plan to the table happens under the state lock, all rows at once.

A file that is missing, unreadable, not valid text in the workflow's encoding, or whose header does not fit the
resource makes the whole execution fail (no row written). A row that does not fit is rejected, counted and
reported with its line number and a reason that names the column but never echoes the value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.campaign import delimited
from sandbox.campaign.files import FileProblem, SftpArea, check_folder
from sandbox.campaign.schema import AttributeSpec, ResourceSpec, ValueProblem, format_datetime
from sandbox.campaign.store import SERVER_MAINTAINED, Table

MAX_REJECTS_LISTED = 100  # per file; the count is always exact
PREPARE_TIMEOUT = 600.0
_INTEGER = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
_FILE_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")
_FILE_DATETIME = re.compile(r"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})$")
_INTEGER_TYPES = ("byte", "short", "long", "int64")
TRUE_WORDS = ("1", "true")
FALSE_WORDS = ("0", "false")


class ImportFailure(Exception):
    """The execution fails as a whole; the message says which activity and file, never a value."""


@dataclasses.dataclass(frozen=True)
class ImportSpec:
    """The `import` block of a workflow in the sandbox config."""

    resource: str
    key: str
    folder: str | None = None  # relative to the SFTP root; None: the config's import_folder
    separator: str = ";"
    encoding: str = "utf-8"

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> ImportSpec:
        unknown = set(raw) - {"resource", "key", "folder", "separator", "encoding"}
        if unknown:
            raise ValueError(f"unknown import settings: {', '.join(sorted(unknown))}")
        if not raw.get("resource") or not raw.get("key"):
            raise ValueError("an import needs 'resource' and 'key'")
        spec = cls(
            resource=str(raw["resource"]),
            key=str(raw["key"]),
            folder=str(raw["folder"]) if raw.get("folder") else None,
            separator=str(raw.get("separator", ";")),
            encoding=str(raw.get("encoding", "utf-8")),
        )
        delimited.check_separator(spec.separator)
        if spec.folder is not None:
            check_folder(spec.folder)
        "".encode(spec.encoding)  # LookupError for an unknown encoding
        return spec

    def to_mapping(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class FileStats:
    name: str
    records: int = 0  # data records (header excluded)
    loaded: int = 0
    rejected: int = 0
    rejects: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejects) < MAX_REJECTS_LISTED:
            self.rejects.append({"line": line, "reason": reason})


@dataclasses.dataclass
class ImportPlan:
    rows: list[dict[str, Any]]  # converted values per accepted row, in file order
    files: list[FileStats]


def file_names(parameters: Mapping[str, Any], area: SftpArea, folder: str) -> list[str]:
    """Transfer file, as docs/campaign-import-workflow.md configures it: the files matching the mask
    `$(vars/@batch)_part*`. `fileNames` is the connector's list for a check, not what the activity reads: a file
    of an earlier attempt left under the batch's mask is imported too, as a real workflow would."""
    batch = str(parameters.get("batch") or "")
    if not re.fullmatch(r"[A-Za-z0-9-]+", batch):
        raise ImportFailure("Transfer file: the 'batch' parameter does not name a file mask (letters, digits, '-')")
    names = area.matching(folder, f"{batch}_part")
    if not names:
        raise ImportFailure(f"Transfer file: no file matches '{batch}_part*' in {folder}")
    return names


def plan_import(resource: ResourceSpec, spec: ImportSpec, files: Sequence[tuple[str, bytes]]) -> ImportPlan:
    rows: list[dict[str, Any]] = []
    stats: list[FileStats] = []
    for name, data in files:
        try:
            text = data.decode(spec.encoding)
        except UnicodeDecodeError as error:
            raise ImportFailure(f"Load file: '{name}' is not valid {spec.encoding} text (byte {error.start})") from None
        file_stats = FileStats(name)
        stats.append(file_stats)
        records = delimited.parse(text, spec.separator)
        header = next(records, None)
        if header is None or header.problem is not None:
            raise ImportFailure(f"Load file: '{name}' has no readable header line")
        columns = _columns(resource, spec, name, header.fields)
        for record in records:
            file_stats.records += 1
            if record.problem is not None:
                file_stats.reject(record.line, record.problem)
                continue
            if len(record.fields) != len(columns):
                file_stats.reject(record.line, f"{len(record.fields)} fields where the header has {len(columns)}")
                continue
            try:
                values = {attr.name: convert(attr, raw) for attr, raw in zip(columns, record.fields, strict=True)}
            except ValueProblem as problem:
                file_stats.reject(record.line, str(problem))
                continue
            if values.get(spec.key) in (None, ""):
                file_stats.reject(record.line, f"column '{spec.key}': the key is empty")
                continue
            file_stats.loaded += 1
            rows.append(values)
    return ImportPlan(rows, stats)


def _columns(resource: ResourceSpec, spec: ImportSpec, name: str, header: list[str]) -> list[AttributeSpec]:
    problems = []
    columns = []
    for column in header:
        attr = resource.attribute(column)
        if attr is None:
            problems.append(f"column '{column}' is not an attribute of '{resource.name}'")
        elif column in SERVER_MAINTAINED:
            problems.append(f"column '{column}' is maintained by Campaign and cannot be imported")
        elif attr.type == "link":
            problems.append(f"column '{column}' is a link: linking records by file is not modelled by the sandbox")
        else:
            columns.append(attr)
    if len(set(header)) != len(header):
        problems.append("a column appears twice")
    if spec.key not in header:
        problems.append(f"the key column '{spec.key}' is missing")
    if problems:
        raise ImportFailure(f"Load file: '{name}': " + "; ".join(problems))
    return columns


def convert(attr: AttributeSpec, raw: str) -> Any:
    """The stored value of one field of the file (docs/file-format.md), or ValueProblem naming only the column."""
    if raw == "":
        return None
    kind = attr.type
    bad = ValueProblem(f"column '{attr.name}': not a valid {kind}")
    value: Any
    if kind in ("string", "memo", "uuid"):
        if attr.length is not None and len(raw) > attr.length:
            raise ValueProblem(f"column '{attr.name}': longer than {attr.length} characters")
        value = raw
    elif kind == "boolean":
        lowered = raw.lower()
        if lowered not in TRUE_WORDS + FALSE_WORDS:
            raise bad
        value = lowered in TRUE_WORDS
    elif kind in _INTEGER_TYPES:
        if not _INTEGER.match(raw):
            raise bad
        value = int(raw)
    elif kind in ("float", "double"):
        if not _DECIMAL.match(raw):
            raise bad
        value = float(raw)
    elif kind == "date":
        match = _FILE_DATE.match(raw)
        if not match:
            raise bad
        value = "-".join(match.groups())
    elif kind == "datetime":
        match = _FILE_DATETIME.match(raw)
        if not match:
            raise bad
        try:
            moment = dt.datetime(*(int(part) for part in match.groups()), tzinfo=dt.UTC)
        except ValueError:
            raise bad from None
        value = format_datetime(moment.timestamp())
    elif kind == "enumeration":
        value = raw
    else:
        raise bad
    try:
        return attr.check(value)
    except ValueProblem:
        # attr.check's message may echo the value (as Campaign's API does); an import report must not.
        reason = "not a valid e-mail address" if attr.data_policy == "email" else f"not a valid {kind}"
        raise ValueProblem(f"column '{attr.name}': {reason}") from None


@dataclasses.dataclass
class ApplyCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def apply_plan(table: Table, key: str, rows: Sequence[Mapping[str, Any]], now: float) -> ApplyCounts:
    """Update data, insert or update by `key`. Caller holds the state lock."""
    counts = ApplyCounts()
    index = None if key == table.spec.key else {row.values.get(key): row for row in table.rows.values()}
    for values in rows:
        existing = table.by_key(values[key]) if index is None else index.get(values[key])
        if existing is None:
            row = table.insert_imported(values, now)
            if index is not None:
                index[values[key]] = row
            counts.inserted += 1
        elif table.update_imported(existing, values, now):
            counts.updated += 1
        else:
            counts.unchanged += 1
    return counts


class ImportJob:
    """One execution's import: prepared in a thread, applied once the sandbox clock reaches `ready_at`."""

    def __init__(self, run: dict[str, Any], ready_at: float) -> None:
        self.run = run  # the history entry (shared with CampaignState.imports)
        self.ready_at = ready_at
        self.prepared = threading.Event()
        self.plan: ImportPlan | None = None
        self.failure: str | None = None
        self.settled = False

    def fail_now(self, reason: str) -> None:
        self.failure = reason
        self.prepared.set()

    def prepare_in_background(
        self, area: SftpArea, folder: str, resource: ResourceSpec, spec: ImportSpec, parameters: Mapping[str, Any]
    ) -> None:
        def work() -> None:
            try:
                names = file_names(parameters, area, folder)
                self.run["fileNames"] = names
                files = [(name, area.read(folder, name)) for name in names]
                self.plan = plan_import(resource, spec, files)
            except FileProblem as problem:
                self.failure = f"Transfer file: {problem}"
            except ImportFailure as failure:
                self.failure = str(failure)
            except Exception as error:  # a sandbox bug must still end the execution visibly
                self.failure = f"the sandbox's import crashed: {type(error).__name__}: {error}"
            finally:
                self.prepared.set()

        threading.Thread(target=work, name=f"campaign-import-{self.run['id']}", daemon=True).start()

"""What every opt-out path works with, built once per process from the services: the mode, the resolved pairs,
the newest-applied record, the audit, the webhook queue, the writer; and the opt-out flow's checkpoint cursor."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from shared.config.model import OptOutMode, TableMapping
from shared.flows.file_feed import FileFeedCursor
from shared.flows.optout_apply import OptOutWriter, Pairs, Profiles, resolve_pairs
from shared.state.checkpoints import CheckpointStore
from shared.state.deadletters import DeadLetterStore
from shared.state.index import RecordIndex
from shared.state.optout_applied import AppliedStore
from shared.state.optout_audit import AuditLog
from shared.state.queue import OptOutQueue

if TYPE_CHECKING:
    from shared.wiring import Services

FLOW = "optout"
WEBHOOKS, CAMPAIGN_FILE = "webhooks", "campaign-file"  # the flow's scopes
TO_CAMPAIGN_MODES = frozenset({OptOutMode.TO_CAMPAIGN, OptOutMode.BIDIRECTIONAL})
TO_DYNAMICS_MODES = frozenset({OptOutMode.TO_DYNAMICS, OptOutMode.BIDIRECTIONAL})
HOST_JSON = pathlib.Path(__file__).resolve().parents[2] / "host.json"
DEFAULT_MAX_DEQUEUE_COUNT = 5  # the Functions host's default


def max_dequeue_count(host_json: pathlib.Path = HOST_JSON) -> int:
    """host.json extensions.queues.maxDequeueCount: after that many failed attempts the host moves a message to
    the poison queue, so the processor knows which attempt is the last and mirrors it into the dead letters."""
    try:
        queues = json.loads(host_json.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
        return int(queues.get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_MAX_DEQUEUE_COUNT


def scopes_for(mode: OptOutMode) -> list[str]:
    return [scope for scope, modes in ((WEBHOOKS, TO_CAMPAIGN_MODES), (CAMPAIGN_FILE, TO_DYNAMICS_MODES))
            if mode in modes]  # fmt: skip


@dataclasses.dataclass
class OptOutCursor:
    """Campaign file scope: the file feed's position. Webhooks scope: the queue backlog seen by its last run
    (the webhook path has no position of its own: its state is the newest-applied record)."""

    KIND: ClassVar[str] = "optout"
    scope: str = ""
    files: FileFeedCursor = dataclasses.field(default_factory=FileFeedCursor)
    queued: int = -1
    poisoned: int = -1

    def to_state(self) -> dict[str, Any]:
        return {"scope": self.scope, "files": self.files.to_state(), "queued": self.queued, "poisoned": self.poisoned}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> OptOutCursor:
        return cls(str(state.get("scope", "")), FileFeedCursor.from_state(state.get("files") or {}),
                   int(state.get("queued", -1)), int(state.get("poisoned", -1)))  # fmt: skip

    def describe(self) -> str:
        if not self.scope:
            return "never run"
        if self.scope == WEBHOOKS:
            return f"queue={self.queued} poison={self.poisoned}" if self.queued >= 0 else "never run"
        return self.files.describe()


class OptOutDeps:
    def __init__(self, services: Services, clock: Callable[[], float] = time.time) -> None:
        self.services = services
        self.settings = services.settings
        self.config = services.config.opt_out
        self.mode = self.config.mode
        contacts = services.config.contacts
        if contacts is None:  # the semantic checks refuse an enabled mode without it
            raise ValueError("opt-out needs the contact -> profile mapping")
        self.contacts: TableMapping = contacts
        state = services.state
        self.applied = AppliedStore(state.table("optoutapplied"), clock)
        self.audit = AuditLog(state.table("optoutaudit"), clock)
        self.dead_letters = DeadLetterStore(state.table("deadletters"), clock)
        self.checkpoints = CheckpointStore(state.table("checkpoints"), clock)
        self.index = RecordIndex(state.table("index"), clock)
        self.clock = clock
        self.max_parallel = services.settings.campaign.max_parallel
        self.dead_letter_max_attempts = services.settings.run.dead_letter_max_attempts
        self._pairs: Pairs | None = None
        self._own_user: str | None = None
        self._queue: OptOutQueue | None = None
        self._lock = threading.Lock()

    @property
    def columns(self) -> frozenset[str]:
        """The Dynamics side of the configured pairs (no metadata needed: what the webhook receiver filters on)."""
        return frozenset(p.dynamics for p in self.config.pairs)

    def pairs(self) -> Pairs:
        """The pairs resolved against both instances (metadata read once per process)."""
        with self._lock:
            if self._pairs is None:
                self._pairs = resolve_pairs(self.config, self.services.dataverse, self.services.campaign)
            return self._pairs

    def own_user(self) -> str:
        """The connector's application user (WhoAmI, once per process): the InitiatingUserId of its own writes."""
        with self._lock:
            if self._own_user is None:
                self._own_user = self.services.dataverse.who_am_i()
            return self._own_user

    def writer(self, *, dry_run: bool = False) -> OptOutWriter:
        return OptOutWriter(pairs=self.pairs(), profiles=Profiles(self.services.campaign, self.contacts, self.index),
                            dataverse=self.services.dataverse, contacts_set=self.contacts.entity_set,
                            applied=self.applied, audit=self.audit, clock=self.clock, dry_run=dry_run)  # fmt: skip

    def queue(self) -> OptOutQueue:
        with self._lock:
            if self._queue is None:
                self._queue = build_queue(self.services)
            return self._queue


def build_queue(services: Services) -> OptOutQueue:
    """The queue the webhook function writes and the queue-triggered function reads: OPTOUT_QUEUE_STORAGE (a
    connection string) or OPTOUT_QUEUE_STORAGE__queueServiceUri (managed identity), the very settings the
    trigger's `connection` names, so both ends meet the same queue; without them, the state storage account."""
    optout, state = services.settings.optout, services.settings.state
    if optout.queue_connection_string:
        return OptOutQueue.from_connection_string(optout.queue_connection_string.reveal(), optout.queue_name)
    if optout.queue_service_uri or (state.account_name and not state.connection_string):
        from azure.identity import DefaultAzureCredential  # only in Azure: managed identity

        uri = optout.queue_service_uri or f"https://{state.account_name}.queue.core.windows.net"
        return OptOutQueue.from_service_uri(uri, DefaultAzureCredential(), optout.queue_name)
    assert state.connection_string is not None
    return OptOutQueue.from_connection_string(state.connection_string.reveal(), optout.queue_name)


_deps_lock = threading.Lock()


def optout_deps(services: Services) -> OptOutDeps:
    """One OptOutDeps per Services object, kept on it: warm invocations reuse the resolved pairs and the queue."""
    with _deps_lock:
        deps = getattr(services, "_optout_deps", None)
        if deps is None:
            deps = OptOutDeps(services)
            services._optout_deps = deps  # type: ignore[attr-defined]
        return deps

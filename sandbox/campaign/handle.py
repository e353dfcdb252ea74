"""Start the Campaign sandbox in a background thread and drive it from Python (tests, demo, benchmarks)."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from sandbox.campaign.config import SandboxConfig
from sandbox.campaign.faults import Budget, FaultRule
from sandbox.campaign.files import SftpArea
from sandbox.campaign.server import IMS_PATH, CampaignServer
from sandbox.campaign.state import CampaignState


class CampaignSandbox:
    """A running sandbox. Use `CampaignSandbox.start(...)` or as a context manager.

    Every method here has a twin in the control API (`/_control/...`, README.md).
    """

    def __init__(self, state: CampaignState, server: CampaignServer, thread: threading.Thread) -> None:
        self.state = state
        self._server = server
        self._thread = thread

    @classmethod
    def start(cls, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> CampaignSandbox:
        state = CampaignState(config)
        server = CampaignServer((host, port), state)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="campaign-sandbox", daemon=True
        )
        thread.start()
        return cls(state, server, thread)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CampaignSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ where to connect

    @property
    def root_url(self) -> str:
        return self.state.public_base

    @property
    def base_url(self) -> str:
        """The Campaign base URL, like `https://mc.adobe.io/<ORGANIZATION>/campaign/`."""
        return self.state.api_base

    @property
    def ims_url(self) -> str:
        return self.state.public_base + IMS_PATH

    @property
    def control_url(self) -> str:
        return self.state.public_base + "/_control/"

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    @property
    def client_id(self) -> str:
        return self.state.config.client_id

    @property
    def client_secret(self) -> str:
        return self.state.config.client_secret

    @property
    def api_key(self) -> str:
        return self.state.config.client_id

    # ------------------------------------------------------------------ data

    def reset(self, config: SandboxConfig | None = None) -> None:
        """Forget all data, tokens, faults, budget, log and clock offset; optionally switch configuration."""
        self.state.reset(config)

    def seed(
        self, resource: str, rows: list[Mapping[str, Any]], *, attribute_times: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Insert rows directly (no HTTP, no auth). Rows may carry `created`/`lastModified`."""
        return self.state.seed(resource, rows, attribute_times=attribute_times)

    def rows(self, resource: str) -> list[dict[str, Any]]:
        """Every record of a resource, as the Ext API renders them."""
        return self.state.rows(resource)

    def find_rows(self, resource: str, **equals: Any) -> list[dict[str, Any]]:
        return [row for row in self.rows(resource) if all(row.get(k) == v for k, v in equals.items())]

    def attribute_times(self, resource: str, pkey: str) -> dict[str, str]:
        """When each attribute of a record last changed (Campaign timestamp strings)."""
        return self.state.attribute_times(resource, pkey)

    def set_attribute_times(self, resource: str, pkey: str, times: Mapping[str, Any]) -> None:
        self.state.set_attribute_times(resource, pkey, times)

    def set_optout_spelling(self, spelling: str) -> None:
        """Rename the profile's opt-out attributes to denyList* or blackList* (data follows)."""
        self.state.set_optout_spelling(spelling)

    # ------------------------------------------------------------------ the SFTP side (file workflows)

    @property
    def sftp_root(self) -> pathlib.Path | None:
        """The local folder the test sshd serves, or None (then file workflows answer 501)."""
        area = self.state.files.area
        return area.root if area is not None else None

    @property
    def import_folder(self) -> pathlib.Path:
        """Where the import workflows read (sftp_root / import_folder)."""
        return self._area().folder(self.config.import_folder)

    @property
    def export_folder(self) -> pathlib.Path:
        """Where the export workflows write (sftp_root / export_folder)."""
        return self._area().folder(self.config.export_folder)

    def _area(self) -> SftpArea:
        area = self.state.files.area
        if area is None:
            raise ValueError("this sandbox has no sftp_root")
        return area

    def import_history(self, workflow_id: str | None = None) -> list[dict[str, Any]]:
        """Every import execution: state, error, files with per-file records/loaded/rejected (and reject lines),
        inserted/updated/unchanged counts. Imports whose time has come are finished first."""
        return self.state.import_history(workflow_id)

    def fail_next_import(self, reason: str = "Transfer file: the SFTP server refused the connection") -> None:
        """The next accepted import trigger ends in `error` with this message, writing nothing."""
        self.state.fail_next_import(reason)

    def set_import_delay(self, seconds: float) -> None:
        """Imports triggered from now on stay `running` for this many seconds of sandbox time."""
        self.state.set_import_delay(seconds)

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        """The execution as `GET /workflow/execution/<id>` renders it (state, lastError, activities)."""
        return self.state.workflow_snapshot(workflow_id)

    def deliver(
        self,
        *,
        external_ids: Sequence[str] = (),
        pkeys: Sequence[str] = (),
        count: int = 0,
        without_external_id: int = 0,
        seed: int = 0,
        campaign_label: str | None = None,
        delivery_label: str | None = None,
        rates: Mapping[str, float] | None = None,
        urls: Sequence[str] | None = None,
        mirror_page: bool = True,
        sent_ago: float = 3600.0,
    ) -> dict[str, Any]:
        """Send one email delivery to profiles (by externalId, by PKey, `count` random ones that have an
        externalId, and `without_external_id` Campaign-only ones, created if needed). Returns its ids and labels,
        the targets, the excluded (denylisted) profiles and every event it makes, asynchronous bounces included.
        Rates (events.DEFAULT_RATES): hardBounce, softBounce, ignoredBounce, asyncBounce, open, click."""
        return self.state.deliver(
            external_ids=external_ids,
            pkeys=pkeys,
            count=count,
            without_external_id=without_external_id,
            seed=seed,
            campaign_label=campaign_label,
            delivery_label=delivery_label,
            rates=rates,
            urls=urls,
            mirror_page=mirror_page,
            sent_ago=sent_ago,
        )

    def delivery_logs(self) -> dict[str, Any]:
        """Delivery and tracking logs as Campaign holds them now (each delivery log in its current version)."""
        return self.state.delivery_logs()

    def export_logs(self) -> dict[str, Any]:
        """Run the two event export workflows now: writes campaign_events_<ts>_deliverylogs.csv and
        ..._trackinglogs.csv into the export folder; returns their names and row counts."""
        return self.state.export_logs()

    def export_optouts(self) -> dict[str, Any]:
        """Run the opt-out export workflow now: writes campaign_optouts_<ts>.csv into the export folder."""
        return self.state.export_optouts()

    def export_history(self) -> list[dict[str, Any]]:
        return self.state.export_history()

    def unsubscribe(
        self, *, external_id: str | None = None, pkey: str | None = None, changes: Mapping[str, bool] | None = None
    ) -> dict[str, Any]:
        """Change a profile's opt-outs as a Campaign user would (default: the unsubscription link, which sets
        denyListEmail in the instance's spelling). lastModified and the attributes' times move."""
        return self.state.unsubscribe(external_id=external_id, pkey=pkey, changes=changes)

    # ------------------------------------------------------------------ observing

    def requests(self, path_contains: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            entries = list(self.state.requests)
        return [
            e
            for e in entries
            if (path_contains is None or path_contains in e["path"]) and (method is None or e["method"] == method)
        ]

    def clear_requests(self) -> None:
        with self.state.lock:
            self.state.requests.clear()

    def triggers(self, workflow_id: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.workflows[workflow_id].triggers)

    def set_workflow_state(self, workflow_id: str, state: str) -> None:
        with self.state.lock:
            self.state.workflows[workflow_id].state = state

    # ------------------------------------------------------------------ misbehaving on purpose

    def fail(
        self,
        status: int | None = None,
        *,
        action: str = "respond",
        path: str = "",
        method: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        seconds: float = 0.0,
        times: int | None = 1,
    ) -> FaultRule:
        """Add a fault rule (see faults.py): e.g. fail(503, path="/profile", times=2), fail(action="drop")."""
        rule = FaultRule(
            action=action,
            method=method,
            path=path,
            status=status,
            body=body,
            headers=dict(headers or {}),
            seconds=seconds,
            times=times,
        )
        self.state.add_fault(rule)
        return rule

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def set_budget(self, limit: int, per_seconds: float = 1.0) -> None:
        """Answer 429 (with Retry-After) beyond `limit` API calls per `per_seconds` of sandbox time."""
        with self.state.lock:
            self.state.budget = Budget(limit, per_seconds)

    def clear_budget(self) -> None:
        with self.state.lock:
            self.state.budget = None

    def expire_tokens(self) -> int:
        """Every token issued so far now gets 401013."""
        with self.state.lock:
            return self.state.tokens.expire_all()

    @property
    def tokens_issued(self) -> int:
        return self.state.tokens.issued

    def advance_clock(self, seconds: float) -> None:
        """Move sandbox time forward: token expiry, the signal window and the budget follow it."""
        with self.state.lock:
            self.state.clock_offset += seconds

    def now(self) -> float:
        return self.state.now()

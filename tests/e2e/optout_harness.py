"""The local stack for opt-out end-to-end tests: both sandboxes, Azurite (state and the webhook queue), sshd for
Campaign's export, the function app's HTTP trigger behind a local stand-in of the host's front door (function
key checked), and the queue pump standing in for the host's queue trigger. Dataverse's webhooks reach the
connector's own function over real HTTP; nothing in between is a fake."""

from __future__ import annotations

import copy
import dataclasses
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import function_app
import shared.wiring
from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from sandbox.functions_host import LocalHttpHost, http_routes
from sandbox.queue_pump import QueueOptions, QueuePump
from sandbox.sshd import SshdServer
from shared.entrypoints.optout import handle_message
from shared.flows.optout import OPTOUT
from shared.flows.runner import RunSummary
from shared.state.optout_audit import AuditEntry, AuditLog
from tests.e2e.conftest import EXAMPLE, Stack, make_stack

FUNCTION_KEY = "local-function-key"
PAIRS = [{"dynamics": "donotbulkemail", "campaign": "denyListEmail"}, {"dynamics": "donotphone",
                                                                       "campaign": "denyListPhone"}]  # fmt: skip


def document(mode: str) -> dict[str, Any]:
    """The shipped example with the mode; toDynamics takes the opt-outs out of the contact mapping (Campaign
    owns them, ingress must not write them)."""
    config = copy.deepcopy(EXAMPLE)
    config["ingress"]["tables"] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    config["optOut"] = {"mode": mode, "pairs": copy.deepcopy(PAIRS)}
    if mode == "toDynamics":
        contacts = config["ingress"]["tables"][0]
        contacts["fields"] = [f for f in contacts["fields"] if not f["target"].startswith("denyList")]
    return config


@dataclasses.dataclass
class OptOutStack:
    stack: Stack
    host: LocalHttpHost
    pump: QueuePump
    sftp_root: pathlib.Path | None

    @property
    def dv(self) -> DataverseSandbox:
        return self.stack.dv

    @property
    def acs(self) -> CampaignSandbox:
        return self.stack.acs

    @property
    def webhook_url(self) -> str:
        return self.host.url("optout/webhook")

    def register_webhook(self, **options: Any) -> str:
        """As the README tells an administrator to: Create and Update of contact, filtering attributes the opt-out
        columns, WebhookKey authentication with the function key."""
        options.setdefault("filtering_attributes", [p["dynamics"] for p in PAIRS])
        return self.dv.register_webhook(self.webhook_url, messages=["Create", "Update"], auth="WebhookKey",
                                        value=FUNCTION_KEY, **options)  # fmt: skip

    def use_pump(self, **options: Any) -> None:
        """Replace the pump, e.g. batch_size=1 for one message at a time (the host does so with batchSize 1)."""
        queue = self.pump.queue.queue_name
        self.pump.stop()
        self.pump = QueuePump(self.stack.env["STATE_STORAGE_CONNECTION_STRING"], queue, handle_message,
                              QueueOptions.from_host_json(**{"visibility_timeout": 0.0, **options}))  # fmt: skip

    def deliver(self) -> None:
        """Dataverse delivers every queued webhook, then the queue is processed to the end."""
        self.dv.flush_webhooks(timeout=30)
        self.pump.drain(timeout=60)

    def ingress(self) -> RunSummary:
        [summary] = self.stack.run("contacts")
        assert summary.outcome == "completed", summary.reason
        return summary

    def run(self, *scopes: str) -> list[RunSummary]:
        return OPTOUT.run(self.stack.svc, list(scopes) or None, budget_seconds=600)

    def profile(self, contact: str) -> dict[str, Any]:
        [row] = self.acs.find_rows("profile", externalId=contact)
        return dict(row)

    def history(self, contact: str) -> list[AuditEntry]:
        return AuditLog(self.stack.svc.state.table("optoutaudit")).history(contact)

    def export(self) -> dict[str, Any]:
        """Campaign's opt-out export workflow, run now (one second later than any earlier run)."""
        self.acs.advance_clock(1)
        self.dv.advance_clock(1)
        return dict(self.acs.export_optouts())


def make_optout_stack(
    monkeypatch: pytest.MonkeyPatch, dv: DataverseSandbox, acs: CampaignSandbox, storage: str, prefix: str,
    mode: str, *, sshd: SshdServer | None = None, sftp_root: pathlib.Path | None = None,
    config: Mapping[str, Any] | None = None, **extra: str,
) -> Iterator[OptOutStack]:  # fmt: skip
    settings = {"OPTOUT_QUEUE": f"q{prefix}", **extra}
    if sshd is not None and sftp_root is not None:
        settings.update(SFTP_HOST=sshd.host, SFTP_PORT=str(sshd.port), SFTP_USERNAME=sshd.username,
                        SFTP_PRIVATE_KEY=sshd.client_private_key, SFTP_HOST_KEY=sshd.host_public_key,
                        SFTP_EXPORT_FOLDER=str(sftp_root / "d365_loads" / "exports"),
                        SFTP_ARCHIVE_FOLDER=str(sftp_root / "d365_loads" / "archive"))  # fmt: skip
    stack = make_stack(dv, acs, storage, prefix, config or document(mode), **settings)
    monkeypatch.setattr(shared.wiring, "_services", stack.svc)  # the functions use the stack's services
    host = LocalHttpHost(http_routes(function_app.app), [FUNCTION_KEY]).start()
    pump = QueuePump(storage, settings["OPTOUT_QUEUE"], handle_message,
                     QueueOptions.from_host_json(visibility_timeout=0.0))  # fmt: skip
    try:
        yield OptOutStack(stack, host, pump, sftp_root)
    finally:
        pump.stop()
        host.stop()


@pytest.fixture
def optout_stack_factory(
    monkeypatch: pytest.MonkeyPatch, dataverse_sandbox: DataverseSandbox, campaign_sandbox: CampaignSandbox,
    storage_connection_string: str, table_prefix: str,
) -> Iterator[Any]:  # fmt: skip
    """make(mode, **settings) -> OptOutStack, without SFTP (the webhook path)."""
    made: list[Iterator[OptOutStack]] = []

    def make(mode: str, config: Mapping[str, Any] | None = None, **extra: str) -> OptOutStack:
        generator = make_optout_stack(monkeypatch, dataverse_sandbox, campaign_sandbox, storage_connection_string,
                                      table_prefix, mode, config=config, **extra)  # fmt: skip
        made.append(generator)
        return next(generator)

    yield make
    for generator in made:
        generator.close()


@pytest.fixture
def optout_sftp_stack_factory(
    monkeypatch: pytest.MonkeyPatch, dataverse_sandbox: DataverseSandbox, campaign_sftp_sandbox: CampaignSandbox,
    storage_connection_string: str, table_prefix: str, sshd_server: SshdServer, sftp_folder: pathlib.Path,
) -> Iterator[Any]:  # fmt: skip
    """make(mode, **settings) -> OptOutStack with Campaign's SFTP in this test's sshd folder (the file path)."""
    made: list[Iterator[OptOutStack]] = []

    def make(mode: str, config: Mapping[str, Any] | None = None, **extra: str) -> OptOutStack:
        generator = make_optout_stack(monkeypatch, dataverse_sandbox, campaign_sftp_sandbox,
                                      storage_connection_string, table_prefix, mode, sshd=sshd_server,
                                      sftp_root=sftp_folder, config=config, **extra)  # fmt: skip
        made.append(generator)
        return next(generator)

    yield make
    for generator in made:
        generator.close()

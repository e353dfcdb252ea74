"""Opt-out: the fourth flow. Dynamics' `donot*` booleans and Campaign's factory opt-out attributes kept in step,
one way or both (optOut.mode: disabled, toCampaign, toDynamics, bidirectional), every decision audited.

Two paths, one newest-applied record per contact and attribute between them (docs/optout.md):
- Dynamics -> Campaign (toCampaign, bidirectional): a webhook function queues each change, a queue-triggered
  function applies it within seconds (shared/flows/optout_webhook.py); ingress, which carries the mapped
  opt-outs with the contact mapping, is the safety net (shared/flows/optout_ingress.py).
- Campaign -> Dynamics (toDynamics, bidirectional): a timer reads Campaign's opt-out export from the SFTP
  (shared/flows/optout_file.py).

The flow's scopes, run by its timer and by `python -m shared.cli run optout`: `webhooks` (retries the webhook
path's dead letters from Dynamics, reports the queue and poison backlog) and `campaign-file`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.clients.sftp import SftpClient, SftpError
from shared.flows.definition import Check, FlowDefinition
from shared.flows.optout_apply import OptOutConfigError
from shared.flows.optout_deps import CAMPAIGN_FILE, FLOW, WEBHOOKS, OptOutCursor, optout_deps, scopes_for
from shared.flows.optout_file import FILE_PATTERN, file_body
from shared.flows.optout_webhook import webhooks_body
from shared.flows.runner import FlowBody
from shared.http import ApiError

if TYPE_CHECKING:
    from shared.wiring import Services


def _bodies(services: Services, scopes: Sequence[str]) -> list[tuple[str, FlowBody]]:
    deps = optout_deps(services)
    builders = {WEBHOOKS: webhooks_body, CAMPAIGN_FILE: file_body}
    return [(scope, builders[scope](deps)) for scope in scopes]


def _preflight(services: Services, scopes: Sequence[str]) -> list[Check]:
    """The pairs against both live instances: each Dynamics column a Boolean of contact, each Campaign attribute a
    boolean of the profile (what a run checks before writing)."""
    if not scopes:
        return []
    subject = f"opt-out pairs ({services.config.opt_out.mode.value})"
    try:
        optout_deps(services).pairs()
    except OptOutConfigError as exc:
        return [Check(subject, tuple(exc.problems))]
    except ApiError as exc:
        return [Check(subject, (exc.describe(),))]
    return [Check(subject)]


def _backlog(services: Services, scope: str) -> str:
    if scope == WEBHOOKS:
        queued, poisoned = optout_deps(services).queue().backlog()
        return f"{queued} message(s) queued, {poisoned} in the poison queue"
    sftp = services.settings.sftp
    if sftp is None:
        return "no SFTP settings"
    try:
        with SftpClient.from_settings(sftp) as client:
            waiting = client.list_ready(sftp.export_folder, FILE_PATTERN)
    except SftpError as exc:
        return f"SFTP not readable: {exc}"
    return f"{len(waiting)} opt-out file(s) waiting"


OPTOUT = FlowDefinition(
    name=FLOW,
    description="Opt-outs between Dynamics and Campaign: webhook queue retries and Campaign's opt-out export file",
    cursor_type=OptOutCursor,
    scopes=lambda config: scopes_for(config.opt_out.mode),
    bodies=_bodies,
    blueprint="shared.entrypoints.optout",
    preflight=_preflight,
    backlog=_backlog,
)

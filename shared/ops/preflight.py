"""`validate` against the live systems: credentials of both, SFTP and its pinned host key, then each
flow's own checks (ingress: every mapped table, column, type, target, key and filter). Every problem
is collected; nothing is written."""

from __future__ import annotations

from collections.abc import Sequence

from shared.clients.sftp import SftpClient, SftpError
from shared.flows.definition import Check, FlowDefinition
from shared.http import ApiError
from shared.wiring import Services


def preflight(svc: Services, definitions: Sequence[FlowDefinition]) -> list[Check]:
    checks = [_dataverse(svc), _campaign(svc)]
    if svc.settings.sftp is not None:
        checks.append(_sftp(svc))
    if not all(check.ok for check in checks[:2]):
        return checks  # without credentials every table check would fail the same way
    for definition in definitions:
        if definition.preflight is not None:
            checks += definition.preflight(svc, definition.scopes(svc.config))
    return checks


def _dataverse(svc: Services) -> Check:
    subject = f"Dataverse credentials ({svc.settings.dataverse.url})"
    try:
        svc.dataverse.who_am_i()
    except ApiError as exc:
        return Check(subject, (exc.describe(),))
    return Check(subject)


def _campaign(svc: Services) -> Check:
    subject = f"Campaign credentials ({svc.settings.campaign.organization})"
    try:
        svc.campaign.resource_type("profile", refresh=True)
    except ApiError as exc:
        return Check(subject, (exc.describe(),))
    return Check(subject)


def _sftp(svc: Services) -> Check:
    sftp = svc.settings.sftp
    assert sftp is not None
    subject = f"SFTP {sftp.host}:{sftp.port} (pinned host key, folders)"
    problems = []
    try:
        with SftpClient.from_settings(sftp) as client:
            for folder in (sftp.upload_folder, sftp.export_folder):
                try:
                    client.list_ready(folder)
                except SftpError as exc:
                    problems.append(f"folder {folder}: {exc}")
    except SftpError as exc:
        problems.append(str(exc))
    return Check(subject, tuple(problems))

"""Campaign's workflows that exchange files through SFTP, as the sandbox runs them.

- the initial-transfer imports (imports.py), started by an accepted External signal trigger;
- deliveries and their logs (events.py), and the two event export workflows (exports.py);
- the opt-out export workflow.

Holds what these workflows remember (import history, logs, export watermarks and history). Every method is called
by CampaignState with its lock held, except `due_jobs`' waiting, which CampaignState does outside the lock.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox.campaign import errors, exports
from sandbox.campaign.config import SandboxConfig
from sandbox.campaign.events import (
    DEFAULT_URLS,
    Counters,
    Delivery,
    DeliveryLog,
    Target,
    TrackingLog,
    play,
    rates_with,
)
from sandbox.campaign.files import FileProblem, SftpArea
from sandbox.campaign.imports import ImportJob, apply_plan
from sandbox.campaign.schema import OPTOUT_SUFFIXES, format_datetime
from sandbox.campaign.store import Row, Table
from sandbox.campaign.workflows import Workflow


class SftpWorkflows:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.area = SftpArea(config.sftp_root) if config.sftp_root else None
        self.import_delay = float(config.import_delay)
        self.imports: list[dict[str, Any]] = []
        self.failures_queued: list[str] = []  # fail_next_import reasons, used in order by the next imports
        self.deliveries: list[Delivery] = []
        self.delivery_logs: list[DeliveryLog] = []
        self.tracking_logs: list[TrackingLog] = []
        self.counters = Counters()
        self.watermarks: dict[str, exports.Watermark | None] = {
            "deliverylogs": None,
            "trackinglogs": None,
            "optouts": None,
        }
        self.exports: list[dict[str, Any]] = []

    def require_area(self, what: str) -> SftpArea:
        if self.area is None:
            raise errors.not_modelled(f"{what} without an SFTP root (start the sandbox with sftp_root / --sftp-root)")
        return self.area

    # ------------------------------------------------------------------ imports

    def start_import(self, workflow: Workflow, trigger: dict[str, Any], table: Table, now: float) -> None:
        spec = workflow.import_spec
        assert spec is not None
        area = self.require_area("file imports")
        folder = spec.folder or self.config.import_folder
        parameters = dict(trigger.get("parameters") or {})
        run: dict[str, Any] = {
            "id": len(self.imports) + 1,
            "workflow": workflow.id,
            "resource": spec.resource,
            "key": spec.key,
            "folder": folder,
            "batch": parameters.get("batch"),
            "fileNames": [],
            "rowCount": parameters.get("rowCount"),
            "triggeredAt": format_datetime(now),
            "readyAt": format_datetime(now + self.import_delay),
            "finishedAt": None,
            "state": "running",
            "error": None,
            "files": [],
            "records": 0,
            "loaded": 0,
            "rejected": 0,
            "inserted": 0,
            "updated": 0,
            "unchanged": 0,
        }
        self.imports.append(run)
        trigger["importId"] = run["id"]
        job = ImportJob(run, now + self.import_delay)
        workflow.job = job
        workflow.state = "running"
        workflow.last_error = None
        if self.failures_queued:
            job.fail_now(self.failures_queued.pop(0))
        else:
            job.prepare_in_background(area, folder, table.spec, spec, parameters)

    def due_jobs(self, workflows: Mapping[str, Workflow], now: float) -> list[ImportJob]:
        return [w.job for w in workflows.values() if w.job is not None and not w.job.settled and now >= w.job.ready_at]

    def finish_import(self, workflow: Workflow, job: ImportJob, table: Table, now: float) -> None:
        """Apply a prepared import (or record its failure): the execution ends `finished` or `error`."""
        run = job.run
        job.settled = True
        run["finishedAt"] = format_datetime(now)
        plan = job.plan
        if job.failure is None and plan is not None:
            counts = apply_plan(table, run["key"], plan.rows, now)
            run["files"] = [dataclasses.asdict(stats) for stats in plan.files]
            run["records"] = sum(stats.records for stats in plan.files)
            run["loaded"] = sum(stats.loaded for stats in plan.files)
            run["rejected"] = sum(stats.rejected for stats in plan.files)
            run.update(dataclasses.asdict(counts))
            run["state"] = "finished"
            workflow.state = "finished"
            return
        run["state"] = "error"
        run["error"] = job.failure or "the import did not finish"
        workflow.state = "error"
        workflow.last_error = run["error"]

    # ------------------------------------------------------------------ deliveries

    def deliver(
        self,
        targets: Sequence[Target],
        excluded: list[dict[str, Any]],
        *,
        now: float,
        seed: int,
        campaign_label: str | None,
        delivery_label: str | None,
        rates: Mapping[str, float] | None,
        urls: Sequence[str] | None,
        mirror_page: bool,
        sent_ago: float,
        external_id: Callable[[str], str],
    ) -> dict[str, Any]:
        if sent_ago < 0:
            raise ValueError("sent_ago must be >= 0")
        rng = random.Random(seed)
        self.counters.delivery += 1
        number = self.counters.delivery
        delivery = Delivery(
            delivery_id=f"DM{number}",
            delivery_label=delivery_label if delivery_label is not None else f"Delivery {number}",
            campaign_id=f"OP{number}",
            campaign_label=campaign_label if campaign_label is not None else f"Campaign {number}",
            sent_at=float(int(now - sent_ago)),
        )
        # The mirror page URL pattern is not public [U]: a stand-in on the instance's host.
        mirror_base = f"https://{self.config.organization}.campaign.adobe.com/mirror" if mirror_page else None
        logs, tracks = play(
            delivery,
            targets,
            rng=rng,
            rates=rates_with(dict(rates or {})),
            urls=list(urls) if urls is not None else list(DEFAULT_URLS),
            mirror_page_base=mirror_base,
            now=now,
            async_bounce_at=now + float(self.config.async_bounce_delay),
            counters=self.counters,
        )
        self.deliveries.append(delivery)
        self.delivery_logs.extend(logs)
        self.tracking_logs.extend(tracks)
        events = [*_delivery_events(logs, external_id, now), *_tracking_events(tracks, external_id)]
        return {
            "campaignId": delivery.campaign_id,
            "campaignLabel": delivery.campaign_label,
            "deliveryId": delivery.delivery_id,
            "deliveryLabel": delivery.delivery_label,
            "sentAt": exports.file_datetime(delivery.sent_at),
            "targets": [{"PKey": t.pkey, "externalId": t.external_id} for t in targets],
            "excluded": excluded,
            "events": events,
        }

    # ------------------------------------------------------------------ exports

    def export_logs(self, now: float, external_id: Callable[[str], str]) -> dict[str, Any]:
        area = self.require_area("exporting logs")
        names = exports.events_file_names(now)
        folder = self.config.export_folder
        _refuse_existing(area, folder, names.values())
        selections = {
            "deliverylogs": exports.delivery_log_rows(
                self.delivery_logs, self.watermarks["deliverylogs"], now, external_id
            ),
            "trackinglogs": exports.tracking_log_rows(
                self.tracking_logs, self.watermarks["trackinglogs"], now, external_id
            ),
        }
        result: dict[str, Any] = {"at": exports.file_datetime(now), "folder": folder, "files": {}, "rows": {}}
        for log, selection in selections.items():
            area.write(folder, names[log], exports.render(exports.EVENT_COLUMNS, selection.rows))
            # The watermark moves only once its file is complete under its final name.
            self._record_export(log, names[log], selection, now)
            result["files"][log] = names[log]
            result["rows"][log] = len(selection.rows)
        return result

    def export_optouts(self, now: float, profiles: Sequence[Row], spelling: str) -> dict[str, Any]:
        area = self.require_area("exporting opt-outs")
        name = exports.optouts_file_name(now)
        folder = self.config.export_folder
        _refuse_existing(area, folder, [name])
        selection = exports.optout_rows(profiles, self.watermarks["optouts"], now, spelling)
        area.write(folder, name, exports.render(exports.optout_columns(spelling), selection.rows))
        self._record_export("optouts", name, selection, now)
        return {"at": exports.file_datetime(now), "folder": folder, "file": name, "rows": len(selection.rows)}

    def _record_export(self, workflow: str, name: str, selection: exports.Selection, now: float) -> None:
        before = self.watermarks[workflow]
        self.watermarks[workflow] = selection.watermark
        self.exports.append(
            {
                "workflow": workflow,
                "file": name,
                "at": exports.file_datetime(now),
                "rows": len(selection.rows),
                "watermarkBefore": exports.describe(before),
                "watermarkAfter": exports.describe(selection.watermark),
            }
        )

    def log_snapshot(self, now: float, external_id: Callable[[str], str]) -> dict[str, Any]:
        return {
            "deliveryLogs": _delivery_events(self.delivery_logs, external_id, now, current_only=True),
            "trackingLogs": _tracking_events(self.tracking_logs, external_id),
        }


def optout_attribute_names(spelling: str) -> tuple[str, ...]:
    return (*(spelling + suffix for suffix in OPTOUT_SUFFIXES), "ccpaOptOut")


def _refuse_existing(area: SftpArea, folder: str, names: Sequence[str] | Any) -> None:
    existing = [name for name in names if (area.folder(folder) / name).exists()]
    if existing:
        # Two runs in the same second would produce the same names: refuse rather than overwrite a file.
        raise FileProblem(
            f"{', '.join(existing)} already exist in {folder}: an export already ran in this second of the "
            "sandbox clock (advance it)"
        )


def _delivery_events(
    logs: Sequence[DeliveryLog], external_id: Callable[[str], str], now: float, *, current_only: bool = False
) -> list[dict[str, Any]]:
    """The events a delivery log makes: a send (or a synchronous bounce), then an asynchronous bounce if any."""
    out = []
    for log in logs:
        delivery = log.delivery
        common = {
            "log": "deliverylogs",
            "eventId": str(log.id),
            "externalId": external_id(log.profile_pkey),
            "profilePKey": log.profile_pkey,
            "campaignId": delivery.campaign_id,
            "campaignLabel": delivery.campaign_label,
            "deliveryId": delivery.delivery_id,
            "deliveryLabel": delivery.delivery_label,
            "trackingUrl": "",
            "mirrorPageUrl": log.mirror_page_url,
        }
        versions = []
        if log.failure_type:
            versions.append(("bounce", log.failure_type, log.failure_reason, delivery.sent_at, log.written_at, False))
        else:
            versions.append(("send", "", "", delivery.sent_at, log.written_at, False))
        if log.bounce_at is not None:
            versions.append(("bounce", log.bounce_type, log.bounce_reason, log.bounce_at, log.bounce_at, True))
        if current_only:
            visible = [v for v in versions if v[4] <= now]
            versions = visible[-1:]
        for event_type, failure_type, reason, date, modified, asynchronous in versions:
            out.append(
                {
                    **common,
                    "eventType": event_type,
                    "eventDate": exports.file_datetime(date),
                    "failureType": failure_type,
                    "failureReason": reason,
                    "asynchronous": asynchronous,
                    "lastModified": exports.file_datetime(modified),
                }
            )
    return out


def _tracking_events(tracks: Sequence[TrackingLog], external_id: Callable[[str], str]) -> list[dict[str, Any]]:
    out = []
    for track in tracks:
        delivery = track.delivery_log.delivery
        out.append(
            {
                "log": "trackinglogs",
                "eventId": str(track.id),
                "eventType": track.kind,
                "eventDate": exports.file_datetime(track.date),
                "externalId": external_id(track.delivery_log.profile_pkey),
                "profilePKey": track.delivery_log.profile_pkey,
                "campaignId": delivery.campaign_id,
                "campaignLabel": delivery.campaign_label,
                "deliveryId": delivery.delivery_id,
                "deliveryLabel": delivery.delivery_label,
                "trackingUrl": track.url,
                "mirrorPageUrl": track.delivery_log.mirror_page_url,
                "failureType": "",
                "failureReason": "",
                "asynchronous": False,
                "lastModified": exports.file_datetime(track.written_at),
            }
        )
    return out

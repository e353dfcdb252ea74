"""The local stack for egress tests: Dataverse and Campaign sandboxes, Azurite, and the session's sshd serving the
Campaign sandbox's SFTP root, wired through the real settings. Expected activities are shaped here, from the events
`deliver()` returned, by the test's own rules (never by shared.core.activities)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import pathlib
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox
from sandbox.sshd import SshdServer
from shared.flows.egress import EGRESS
from shared.flows.runner import RunSummary
from tests.e2e.conftest import EXAMPLE, Stack, make_stack

TABLES = {"send": "new_campaignsends", "open": "new_campaignopens", "click": "new_campaignclicks",
          "bounce": "new_campaignbounces"}  # fmt: skip
NAMESPACE = uuid.UUID("6f1c3b1e-5d0a-4c8e-9a47-2b7d1e8c4f90")  # the documented id namespace (docs/egress.md)


def egress_config(**egress: Any) -> dict[str, Any]:
    """The shipped example with contacts only and egress on (every type, both tasks), overridden by `egress`."""
    config = copy.deepcopy(EXAMPLE)
    config["ingress"]["tables"] = [t for t in config["ingress"]["tables"] if t["name"] == "contacts"]
    config["egress"] = {
        "enabled": True,
        "events": {"send": True, "open": True, "click": True, "bounce": True},
        "activityTables": dict(TABLES),
        "followUpTasks": {"onClick": True, "onBounce": True, "dueInDays": 3},
        **egress,
    }
    return config


@dataclasses.dataclass
class EgressStack:
    stack: Stack
    sftp_folder: pathlib.Path

    @property
    def dv(self) -> DataverseSandbox:
        return self.stack.dv

    @property
    def acs(self) -> CampaignSandbox:
        return self.stack.acs

    @property
    def exports(self) -> pathlib.Path:
        return self.sftp_folder / "d365_loads" / "exports"

    @property
    def archive(self) -> pathlib.Path:
        return self.sftp_folder / "d365_loads" / "archive"

    def run(self, *, dry_run: bool = False) -> RunSummary:
        [summary] = EGRESS.run(self.stack.svc, budget_seconds=600.0, dry_run=dry_run)
        return summary

    def contacts(self, n: int, seed: int = 1) -> list[str]:
        """n Dynamics contacts, synced to Campaign profiles (externalId = contactid, as ingress writes them)."""
        self.dv.seed_contacts(n, seed=seed)
        ids = [r["contactid"] for r in self.dv.rows("contacts", limit=n)]
        self.acs.seed("profile", [{"externalId": i, "email": f"p{k}@example.org", "lastName": f"P{k}"}
                                  for k, i in enumerate(ids)])  # fmt: skip
        return ids

    def export(self) -> dict[str, Any]:
        """Campaign's export workflows, run now; the sandbox clock moves on so the next export gets new names."""
        result = self.acs.export_logs()
        self.acs.advance_clock(1.0)
        return result

    def activities(self, event_type: str) -> list[dict[str, Any]]:
        return self.dv.rows(TABLES[event_type], limit=100_000)

    def tasks(self) -> list[dict[str, Any]]:
        return self.dv.rows("tasks", limit=100_000)


def stack_factory(
    dv: DataverseSandbox, acs: CampaignSandbox, storage: str, prefix: str, sshd: SshdServer, folder: pathlib.Path
) -> Callable[..., EgressStack]:
    """For a test module's fixture (it takes the session's sandboxes, sshd and this test's SFTP folder)."""

    def factory(config: Mapping[str, Any] | None = None, **extra: str) -> EgressStack:
        stack = make_stack(dv, acs, storage, prefix, config or egress_config(), **sftp_env(sshd, folder), **extra)
        return EgressStack(stack, folder)

    return factory


def sftp_env(sshd: SshdServer, folder: pathlib.Path) -> dict[str, str]:
    return {
        "SFTP_HOST": sshd.host,
        "SFTP_PORT": str(sshd.port),
        "SFTP_USERNAME": sshd.username,
        "SFTP_PRIVATE_KEY": sshd.client_private_key,
        "SFTP_HOST_KEY": sshd.host_public_key,
        "SFTP_EXPORT_FOLDER": str(folder / "d365_loads" / "exports"),  # no chroot: absolute paths
        "SFTP_ARCHIVE_FOLDER": str(folder / "d365_loads" / "archive"),
    }


# -- the test's own model of what must land (docs/egress.md), independent of shared.core.activities --------------


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


def iso(file_datetime: str) -> str:
    return dt.datetime.strptime(file_datetime, "%Y/%m/%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%SZ")


def landing(events: list[dict[str, Any]], *, types: tuple[str, ...] = tuple(TABLES)) -> list[dict[str, Any]]:
    """The events that must become activities: enabled types, hard bounces only, with a Dynamics contact id."""
    return [e for e in events if e["eventType"] in types and e["externalId"]
            and not (e["eventType"] == "bounce" and e["failureType"] != "hard")]  # fmt: skip


def expected_activity(event: Mapping[str, Any], owner: str) -> dict[str, Any]:
    name = event["campaignLabel"] or event["campaignId"]
    delivery = event["deliveryLabel"] or event["deliveryId"]
    expected: dict[str, Any] = {
        "activityid": derived_id(event["eventType"], event["eventId"]),
        "subject": f"Campaign Name: {name}; Delivery Name: {delivery}",
        "_regardingobjectid_value": event["externalId"],
        "_ownerid_value": owner,
        "new_campaignname": name,
        "new_deliveryname": delivery,
        "new_campaignid": event["campaignId"],
        "new_deliveryid": event["deliveryId"],
        "new_eventid": event["eventId"],
        "new_eventdate": iso(event["eventDate"]),
        "new_mirrorpageurl": event["mirrorPageUrl"] or None,
    }
    if event["eventType"] == "click":
        expected["new_trackingurl"] = event["trackingUrl"] or None
    if event["eventType"] == "bounce":
        expected["new_failuretype"] = "hard"
        expected["new_failurereason"] = event["failureReason"]
    return expected

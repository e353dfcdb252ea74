"""Start-up configuration of the Campaign sandbox, with defaults that match the connector's demo setup."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_CUSTOM_RESOURCES: tuple[dict[str, Any], ...] = (
    {
        "name": "cusLoyaltyCard",
        "key": "crmId",
        "attributes": {
            "crmId": {"type": "string", "length": 64},
            "cardNumber": {"type": "string", "length": 32},
            "points": "long",
            "tier": {"type": "enumeration", "values": ["none", "bronze", "silver", "gold"]},
            "validUntil": "date",
            "active": "boolean",
            "contactId": {"type": "string", "length": 64},  # the Dynamics contact id, for joins in workflows
            "profile": {"type": "link", "target": "profile"},
        },
        "filters": [{"name": "byCrmId", "attribute": "crmId", "param": "crmId_parameter"}],
    },
)

DEFAULT_WORKFLOWS: tuple[dict[str, Any], ...] = (
    {
        "id": "WKF_D365_INITIAL",
        "label": "D365 initial load",
        "state": "started",
        "signals": {"signal1": {"fileName": "string", "table": "string", "rowCount": "number"}},
    },
    # The initial-transfer imports (docs/campaign-import-workflow.md): one workflow per target resource.
    {
        "id": "WKF_D365_IMPORT_PROFILE",
        "label": "D365 initial transfer: profiles",
        "state": "started",
        "signals": {"signal1": {"batch": "string", "fileNames": "string", "rowCount": "number"}},
        "import": {"resource": "profile", "key": "externalId"},
    },
    {
        "id": "WKF_D365_IMPORT_LOYALTYCARD",
        "label": "D365 initial transfer: loyalty cards",
        "state": "started",
        "signals": {"signal1": {"batch": "string", "fileNames": "string", "rowCount": "number"}},
        "import": {"resource": "cusLoyaltyCard", "key": "crmId"},
    },
)


@dataclasses.dataclass
class SandboxConfig:
    organization: str = "acme"
    client_id: str = "sandbox-client-id"  # also the API key (X-Api-Key) Campaign expects
    client_secret: str = "sandbox-client-secret"
    token_lifetime: float = 86399.0  # IMS expires_in, seconds
    optout_spelling: str = "denyList"  # or "blackList"
    profile_key: str = "externalId"
    profile_filters: tuple[dict[str, str], ...] = (
        {"name": "byExternalId", "attribute": "externalId", "param": "externalId_parameter"},
    )
    profile_extension_attributes: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"cusCrmSegment": {"type": "string", "length": 64}, "cusLastPurchase": "date"}
    )
    custom_resources: tuple[dict[str, Any], ...] = DEFAULT_CUSTOM_RESOURCES
    workflows: tuple[dict[str, Any], ...] = DEFAULT_WORKFLOWS
    signal_window: float = 600.0  # seconds between two triggers of one signal activity
    big_table_threshold: int = 100_000  # XtkBigTableThreshold: above it, `next` needs _forcePagination
    default_line_count: int = 25
    # The SFTP area (a local folder the test sshd serves); None: no file workflows (imports refuse with 501).
    sftp_root: str | None = None
    import_folder: str = "d365_loads/imports"
    export_folder: str = "d365_loads/exports"
    import_delay: float = 0.0  # sandbox seconds an import stays `running` after its trigger
    async_bounce_delay: float = 3600.0  # sandbox seconds between a send and its asynchronous bounce

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> SandboxConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        camel = {_snake(k): v for k, v in raw.items()}
        unknown = set(camel) - names
        if unknown:
            raise ValueError(f"unknown sandbox settings: {', '.join(sorted(unknown))}")
        for name in ("profile_filters", "custom_resources", "workflows"):
            if name in camel:
                camel[name] = tuple(camel[name])
        return cls(**camel)

    @classmethod
    def from_file(cls, path: str | Path) -> SandboxConfig:
        return cls.from_mapping(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_mapping(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)

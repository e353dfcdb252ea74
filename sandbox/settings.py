"""App settings that point the connector at the local sandboxes (used by the demo, tests and benches)."""

from __future__ import annotations

from sandbox.campaign import CampaignSandbox
from sandbox.dataverse import DataverseSandbox


def sandbox_settings(dv: DataverseSandbox, acs: CampaignSandbox, storage_connection_string: str) -> dict[str, str]:
    return {
        "DATAVERSE_URL": dv.url,
        "DATAVERSE_TENANT_ID": dv.tenant_id,
        "DATAVERSE_CLIENT_ID": dv.client_id,
        "DATAVERSE_CLIENT_SECRET": dv.client_secret,
        "DATAVERSE_AUTHORITY_HOST": dv.authority_host,
        "DATAVERSE_CA_BUNDLE": str(dv.ca_path),
        "CAMPAIGN_BASE_URL": acs.root_url,
        "CAMPAIGN_ORGANIZATION": acs.config.organization,
        "CAMPAIGN_IMS_URL": acs.root_url,
        "CAMPAIGN_CLIENT_ID": acs.client_id,
        "CAMPAIGN_CLIENT_SECRET": acs.client_secret,
        "STATE_STORAGE_CONNECTION_STRING": storage_connection_string,
        "OPTOUT_QUEUE_STORAGE": storage_connection_string,  # the opt-out webhook queue lives beside the state
    }

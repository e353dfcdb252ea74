"""A local, faithful Adobe Campaign Standard REST API (plus its IMS token endpoint) for tests and the demo.

    from sandbox.campaign import CampaignSandbox, SandboxConfig
    with CampaignSandbox.start(SandboxConfig(signal_window=1.0)) as campaign:
        campaign.base_url, campaign.ims_url, campaign.client_id, campaign.client_secret

Command line: `python -m sandbox.campaign --port 8765`. See README.md.
"""

from sandbox.campaign.config import SandboxConfig
from sandbox.campaign.handle import CampaignSandbox

__all__ = ["CampaignSandbox", "SandboxConfig"]

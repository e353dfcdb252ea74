"""Parts of the mapping document that need a flow this release does not have yet, and the app settings
that the flows a document turns on need.

A document that turns an unbuilt flow on is refused, naming the key, instead of being accepted and
silently ignored. Each flow removes its entry here when it lands.
"""

from __future__ import annotations

from shared.config.errors import Problem
from shared.config.model import OptOutMode, SyncConfig

NOT_BUILT_OPT_OUT_MODES = frozenset({OptOutMode.TO_DYNAMICS, OptOutMode.BIDIRECTIONAL})
# The settings without which there is no SFTP connection (shared/settings.py reads them as one group).
SFTP_CONNECTION_SETTINGS = ("SFTP_HOST", "SFTP_USERNAME", "SFTP_PRIVATE_KEY", "SFTP_HOST_KEY")


def unbuilt_features(config: SyncConfig) -> list[Problem]:
    problems = []
    if config.opt_out.mode in NOT_BUILT_OPT_OUT_MODES:
        problems.append(
            Problem(
                "$.optOut.mode",
                f"'{config.opt_out.mode.value}' needs the Campaign -> Dynamics "
                "opt-out flow, which is not part of this release: use 'toCampaign' or 'disabled'",
            )
        )
    return problems


def missing_settings(config: SyncConfig, *, sftp_configured: bool) -> list[Problem]:
    """App settings the enabled flows need that are not set (named by setting)."""
    if config.egress.enabled and not sftp_configured:
        # Egress reads Campaign's event exports from its SFTP.
        return [
            Problem(name, "missing: egress is enabled (SYNC_CONFIG $.egress.enabled) and reads Campaign's SFTP")
            for name in SFTP_CONNECTION_SETTINGS
        ]
    return []

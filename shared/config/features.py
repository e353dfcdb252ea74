"""The app settings that the flows a mapping document turns on need, reported by setting name when missing
(every part of the document is acted on by a flow: nothing is accepted and then silently ignored)."""

from __future__ import annotations

from shared.config.errors import Problem
from shared.config.model import OptOutMode, SyncConfig

# The settings without which there is no SFTP connection (shared/settings.py reads them as one group).
SFTP_CONNECTION_SETTINGS = ("SFTP_HOST", "SFTP_USERNAME", "SFTP_PRIVATE_KEY", "SFTP_HOST_KEY")
# Opt-out modes that read Campaign's opt-out export from its SFTP.
SFTP_OPT_OUT_MODES = frozenset({OptOutMode.TO_DYNAMICS, OptOutMode.BIDIRECTIONAL})


def missing_settings(config: SyncConfig, *, sftp_configured: bool) -> list[Problem]:
    """App settings the enabled flows need that are not set (named by setting)."""
    if sftp_configured:
        return []
    if config.egress.enabled:
        # Egress reads Campaign's event exports from its SFTP.
        return [
            Problem(name, "missing: egress is enabled (SYNC_CONFIG $.egress.enabled) and reads Campaign's SFTP")
            for name in SFTP_CONNECTION_SETTINGS
        ]
    if config.opt_out.mode in SFTP_OPT_OUT_MODES:
        why = f"missing: optOut.mode {config.opt_out.mode.value} reads Campaign's opt-out export from its SFTP"
        return [Problem(name, why + " (SYNC_CONFIG $.optOut.mode)") for name in SFTP_CONNECTION_SETTINGS]
    return []

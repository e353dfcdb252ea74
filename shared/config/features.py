"""Parts of the mapping document that need a flow this release does not have yet.

A document that turns one on is refused, naming the key, instead of being accepted and silently
ignored. Each flow removes its entry here when it lands (opt-out has: every `optOut.mode` is acted on).
"""

from __future__ import annotations

from shared.config.errors import Problem
from shared.config.model import SyncConfig

EGRESS_BUILT = False


def unbuilt_features(config: SyncConfig) -> list[Problem]:
    problems = []
    if config.egress.enabled and not EGRESS_BUILT:
        problems.append(Problem("$.egress.enabled", "the egress flow is not part of this release: set it to false"))
    return problems

"""The sync configuration (mapping document): typed model, JSON Schema, loader with every problem reported at once.

The loader (and jsonschema with it) is imported on first use only: `shared.config.errors` is imported by the
settings module on every cold start, and the model by the core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shared.config.errors import ConfigError, Problem
from shared.config.model import SyncConfig, TableMapping

if TYPE_CHECKING:
    from shared.config.dump import dump_sync_config
    from shared.config.loader import check_document, load_sync_config, parse_sync_config, read_document

_LAZY = {
    "check_document": "shared.config.loader",
    "load_sync_config": "shared.config.loader",
    "parse_sync_config": "shared.config.loader",
    "read_document": "shared.config.loader",
    "dump_sync_config": "shared.config.dump",
}

__all__ = [
    "ConfigError",
    "Problem",
    "SyncConfig",
    "TableMapping",
    "check_document",
    "dump_sync_config",
    "load_sync_config",
    "parse_sync_config",
    "read_document",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'shared.config' has no attribute {name!r}")

"""The sync configuration (mapping document): typed model, JSON Schema, loader with every problem reported at once."""

from shared.config.dump import dump_sync_config
from shared.config.errors import ConfigError, Problem
from shared.config.loader import check_document, load_sync_config, parse_sync_config, read_document
from shared.config.model import SyncConfig, TableMapping

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

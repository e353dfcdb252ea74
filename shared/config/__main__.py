"""Operator command: check a sync configuration before deploying it.

    python -m shared.config validate <path-or-inline-json>

Prints "OK: ..." and exits 0, or prints every problem and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.config.errors import ConfigError
from shared.config.loader import load_sync_config
from shared.config.model import SyncConfig

EXIT_OK = 0
EXIT_INVALID = 2


def summary(config: SyncConfig) -> str:
    tables = config.tables
    enabled = sum(1 for t in tables if t.enabled)
    contacts = config.contacts
    profile = f"profile <- {contacts.entity_set}" if contacts else "no profile mapping"
    fields = sum(len(t.fields) for t in tables)
    egress = f"on ({', '.join(sorted(config.egress.events))})" if config.egress.enabled else "off"
    return (
        f"OK: {len(tables)} tables ({enabled} enabled; {profile}; {len(config.custom_tables)} custom), "
        f"{fields} mapped fields, egress {egress}, opt-out {config.opt_out.mode.value}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.config", description="Sync configuration tools")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a configuration file or inline JSON")
    validate.add_argument("config", help="path of a JSON file (relative to the current directory) or inline JSON")
    args = parser.parse_args(argv)
    try:
        config = load_sync_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return EXIT_INVALID
    print(summary(config))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

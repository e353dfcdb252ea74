"""Run the sandbox from the command line: python -m sandbox.dataverse --port 8443 --contacts 100000.

Prints one JSON line with the connection settings (URL, tenant, client id/secret, CA path), then
serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

from sandbox.dataverse.server import DataverseSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.dataverse", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--contacts", type=int, default=0, help="generated contacts to seed at start")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generated contacts")
    parser.add_argument("--tables", type=Path, help="JSON file: a list of custom table definitions")
    parser.add_argument("--workdir", type=Path, help="where to write the CA and certificate (default: temp dir)")
    parser.add_argument("--settings-out", type=Path, help="also write the settings JSON to this file")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the sandbox serves loopback only")
    tables = json.loads(args.tables.read_text()) if args.tables else None
    sandbox = DataverseSandbox(host=args.host, port=args.port, tables=tables, workdir=args.workdir).start()
    if args.contacts:
        started = time.perf_counter()
        sandbox.seed_contacts(args.contacts, args.seed)
        print(f"seeded {args.contacts} contacts in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    settings = sandbox.settings()
    if args.settings_out:
        args.settings_out.write_text(json.dumps(settings, indent=2))
    print(json.dumps(settings), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

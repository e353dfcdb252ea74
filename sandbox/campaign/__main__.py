"""`python -m sandbox.campaign --port N [--config file.json] [...]`: run the sandbox in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from sandbox.campaign.config import SandboxConfig
from sandbox.campaign.handle import CampaignSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.campaign", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", help="JSON file of SandboxConfig settings (camelCase or snake_case keys)")
    parser.add_argument("--organization", help="tenant in the base URL (default acme)")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--token-lifetime", type=float, help="IMS expires_in seconds")
    parser.add_argument("--signal-window", type=float, help="seconds between two triggers of one signal")
    parser.add_argument("--optout-spelling", choices=("denyList", "blackList"))
    parser.add_argument("--big-table-threshold", type=int)
    parser.add_argument("--sftp-root", help="local folder the test sshd serves: enables the file workflows")
    parser.add_argument("--import-folder", help="relative to the SFTP root (default d365_loads/imports)")
    parser.add_argument("--export-folder", help="relative to the SFTP root (default d365_loads/exports)")
    parser.add_argument("--import-delay", type=float, help="sandbox seconds an import stays running")
    args = parser.parse_args(argv)

    config = SandboxConfig.from_file(args.config) if args.config else SandboxConfig()
    overrides = {
        "organization": args.organization,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "token_lifetime": args.token_lifetime,
        "signal_window": args.signal_window,
        "optout_spelling": args.optout_spelling,
        "big_table_threshold": args.big_table_threshold,
        "sftp_root": args.sftp_root,
        "import_folder": args.import_folder,
        "export_folder": args.export_folder,
        "import_delay": args.import_delay,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(config, name, value)

    sandbox = CampaignSandbox.start(config, host=args.host, port=args.port)
    print(
        json.dumps(
            {
                "base_url": sandbox.base_url,
                "ims_url": sandbox.ims_url,
                "control_url": sandbox.control_url,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
                "api_key": sandbox.api_key,
                "sftp_root": str(sandbox.sftp_root) if sandbox.sftp_root else None,
                "import_folder": config.import_folder,
                "export_folder": config.export_folder,
            }
        ),
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

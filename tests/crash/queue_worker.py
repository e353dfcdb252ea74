"""The opt-out queue's processor in a process of its own, for kill tests: the connector's queue-triggered
function (shared/entrypoints/optout.py) driven by sandbox/queue_pump.py as the Functions host would drive it,
with the app settings of a local.settings.json. It runs until it is killed.

    python -m tests.crash.queue_worker SETTINGS_FILE LEASE_SECONDS
"""

from __future__ import annotations

import json
import os
import sys
import threading

from sandbox.queue_pump import QueueOptions, QueuePump


def main(settings_path: str, lease_seconds: int) -> None:
    with open(settings_path, encoding="utf-8") as handle:
        os.environ.update(json.load(handle)["Values"])  # as the host puts app settings in the environment
    from shared.entrypoints.optout import handle_message  # reads its services from that environment

    pump = QueuePump(os.environ["STATE_STORAGE_CONNECTION_STRING"], os.environ["OPTOUT_QUEUE"], handle_message,
                     QueueOptions.from_host_json(visibility_timeout=0.0), lease_seconds=lease_seconds)  # fmt: skip
    pump.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""A stand-in for the Functions host's queue trigger, for the tests, the demo and the benchmark (no Functions host
runs here). It drives a queue-triggered function from an Azure Storage queue (Azurite) the way the host does
(Microsoft.Azure.WebJobs.Extensions.Storage.Queues, with the settings of host.json `extensions.queues`):

- messages are received in batches of `batchSize`, each invisible to others while it is processed;
- the message body is decoded per `messageEncoding` (base64 by default) and handed over with its dequeue count;
- success deletes the message; a failure puts it back, visible again after `visibilityTimeout`;
- a failure of a message already dequeued `maxDequeueCount` times moves it to `<queue>-poison` instead, and a
  message received with a dequeue count above `maxDequeueCount` (its worker died each time) goes there unrun;
- an empty queue is polled again after a growing pause, up to `maxPollingInterval`.

It is not product code: it lives outside the package deployed to Azure and imports nothing of the connector.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import json
import logging
import pathlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueClient, QueueMessage

log = logging.getLogger("sandbox.queue_pump")

REPO = pathlib.Path(__file__).resolve().parent.parent
LEASE_SECONDS = 600  # the host's lease of a message in process (renewed by the host; long enough here)


@dataclasses.dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # seconds before a failed message is visible again
    max_polling_interval: float = 60.0
    base64: bool = True

    @classmethod
    def from_host_json(cls, path: pathlib.Path = REPO / "host.json", **overrides: Any) -> QueueOptions:
        queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
        options = cls(
            batch_size=int(queues.get("batchSize", 16)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=_timespan(queues.get("visibilityTimeout", "00:00:00")),
            max_polling_interval=_timespan(queues.get("maxPollingInterval", "00:01:00")),
            base64=str(queues.get("messageEncoding", "base64")).lower() == "base64",
        )
        return dataclasses.replace(options, **overrides)


def _timespan(value: Any) -> float:
    """host.json time spans: "hh:mm:ss[.fff]" (or milliseconds as a number, the old form)."""
    if isinstance(value, (int, float)):
        return float(value) / 1000.0
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", str(value))
    if not match:
        raise ValueError(f"not a time span: {value!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclasses.dataclass
class PumpStats:
    succeeded: int = 0
    failed: int = 0  # failed attempts (retried or poisoned)
    poisoned: int = 0


class QueuePump:
    def __init__(
        self,
        connection_string: str,
        queue_name: str,
        function: Callable[[func.QueueMessage], None],
        options: QueueOptions | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        """`lease_seconds`: how long a received message stays invisible while it is processed (the host renews
        its lease; a worker killed mid-message leaves it invisible that long, then it is received again)."""
        self.options = options or QueueOptions.from_host_json()
        self.lease_seconds = lease_seconds
        self.queue = QueueClient.from_connection_string(connection_string, queue_name)
        self.poison = QueueClient.from_connection_string(connection_string, queue_name + "-poison")
        self.function = function
        self.sleep = sleep
        self.stats = PumpStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.options.batch_size)
        for client in (self.queue, self.poison):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass

    # -- one round ------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Receive one batch and process it to the end; returns how many messages it held."""
        messages = list(self.queue.receive_messages(messages_per_page=self.options.batch_size,
                                                    max_messages=self.options.batch_size,
                                                    visibility_timeout=self.lease_seconds))  # fmt: skip
        list(self._pool.map(self._one, messages))
        return len(messages)

    def drain(self, timeout: float = 30.0) -> None:
        """Process until the queue holds no message at all (failed ones included, once they are done)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.run_once() == 0:
                if self._empty():
                    return
                self.sleep(0.02)  # failed messages wait out their visibility timeout
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {self.queue.queue_name} not drained within {timeout} s")

    def _empty(self) -> bool:
        return int(self.queue.get_queue_properties().approximate_message_count or 0) == 0

    def _one(self, message: QueueMessage) -> None:
        count = int(message.dequeue_count or 1)
        if count > self.options.max_dequeue_count:
            self._to_poison(message)
            return
        body = message.content
        data = base64.b64decode(body) if self.options.base64 else str(body).encode("utf-8")
        trigger = TriggerMessage(id=message.id, body=data, dequeue_count=count, pop_receipt=message.pop_receipt,
                                 insertion_time=message.inserted_on, expiration_time=message.expires_on)  # fmt: skip
        try:
            self.function(trigger)
        except Exception as exc:
            with self._lock:
                self.stats.failed += 1
            log.info("queue_pump.failed id=%s dequeue=%d error=%s", message.id, count, type(exc).__name__)
            if count >= self.options.max_dequeue_count:
                self._to_poison(message)
            else:
                self.queue.update_message(message, visibility_timeout=int(self.options.visibility_timeout))
            return
        self.queue.delete_message(message)
        with self._lock:
            self.stats.succeeded += 1

    def _to_poison(self, message: QueueMessage) -> None:
        self.poison.send_message(message.content)
        self.queue.delete_message(message)
        with self._lock:
            self.stats.poisoned += 1

    # -- in the background, like the host ------------------------------------------------------------
    def start(self, min_interval: float = 0.01) -> QueuePump:
        def loop() -> None:
            pause = min_interval
            while not self._stop.is_set():
                try:
                    got = self.run_once()
                except Exception:  # Azurite went away mid-test: keep polling until stopped
                    log.exception("queue_pump.round_failed")
                    got = 0
                if got:
                    pause = min_interval
                    continue
                self._stop.wait(pause)
                pause = min(pause * 2, self.options.max_polling_interval)

        self._thread = threading.Thread(target=loop, name="queue-pump", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        for client in (self.queue, self.poison):
            client.close()

    def __enter__(self) -> QueuePump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

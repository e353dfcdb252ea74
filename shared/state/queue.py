"""The opt-out webhook queue (Azure Storage queue) and its poison queue, as the receiver and `status` use them.

Messages are base64 text: the Functions host's queue trigger decodes base64 by default (host.json
`extensions.queues.messageEncoding`), so this is what it expects. The host moves a message that failed
`maxDequeueCount` times to `<name>-poison`.
"""

from __future__ import annotations

import threading
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

POISON_SUFFIX = "-poison"


class OptOutQueue:
    def __init__(self, client: QueueClient, poison: QueueClient) -> None:
        self.client = client
        self.poison = poison
        self.name = client.queue_name
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(cls, connection_string: str, name: str) -> OptOutQueue:
        return cls(*(QueueClient.from_connection_string(connection_string, queue, **_codec())
                     for queue in (name, name + POISON_SUFFIX)))  # fmt: skip

    @classmethod
    def from_service_uri(cls, service_uri: str, credential: Any, name: str) -> OptOutQueue:
        """Identity-based (the app's managed identity, role Storage Queue Data Contributor)."""
        url = service_uri.rstrip("/")
        queues = (name, name + POISON_SUFFIX)
        return cls(*(QueueClient(url, queue, credential=credential, **_codec()) for queue in queues))

    def ensure(self) -> None:
        """Create both queues on first use (in Azure the deployment made them; locally Azurite starts empty)."""
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                for client in (self.client, self.poison):
                    try:
                        client.create_queue()
                    except ResourceExistsError:
                        pass
                self._ready = True

    def send(self, text: str) -> str:
        self.ensure()
        return str(self.client.send_message(text).id)

    def backlog(self) -> tuple[int, int]:
        """Approximate message counts (queued, poison): what `status` reports."""
        self.ensure()
        counts = []
        for client in (self.client, self.poison):
            counts.append(int(client.get_queue_properties().approximate_message_count or 0))
        return counts[0], counts[1]


def _codec() -> dict[str, Any]:
    return {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}

"""Connects to the state storage account once and hands out the table and container clients."""

from __future__ import annotations

import threading
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient

from shared.http.session import EnvironmentOnceSession, OriginPoolAdapter

TABLE_NAMES = ("checkpoints", "leases", "index", "deadletters", "runs", "optoutapplied", "optoutaudit")
POOL_SIZE = 32  # flows read and write the index from many threads; urllib3's default pool keeps only 10


def _transport() -> RequestsTransport:
    # The environment (proxies, CA bundle) read once per origin, as the HTTP clients do: requests would walk
    # os.environ on every index read and write.
    session = EnvironmentOnceSession()
    adapter = OriginPoolAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False)


class StateStore:
    """Owns the service clients; creates the tables and the staging container on first use."""

    def __init__(
        self, tables: TableServiceClient, blobs: BlobServiceClient, *, prefix: str = "sync", container: str = "staging"
    ) -> None:
        if not prefix.isalnum() or not prefix[0].isalpha():
            raise ValueError("table prefix must be alphanumeric and start with a letter")
        self._tables = tables
        self._blobs = blobs
        self.prefix = prefix
        self.container_name = container
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(cls, connection_string: str, **kwargs: Any) -> StateStore:
        return cls(
            TableServiceClient.from_connection_string(connection_string, transport=_transport()),
            BlobServiceClient.from_connection_string(connection_string, transport=_transport()),
            **kwargs,
        )

    @classmethod
    def from_account(cls, account_name: str, credential: Any, **kwargs: Any) -> StateStore:
        """Identity-based access (managed identity in Azure): the storage account has shared keys disabled."""
        return cls(
            TableServiceClient(
                f"https://{account_name}.table.core.windows.net", credential=credential, transport=_transport()
            ),
            BlobServiceClient(
                f"https://{account_name}.blob.core.windows.net", credential=credential, transport=_transport()
            ),
            **kwargs,
        )

    def table(self, name: str) -> TableClient:
        if name not in TABLE_NAMES:
            raise KeyError(name)
        full = f"{self.prefix}{name}"
        client = self._tables.get_table_client(full)
        if full not in self._ready:
            with self._lock:
                if full not in self._ready:
                    try:
                        self._tables.create_table(full)
                    except ResourceExistsError:
                        pass
                    self._ready.add(full)
        return client

    def container(self) -> ContainerClient:
        client = self._blobs.get_container_client(self.container_name)
        if "__container__" not in self._ready:
            with self._lock:
                try:
                    client.create_container()
                except ResourceExistsError:
                    pass
                self._ready.add("__container__")
        return client

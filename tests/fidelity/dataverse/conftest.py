"""Microsoft's Dataverse SDK for Python (PowerPlatform-Dataverse-Client) wired to the sandbox.

How the SDK authenticates: it takes any azure-identity TokenCredential and asks it for `<org url>/.default`.
ClientSecretCredential reaches the sandbox's Entra stand-in through `authority=<authority host>` with
`disable_instance_discovery=True` (else MSAL first calls the public Microsoft host), and trusts the sandbox CA
through azure-core's `connection_verify=<CA path>`.

How the SDK's own HTTP calls trust the sandbox: it sends plain `requests` calls with default verification and
takes no `verify` option, so its only public way to trust another CA is requests' REQUESTS_CA_BUNDLE (which
otherwise overrides any `verify` on this machine anyway). The fixture sets it to the sandbox CA for the
duration of the test: TLS verification stays on, and only the sandbox's certificate is trusted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse.client import DataverseClient

from sandbox.dataverse import DataverseSandbox


@pytest.fixture
def credential(dataverse_sandbox: DataverseSandbox) -> Iterator[ClientSecretCredential]:
    credential = ClientSecretCredential(
        dataverse_sandbox.tenant_id,
        dataverse_sandbox.client_id,
        dataverse_sandbox.client_secret,
        authority=dataverse_sandbox.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(dataverse_sandbox.ca_path),
    )
    try:
        yield credential
    finally:
        credential.close()


@pytest.fixture
def sdk(
    dataverse_sandbox: DataverseSandbox, credential: ClientSecretCredential, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DataverseClient]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dataverse_sandbox.ca_path))
    with DataverseClient(dataverse_sandbox.url, credential) as client:
        yield client

"""DATAVERSE_CA_BUNDLE: a client that does not trust the server's CA is told so, by name, at once.

Against the real sandbox, whose certificate is signed by a CA it generates (as a private CA or a TLS-inspecting
proxy would): the token request and a Web API call from clients without that CA bundle."""

from __future__ import annotations

import ssl

import pytest
import requests

from sandbox.dataverse import DataverseSandbox
from shared.clients.dataverse import build_client
from shared.http import Outcome, RetryPolicy, TlsVerificationError, TransportError
from shared.http.errors import certificate_failure
from tests.fixtures.dataverse import token_provider_for


def test_token_request_without_the_ca_bundle_names_certificate_verification(
    dataverse_sandbox: DataverseSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system bundle does not hold the sandbox CA; make sure no environment variable smuggles it in.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    provider = token_provider_for(dataverse_sandbox, verify=True)
    with pytest.raises(TlsVerificationError) as caught:
        provider.token()
    message = str(caught.value)
    assert "TLS certificate verification failed" in message and "DATAVERSE_CA_BUNDLE" in message
    assert f"127.0.0.1:{dataverse_sandbox.port}" in message
    assert "unreachable" not in message and "SSLError" not in message
    assert caught.value.outcome is Outcome.FATAL
    assert isinstance(caught.value, TransportError)  # still "no response", for callers that test for that
    assert dataverse_sandbox.requests() == [], "nothing reached the server"


def test_web_api_call_without_the_ca_bundle_fails_at_once_naming_the_setting(
    dataverse_sandbox: DataverseSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    waits: list[float] = []
    client = build_client(
        dataverse_sandbox.url,
        token_provider_for(dataverse_sandbox),  # the token endpoint is trusted; the Web API session is not
        verify=True,
        policy=RetryPolicy(max_attempts=6, base_delay=1.0, max_total_wait=600),
        sleep=waits.append,
    )
    with pytest.raises(TlsVerificationError) as caught:
        client.total_record_count(["contact"])
    assert "TLS certificate verification failed" in str(caught.value)
    assert "DATAVERSE_CA_BUNDLE" in str(caught.value)
    assert caught.value.outcome is Outcome.FATAL
    assert waits == [], "an untrusted certificate is not retried"


def test_with_the_ca_bundle_the_same_calls_succeed(dataverse_sandbox: DataverseSandbox) -> None:
    provider = token_provider_for(dataverse_sandbox, verify=str(dataverse_sandbox.ca_path))
    client = build_client(dataverse_sandbox.url, provider, verify=str(dataverse_sandbox.ca_path))
    assert client.total_record_count(["contact"]) == {"contact": 0}


def test_certificate_failure_is_found_in_the_exception_chain_only() -> None:
    inner = ssl.SSLCertVerificationError(1, "certificate verify failed")
    wrapped = requests.exceptions.SSLError(requests.exceptions.ConnectionError(inner))
    assert certificate_failure(wrapped) is inner
    assert certificate_failure(requests.exceptions.ConnectionError("Connection refused")) is None
    assert certificate_failure(requests.exceptions.SSLError("wrong version number")) is None

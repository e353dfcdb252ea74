"""Tokens: real msal against the sandbox's Entra endpoint, caching, 401 refresh, certificates, TLS trust."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandbox.dataverse import DataverseSandbox
from shared.auth.dataverse_token import DataverseTokenProvider, TokenAcquisitionError
from shared.clients.dataverse import DataverseClient, build_client, build_dataverse_client, build_verified_session
from shared.http import ApiError, Outcome, TransportError
from tests.fixtures.dataverse import token_provider_for


def _token_requests(sandbox: DataverseSandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["path"].endswith("/oauth2/v2.0/token")]


def test_msal_acquires_a_token_the_way_it_really_calls_entra(
    dataverse_sandbox: DataverseSandbox, dataverse_tokens: DataverseTokenProvider
) -> None:
    token = dataverse_tokens.token()

    calls = [(r["method"], r["path"]) for r in dataverse_sandbox.requests()]
    tenant = dataverse_sandbox.tenant_id
    assert calls == [
        ("GET", f"/{tenant}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{tenant}/oauth2/v2.0/token"),
    ]
    assert dataverse_tokens.token() == token, "msal answers from its cache"
    assert len(_token_requests(dataverse_sandbox)) == 1


def test_requests_without_a_valid_token_get_401_in_dataverse_error_shape(dataverse_sandbox: DataverseSandbox) -> None:
    session = build_verified_session(str(dataverse_sandbox.ca_path))
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        response = session.get(f"{dataverse_sandbox.api_url}WhoAmI", headers=headers, timeout=10)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"code", "message"}
        assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


def test_a_401_invalidates_the_cached_token_and_the_request_succeeds_with_a_new_one(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    dataverse_sandbox.seed_contacts(1)
    assert dataverse_client.retrieve("contacts", dataverse_sandbox.rows("contacts")[0]["contactid"], ["firstname"])
    dataverse_sandbox.expire_access_tokens()
    dataverse_sandbox.clear_requests()

    assert dataverse_client.total_record_count(["contact"]) == {"contact": 1}

    statuses = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in dataverse_sandbox.requests()]
    assert statuses == [
        ("RetrieveTotalRecordCount(EntityNames=['contact'])", 401),
        ("token", 200),
        ("RetrieveTotalRecordCount(EntityNames=['contact'])", 200),
    ]


def test_a_token_past_its_lifetime_on_the_server_is_replaced_after_one_401(
    dataverse_sandbox: DataverseSandbox, dataverse_client: DataverseClient
) -> None:
    dataverse_client.total_record_count(["contact"])
    # Only the sandbox's clock moves: msal (real clock) still trusts its cached token, so it is sent,
    # refused with 401, dropped from msal's cache and replaced by exactly one new token.
    dataverse_sandbox.advance_clock(3600)

    dataverse_client.total_record_count(["contact"])

    assert len(_token_requests(dataverse_sandbox)) == 2
    assert [r["status"] for r in dataverse_sandbox.requests()][-3:] == [401, 200, 200]


def test_wrong_secret_is_a_fatal_token_error_without_the_secret_in_it(dataverse_sandbox: DataverseSandbox) -> None:
    provider = token_provider_for(dataverse_sandbox, client_secret="not-the-secret")

    with pytest.raises(TokenAcquisitionError) as caught:
        provider.token()

    assert caught.value.outcome is Outcome.FATAL
    assert "invalid_client" in str(caught.value) and "AADSTS7000215" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


def test_wrong_scope_and_unknown_tenant_are_refused(dataverse_sandbox: DataverseSandbox) -> None:
    with pytest.raises(TokenAcquisitionError, match="invalid_scope"):
        token_provider_for(dataverse_sandbox, resource_url="https://other.crm.dynamics.com").token()
    stranger = DataverseTokenProvider(
        "00000000-0000-0000-0000-000000000000",
        dataverse_sandbox.client_id,
        resource_url=dataverse_sandbox.url,
        client_secret=dataverse_sandbox.client_secret,
        authority_host=dataverse_sandbox.authority_host,
        verify=str(dataverse_sandbox.ca_path),
    )
    with pytest.raises(ApiError):
        stranger.token()


def _certificate() -> tuple[str, bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    thumbprint = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return key_pem, cert_pem, thumbprint


def test_certificate_credentials_sign_a_client_assertion_the_sandbox_verifies(
    dataverse_sandbox: DataverseSandbox,
) -> None:
    key_pem, cert_pem, thumbprint = _certificate()
    dataverse_sandbox.register_client("cert-app", certificate_pem=cert_pem)
    good = DataverseTokenProvider(
        dataverse_sandbox.tenant_id,
        "cert-app",
        resource_url=dataverse_sandbox.url,
        certificate=(key_pem + cert_pem.decode(), thumbprint),  # the settings hold key and certificate together
        authority_host=dataverse_sandbox.authority_host,
        verify=str(dataverse_sandbox.ca_path),
    )
    assert good.token()

    other_key, _, _ = _certificate()
    forged = DataverseTokenProvider(
        dataverse_sandbox.tenant_id,
        "cert-app",
        resource_url=dataverse_sandbox.url,
        certificate=(other_key, thumbprint),
        authority_host=dataverse_sandbox.authority_host,
        verify=str(dataverse_sandbox.ca_path),
    )
    with pytest.raises(TokenAcquisitionError, match="invalid_client"):
        forged.token()


def test_tls_trust_comes_from_configuration_even_when_requests_ca_bundle_is_set(
    dataverse_sandbox: DataverseSandbox, monkeypatch: pytest.MonkeyPatch, make_dataverse_client: Callable
) -> None:
    # The system bundle does not hold the sandbox CA: if the environment won, TLS would fail.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = make_dataverse_client()
    assert client.total_record_count(["contact"]) == {"contact": 0}

    # And a client that trusts only the system CAs refuses the sandbox's certificate.
    untrusting = build_client(
        dataverse_sandbox.url, token_provider_for(dataverse_sandbox), verify=True, sleep=lambda s: None
    )
    with pytest.raises(TransportError):
        untrusting.total_record_count(["contact"])


def test_build_dataverse_client_from_settings_values(dataverse_sandbox: DataverseSandbox) -> None:
    key_pem, cert_pem, thumbprint = _certificate()
    dataverse_sandbox.register_client("settings-app", certificate_pem=cert_pem)
    common = {
        "url": dataverse_sandbox.url,
        "tenant_id": dataverse_sandbox.tenant_id,
        "authority_host": dataverse_sandbox.authority_host,
        "verify": str(dataverse_sandbox.ca_path),
        "page_size": 10,
        "max_parallel": 2,
    }
    with_secret = build_dataverse_client(
        client_id=dataverse_sandbox.client_id, client_secret=dataverse_sandbox.client_secret, **common
    )
    with_certificate = build_dataverse_client(
        client_id="settings-app",
        certificate=key_pem + cert_pem.decode(),
        certificate_thumbprint=thumbprint,
        **common,
    )

    for client in (with_secret, with_certificate):
        assert client.total_record_count(["contact"]) == {"contact": 0}
        assert (client.page_size, client.max_parallel) == (10, 2)

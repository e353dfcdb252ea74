"""The Entra ID stand-in: TLS material made at start-up, client-credentials tokens, bearer checks.

MSAL Python refuses plain-http authorities, so the sandbox serves https with a CA and a server
certificate generated here (cryptography). With instance discovery off, MSAL calls
GET /<tenant>/v2.0/.well-known/openid-configuration, then POST /<tenant>/oauth2/v2.0/token
(reference/local-stack.md). Error bodies follow Entra's {"error", "error_description"} shape with
AADSTS codes.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import ipaddress
import secrets
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_TENANT = "7c1f5b1e-0000-4000-8000-00000000d365"
DEFAULT_CLIENT_ID = "0d365c11-e000-4000-8000-00000000c11e"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    ca_path: Path  # trust this (and only in tests/demo) to talk to the sandbox
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def make_tls(directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A throw-away CA and a server certificate for `hosts`, written as PEM files to `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dataverse sandbox CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digitalSignature, keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "sandbox-ca.pem", directory / "sandbox-cert.pem", directory / "sandbox-key.pem")
    files.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@dataclasses.dataclass
class _Client:
    secret: str | None
    certificate: x509.Certificate | None


@dataclasses.dataclass(frozen=True)
class _Issued:
    client_id: str
    expires_at: float
    generation: int


class Entra:
    """App registrations, issued access tokens and their validity."""

    def __init__(self, *, tenant_id: str, resource: str, clock: Callable[[], float], lifetime: int = 3599) -> None:
        self.tenant_id = tenant_id
        self.resource = resource.rstrip("/")
        self.clock = clock
        self.lifetime = lifetime
        self.clients: dict[str, _Client] = {}
        self._tokens: dict[str, _Issued] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.issued_count = 0

    def register(self, client_id: str, *, secret: str | None = None, certificate_pem: bytes | None = None) -> None:
        certificate = x509.load_pem_x509_certificate(certificate_pem) if certificate_pem else None
        self.clients[client_id] = _Client(secret, certificate)

    def openid_configuration(self, base_url: str, tenant: str) -> dict[str, Any]:
        root = f"{base_url}/{tenant}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "issuer": f"{root}/v2.0",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
        }

    def token(self, tenant: str, form: dict[str, str], token_endpoint: str) -> tuple[int, dict[str, Any]]:
        """Answer a token request: (status, body) in Entra's shapes."""
        if tenant != self.tenant_id:
            return 400, _aad("invalid_tenant", "AADSTS90002", f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return 400, _aad("unsupported_grant_type", "AADSTS70003", "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        client = self.clients.get(client_id)
        if client is None:
            return 400, _aad(
                "unauthorized_client",
                "AADSTS700016",
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not self._authenticated(client, client_id, form, token_endpoint):
            return 401, _aad("invalid_client", "AADSTS7000215", "Invalid client secret or assertion provided.")
        scopes = form.get("scope", "").split()
        if f"{self.resource}/.default" not in scopes:
            return 400, _aad("invalid_scope", "AADSTS500011", "The resource principal was not found in the tenant.")
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": self.issue(client_id),
        }

    def _authenticated(self, client: _Client, client_id: str, form: dict[str, str], audience: str) -> bool:
        if "client_secret" in form:
            return client.secret is not None and secrets.compare_digest(form["client_secret"], client.secret)
        assertion = form.get("client_assertion")
        if assertion and client.certificate is not None:
            return _valid_assertion(assertion, client.certificate, client_id, audience)
        return False

    def issue(self, client_id: str) -> str:
        token = "sbx." + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Issued(client_id, self.clock() + self.lifetime, self._generation)
            self.issued_count += 1
        return token

    def valid(self, authorization: str | None) -> bool:
        return self.client_of(authorization) is not None

    def client_of(self, authorization: str | None) -> str | None:
        """The app registration a valid bearer token was issued to (None: missing, unknown or expired)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        issued = self._tokens.get(authorization[7:].strip())
        if issued is None or issued.generation != self._generation or issued.expires_at <= self.clock():
            return None
        return issued.client_id

    def expire_all(self) -> None:
        """Every token issued so far is rejected from now on (as if it had expired)."""
        with self._lock:
            self._generation += 1
            self._tokens.clear()


def _aad(error: str, code: str, text: str) -> dict[str, Any]:
    return {"error": error, "error_description": f"{code}: {text}", "error_codes": [int(code[6:])]}


def _valid_assertion(assertion: str, certificate: x509.Certificate, client_id: str, audience: str) -> bool:
    """Check a private_key_jwt client assertion: signature by the registered certificate, claims, thumbprint."""
    import jwt  # PyJWT, installed with msal

    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(
            assertion,
            certificate.public_key(),  # type: ignore[arg-type]
            algorithms=["RS256", "PS256"],
            audience=audience,
            options={"require": ["exp", "iss", "sub", "aud"]},
            leeway=300,
        )
    except jwt.PyJWTError:
        return False
    der = certificate.public_bytes(serialization.Encoding.DER)
    thumbprints = {
        "x5t": base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("="),
        "x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("="),
    }
    # msal keeps the base64 padding of x5t; compare without it.
    if not any(str(header.get(k, "")).rstrip("=") == v for k, v in thumbprints.items()):
        return False
    return claims.get("iss") == client_id and claims.get("sub") == client_id

"""Host-key pinning and key authentication against the real sshd."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sandbox.sshd import SshdServer
from shared.clients.sftp import (
    HostKeyMismatch,
    SftpAuthError,
    SftpClient,
    SftpConfigError,
    SftpError,
    SftpKeyError,
    UnknownHostKey,
    fingerprint_of,
    parse_host_key_pins,
)
from shared.settings import Secret, SftpSettings
from tests.fixtures.sftp import RecordingSleep

MakeClient = Callable[..., SftpClient]


def _openssh_fingerprint(public_line: str, tmp_path: Path) -> str:
    """The fingerprint as OpenSSH itself prints it (an independent check of ours)."""
    pub = tmp_path / "key.pub"
    pub.write_text(public_line + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[1]


def _other_public_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _server_fingerprint(server: SshdServer) -> str:
    pins = parse_host_key_pins(server.host_public_key)
    return pins[0].fingerprint


def _accepted_logins(server: SshdServer) -> int:
    return server.log_path.read_text(errors="replace").count("Accepted publickey")


_ECDSA_LINE = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
)


# -- pins that must connect --------------------------------------------------------------------------------------


def test_fingerprints_match_openssh(sshd_server: SshdServer, tmp_path: Path) -> None:
    assert _server_fingerprint(sshd_server) == _openssh_fingerprint(sshd_server.host_public_key, tmp_path)


@pytest.mark.parametrize(
    "pin_style", ["key line", "key line with comment", "known_hosts line", "fingerprint", "fingerprint padded"]
)
def test_pinned_key_in_each_accepted_format_connects(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_folder: Path, pin_style: str
) -> None:
    line = sshd_server.host_public_key
    fingerprint = _server_fingerprint(sshd_server)
    pin = {
        "key line": line,
        "key line with comment": f"  {line} sftp-host@example  ",
        "known_hosts line": f"[{sshd_server.host}]:{sshd_server.port} {line}",
        "fingerprint": fingerprint,
        "fingerprint padded": fingerprint + "=",
    }[pin_style]
    with make_sftp_client(host_key=pin) as client:
        assert client.list_ready(str(sftp_folder)) == []


def test_several_pins_allow_a_key_rotation(make_sftp_client: MakeClient, sshd_server: SshdServer) -> None:
    pins = f"# old key, then the new one\n{_other_public_line()}\n\n{sshd_server.host_public_key}\n"
    with make_sftp_client(host_key=pins) as client:
        client.stat(str(sshd_server.root))


# -- pins that must refuse ---------------------------------------------------------------------------------------


def test_wrong_host_key_is_refused_before_authenticating(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_sleep: RecordingSleep
) -> None:
    other = _other_public_line()
    logins_before = _accepted_logins(sshd_server)
    client = make_sftp_client(host_key=other)
    with pytest.raises(HostKeyMismatch) as caught:
        client.connect()
    error = caught.value
    message = str(error)
    where = f"{sshd_server.host}:{sshd_server.port}"
    assert where in message
    assert _server_fingerprint(sshd_server) in message  # what the server showed
    assert parse_host_key_pins(other)[0].fingerprint in message  # what we expected
    assert (error.host_port, error.seen) == (where, _server_fingerprint(sshd_server))
    assert error.expected == (parse_host_key_pins(other)[0].fingerprint,)
    assert not error.retryable
    assert sftp_sleep.calls == []  # a wrong key is not a transient fault
    assert _accepted_logins(sshd_server) == logins_before  # we never authenticated to the impostor
    private_body = sshd_server.client_private_key.splitlines()[1]
    assert private_body not in message


def test_wrong_fingerprint_is_refused(make_sftp_client: MakeClient) -> None:
    wrong = parse_host_key_pins(_other_public_line())[0].fingerprint
    with pytest.raises(HostKeyMismatch, match="does not match the pinned host key"):
        make_sftp_client(host_key=wrong).connect()


def test_pinned_key_of_a_type_the_server_lacks_is_a_mismatch_naming_the_seen_key(
    make_sftp_client: MakeClient, sshd_server: SshdServer
) -> None:
    ecdsa_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pin = ecdsa_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(HostKeyMismatch) as caught:
        make_sftp_client(host_key=pin).connect()
    assert caught.value.seen == _server_fingerprint(sshd_server)
    assert "ssh-ed25519" in str(caught.value)


@pytest.mark.parametrize("missing", [None, "", "  \n# nothing pinned yet\n"])
def test_unknown_host_key_is_refused_and_names_what_to_pin(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_sleep: RecordingSleep, missing: str | None
) -> None:
    logins_before = _accepted_logins(sshd_server)
    with pytest.raises(UnknownHostKey) as caught:
        make_sftp_client(host_key=missing).connect()
    message = str(caught.value)
    assert f"{sshd_server.host}:{sshd_server.port}" in message
    assert _server_fingerprint(sshd_server) in message
    assert "no host key is pinned" in message
    assert isinstance(caught.value, SftpError)
    assert sftp_sleep.calls == []
    assert _accepted_logins(sshd_server) == logins_before


@pytest.mark.parametrize(
    "bad_pin",
    [
        "not a key",
        "ssh-ed25519 !!!notbase64!!!",
        "SHA256:tooshort",
        "MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48",
        # a valid ecdsa key labelled as ed25519
        "ssh-ed25519 " + _ECDSA_LINE.split()[1],
    ],
)
def test_unreadable_pin_is_a_configuration_error(make_sftp_client: MakeClient, bad_pin: str) -> None:
    with pytest.raises(SftpConfigError, match="line 1"):
        make_sftp_client(host_key=bad_pin)


def test_fingerprint_of_is_sha256_without_padding() -> None:
    assert fingerprint_of(b"") == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"


# -- client keys ---------------------------------------------------------------------------------------------------


def _private_text(key: object, fmt: serialization.PrivateFormat, passphrase: str | None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()  # type: ignore[attr-defined]


def _public_line(key: object) -> str:
    public = key.public_key()  # type: ignore[attr-defined]
    return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.mark.parametrize(
    ("kind", "fmt", "passphrase"),
    [
        ("ed25519", serialization.PrivateFormat.OpenSSH, "correct horse"),
        ("ecdsa", serialization.PrivateFormat.OpenSSH, None),
        ("rsa", serialization.PrivateFormat.TraditionalOpenSSL, "s3cret-pass"),
        ("rsa", serialization.PrivateFormat.PKCS8, None),
    ],
)
def test_client_keys_in_openssh_and_pem_formats_with_or_without_passphrase(
    make_sftp_client: MakeClient, sshd_server: SshdServer, kind: str, fmt: serialization.PrivateFormat, passphrase: str
) -> None:
    key = {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }[kind]()
    sshd_server.authorize(_public_line(key))
    text = _private_text(key, fmt, passphrase)
    with make_sftp_client(private_key=text, private_key_passphrase=passphrase) as client:
        client.stat(str(sshd_server.root))


def test_key_pasted_on_one_line_with_escaped_newlines_works(
    make_sftp_client: MakeClient, sshd_server: SshdServer
) -> None:
    one_line = sshd_server.client_private_key.strip().replace("\n", "\\n")
    with make_sftp_client(private_key=one_line) as client:
        client.stat(str(sshd_server.root))


@pytest.mark.parametrize("given", [None, "wrong passphrase"])
def test_wrong_or_missing_passphrase_is_a_key_error_without_secrets(make_sftp_client: MakeClient, given: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    text = _private_text(key, serialization.PrivateFormat.OpenSSH, "the real passphrase")
    with pytest.raises(SftpKeyError) as caught:
        make_sftp_client(private_key=text, private_key_passphrase=given)
    message = str(caught.value)
    assert "passphrase" in message
    assert "the real passphrase" not in message and "wrong passphrase" not in message
    assert text.splitlines()[1] not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_not_a_key_is_a_key_error(make_sftp_client: MakeClient) -> None:
    with pytest.raises(SftpKeyError):
        make_sftp_client(private_key="-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----")


def test_client_key_the_server_does_not_know_is_refused_without_retries(
    make_sftp_client: MakeClient, sshd_server: SshdServer, sftp_sleep: RecordingSleep
) -> None:
    stranger = _private_text(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH, None)
    with pytest.raises(SftpAuthError) as caught:
        make_sftp_client(private_key=stranger).connect()
    message = str(caught.value)
    assert f"{sshd_server.host}:{sshd_server.port}" in message
    assert sshd_server.username in message
    assert stranger.splitlines()[1] not in message
    assert sftp_sleep.calls == []


def test_client_from_app_settings(sshd_server: SshdServer, sftp_folder: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    sshd_server.authorize(_public_line(key))
    settings = SftpSettings(
        host=sshd_server.host,
        port=sshd_server.port,
        username=sshd_server.username,
        private_key=Secret(_private_text(key, serialization.PrivateFormat.OpenSSH, "pass phrase")),
        passphrase=Secret("pass phrase"),
        host_key=_server_fingerprint(sshd_server),
        upload_folder=str(sftp_folder / "imports"),
        export_folder=str(sftp_folder / "exports"),
        archive_folder=str(sftp_folder / "archive"),
    )
    with SftpClient.from_settings(settings, connect_timeout=5.0) as client:
        client.makedirs(settings.upload_folder)
    assert (sftp_folder / "imports").is_dir()

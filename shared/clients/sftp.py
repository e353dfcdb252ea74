"""SFTP adapter (paramiko): pinned host key, key authentication, atomic uploads, inbound listing/download/archive.

Guarantees:
- The server's host key must match a pinned key (an OpenSSH public-key line or a `SHA256:` fingerprint) before the
  client authenticates; an unpinned or different key is refused with `UnknownHostKey` / `HostKeyMismatch`.
- `upload` writes `<name>.part`, checks the size the server holds, then renames with `posix-rename@openssh.com`
  (atomic, overwrites), so a reader never sees an incomplete file under the final name.
- A dropped connection is retried a bounded number of times (`RetryPolicy`, injectable sleep): the client reconnects
  and resumes the transfer at the size the server holds once the tail of that data matches the source, or restarts
  from zero. A `.part` left by an earlier call is never trusted: the source may have changed since.
- Errors are `SftpError` subclasses with `retryable` set; messages name host:port, paths and fingerprints, never the
  private key or its passphrase.

Not thread-safe: use one client per worker. Paths are used as given (relative paths start at the login folder).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import fnmatch
import hashlib
import io
import logging
import os
import posixpath
import random
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, TypeVar

import paramiko
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared.http.retry import RetryPolicy

if TYPE_CHECKING:
    from shared.settings import SftpSettings

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
# Names that uploaders use while a file is still being written (ours, WinSCP's, curl's, common tools'), plus hidden
# names (rsync and many scripts write `.name.XXXX` and rename at the end).
TEMPORARY_SUFFIXES = (".part", ".partial", ".filepart", ".tmp", ".temp")
CHUNK_SIZE = 1024 * 1024
RESUME_CHECK_BYTES = 64 * 1024  # tail of a partial upload compared with the source before resuming
DOWNLOAD_WINDOW = 8 * CHUNK_SIZE  # bytes requested ahead of the sink while downloading
CANNOT_REWIND = "the source stream cannot be rewound, start the upload again with a fresh stream"
DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=30.0, max_total_wait=120.0)

# Host-key algorithms to prefer for a pinned key type, so a server with several host keys shows the pinned one.
_ALGORITHMS_FOR_KEY_TYPE = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}

T = TypeVar("T")
Source = str | os.PathLike[str] | IO[bytes]
Target = str | os.PathLike[str] | IO[bytes]


# -- errors ---------------------------------------------------------------------------------------------------------


class SftpError(Exception):
    """Any SFTP failure. `retryable` says whether trying the whole operation again later can help."""

    retryable = False


class SftpConfigError(SftpError, ValueError):
    """The SFTP settings are unusable (pinned host key format, private key)."""


class SftpKeyError(SftpConfigError):
    """The private key cannot be read: wrong or missing passphrase, or an unsupported format."""


class UnknownHostKey(SftpError):
    """No host key is pinned, so the server's identity cannot be checked."""

    def __init__(self, message: str, *, host_port: str, seen: str) -> None:
        super().__init__(message)
        self.host_port = host_port
        self.seen = seen


class HostKeyMismatch(SftpError):
    """The server presented a host key other than the pinned one(s)."""

    def __init__(self, message: str, *, host_port: str, seen: str, expected: tuple[str, ...]) -> None:
        super().__init__(message)
        self.host_port = host_port
        self.seen = seen
        self.expected = expected


class SftpAuthError(SftpError):
    """The server refused the client key."""


class SftpConnectionLost(SftpError):
    """The connection failed or dropped and the bounded retries ran out."""

    retryable = True


class SftpIntegrityError(SftpError):
    """After a transfer the sizes disagree; nothing was published under the final name."""

    retryable = True


class RemoteFileNotFound(SftpError):
    """The remote path does not exist."""


class SftpRemoteError(SftpError):
    """The server refused an operation (permissions, disk full, not a folder...)."""


# -- values ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    name: str
    path: str
    size: int
    mtime: int  # seconds since the epoch, as the server reports it


@dataclasses.dataclass(frozen=True)
class HostKeyPin:
    fingerprint: str  # "SHA256:<base64 without padding>", as `ssh-keygen -l` prints it
    key_type: str | None = None  # known when pinned from a public-key line


def fingerprint_of(key_blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key in wire format."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_host_key_pins(text: str | None) -> tuple[HostKeyPin, ...]:
    """Pins from settings: one per line, each an OpenSSH public-key line (`ssh-ed25519 AAAA... [comment]`, a
    known_hosts line with host names in front is fine too) or a `SHA256:...` fingerprint. Several lines allow a
    key rotation. Blank lines and `#` comments are skipped."""
    pins: list[HostKeyPin] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pin = _parse_fingerprint(line) if line.upper().startswith("SHA256:") else _parse_key_line(line)
        if pin is None:
            raise SftpConfigError(
                f"pinned SFTP host key, line {number}: expected an OpenSSH public-key line such as "
                "'ssh-ed25519 AAAA...' or a fingerprint such as 'SHA256:...'"
            )
        pins.append(pin)
    return tuple(pins)


def _parse_fingerprint(line: str) -> HostKeyPin | None:
    encoded = line.split()[0].split(":", 1)[1].rstrip("=")
    try:
        digest = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        return None
    if len(digest) != hashlib.sha256().digest_size:
        return None
    return HostKeyPin("SHA256:" + encoded)


def _parse_key_line(line: str) -> HostKeyPin | None:
    tokens = line.split()
    for index, token in enumerate(tokens[:-1]):
        if token not in _ALGORITHMS_FOR_KEY_TYPE:
            continue
        try:
            blob = base64.b64decode(tokens[index + 1], validate=True)
        except binascii.Error:
            return None
        if _blob_key_type(blob) != token:
            return None
        return HostKeyPin(fingerprint_of(blob), token)
    return None


def _blob_key_type(blob: bytes) -> str | None:
    # The wire format starts with the key type as an SSH string: uint32 length, then the name.
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    name = blob[4 : 4 + length]
    return name.decode("ascii", "replace") if len(name) == length else None


def load_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    """A paramiko key from PEM or OpenSSH private-key text (ed25519, ECDSA or RSA), optionally encrypted."""
    password = passphrase.encode() if passphrase else None
    if "\n" not in text.strip() and "\\n" in text:
        text = text.replace("\\n", "\n")  # a key pasted into a one-line setting with escaped line breaks
    data = text.strip().encode() + b"\n"
    loaded: object
    try:
        try:
            loaded = serialization.load_ssh_private_key(data, password=password)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # `from None`: the parser's message is about the key's content, and the key is secret.
        raise SftpKeyError(
            "the SFTP private key cannot be read: wrong or missing passphrase, or not a PEM/OpenSSH private key"
        ) from None
    key_class: type[paramiko.PKey]
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        key_class = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        key_class = paramiko.ECDSAKey
    elif isinstance(loaded, rsa.RSAPrivateKey):
        key_class = paramiko.RSAKey
    else:
        raise SftpKeyError(f"the SFTP private key type {type(loaded).__name__} is not supported")
    # Hand paramiko one format it reads for every key type (it does not read PKCS#8 "BEGIN PRIVATE KEY").
    openssh = loaded.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    try:
        return key_class.from_private_key(io.StringIO(openssh))
    except (paramiko.SSHException, ValueError, TypeError):
        raise SftpKeyError("the SFTP private key cannot be loaded by the SSH library") from None


MAX_NAME = 255  # what any file system holds; a longer name comes from a broken or hostile server
_CONTROL = frozenset(chr(c) for c in (*range(32), 127))


def unsafe_name(name: str) -> str | None:
    """Why a name a server listed cannot be one file inside the listed folder (a path out of it, characters that
    would forge log lines), or None when it is safe to join to the folder."""
    if name in ("", ".", ".."):
        return "not a file name"
    if len(name) > MAX_NAME:
        return f"longer than {MAX_NAME} characters"
    if "/" in name or "\\" in name:
        return "holds a path separator"
    if not _CONTROL.isdisjoint(name):
        return "holds a control character"
    return None


def is_temporary_name(name: str) -> bool:
    """True for names of files that are probably still being written."""
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


# -- client ---------------------------------------------------------------------------------------------------------


class SftpClient:
    """One SFTP session to one server; reconnects by itself after a dropped connection (bounded retries)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        private_key: str,
        host_key: str | None,
        *,
        private_key_passphrase: str | None = None,
        connect_timeout: float = 15.0,
        operation_timeout: float = 60.0,
        keepalive_interval: int = 30,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._port = int(port)
        self._where = f"{host}:{self._port}"
        self._username = username
        self._pins = parse_host_key_pins(host_key)
        self._pkey = load_private_key(private_key, private_key_passphrase)
        self._connect_timeout = connect_timeout
        self._operation_timeout = operation_timeout
        self._keepalive_interval = keepalive_interval
        self._retry = retry
        self._sleep = sleep
        self._rand = rand
        self._clock = clock
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @classmethod
    def from_settings(cls, settings: SftpSettings, **options: object) -> SftpClient:
        """A client for the app's SFTP settings; `options` are the keyword arguments of the constructor."""
        passphrase = settings.passphrase.reveal() if settings.passphrase else None
        return cls(
            settings.host,
            settings.port,
            settings.username,
            settings.private_key.reveal(),
            settings.host_key,
            private_key_passphrase=passphrase,
            **options,  # type: ignore[arg-type]
        )

    # -- session lifecycle -----------------------------------------------------------------------------------------

    def __enter__(self) -> SftpClient:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Open the session now (operations also open it on demand). Raises the host-key and auth errors."""
        self._retrying("connect to", "the server", lambda sftp, attempt: None)

    def close(self) -> None:
        sftp, transport = self._sftp, self._transport
        self._sftp = self._transport = None
        with contextlib.suppress(Exception):
            if sftp is not None:
                sftp.close()
        with contextlib.suppress(Exception):
            if transport is not None:
                transport.close()

    # -- operations ------------------------------------------------------------------------------------------------

    def upload(self, source: Source, remote_path: str) -> int:
        """Upload a local file (path) or the rest of a binary file object to `remote_path`; returns the size.

        The data goes to `remote_path + ".part"` first and is renamed only once the server holds every byte.
        A file object that cannot seek is uploaded once: if the connection drops after reading from it, the call
        fails with `SftpConnectionLost` and the caller must start again with a fresh stream.
        """
        with _opened(source) as src:
            return self._upload(src, remote_path)

    def download(self, remote_path: str, target: Target) -> int:
        """Download `remote_path` to a local path (written as `<path>.part`, then renamed) or into a binary file
        object (from its current position). Returns the number of bytes."""
        if not isinstance(target, str | os.PathLike):
            return self._download(remote_path, target)
        final = Path(target)
        partial = final.with_name(final.name + PART_SUFFIX)
        try:
            with partial.open("wb") as sink:
                size = self._download(remote_path, sink)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        return size

    def list_ready(self, folder: str, pattern: str | None = None, *, min_age: float = 0.0) -> list[RemoteFile]:
        """Regular files in `folder` that are ready to read, oldest first.

        Skipped: names that are not one safe file name (`unsafe_name`, logged), temporary names
        (`is_temporary_name`), names not matching the glob `pattern` (case-sensitive), and files modified less than
        `min_age` seconds ago (for writers that do not use temporary names).
        """
        entries = self._retrying("list", folder, lambda sftp, attempt: sftp.listdir_attr(folder))
        newest_allowed = self._clock() - min_age
        ready = []
        for entry in entries:
            name = entry.filename
            why = unsafe_name(name)
            if why is not None:
                log.warning("sftp.unsafe_name folder=%s name=%s reason=%s: skipped, never read", folder,
                            ascii(name)[:80], why)  # fmt: skip
                continue
            if not stat.S_ISREG(entry.st_mode or 0) or is_temporary_name(name):
                continue
            if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
                continue
            mtime = int(entry.st_mtime or 0)
            if min_age > 0 and mtime > newest_allowed:
                continue
            ready.append(RemoteFile(name, posixpath.join(folder, name), int(entry.st_size or 0), mtime))
        return sorted(ready, key=lambda f: (f.mtime, f.name))

    def stat(self, remote_path: str) -> RemoteFile:
        attrs = self._retrying("stat", remote_path, lambda sftp, attempt: sftp.stat(remote_path))
        name = posixpath.basename(remote_path)
        return RemoteFile(name, remote_path, int(attrs.st_size or 0), int(attrs.st_mtime or 0))

    def makedirs(self, folder: str) -> None:
        """Create `folder` and its missing parents; an existing folder is fine."""
        self._retrying("makedirs", folder, lambda sftp, attempt: _makedirs(sftp, folder))

    def archive(self, remote_path: str, archive_folder: str) -> str:
        """Move a processed file into `archive_folder` (created when missing); returns its new path.

        An archived file of the same name is never overwritten: the new one gets a `-1`, `-2`... suffix.
        """
        self.makedirs(archive_folder)
        name = posixpath.basename(remote_path)
        tried: list[str] = []

        def attempt(sftp: paramiko.SFTPClient, number: int) -> str:
            # A rename whose reply was lost with the connection may have happened already.
            if tried and not _exists(sftp, remote_path) and _exists(sftp, tried[-1]):
                return tried[-1]
            for n in range(1000):
                target = posixpath.join(archive_folder, _numbered(name, n))
                if _exists(sftp, target):
                    continue
                tried.append(target)
                try:
                    # Plain SFTP rename fails when the target exists (draft-ietf-secsh-filexfer-02 §6.5; OpenSSH
                    # links then unlinks), so a file archived in between by someone else is not overwritten.
                    sftp.rename(remote_path, target)
                except OSError:
                    if self._alive() and _exists(sftp, target) and _exists(sftp, remote_path):
                        continue
                    raise
                return target
            raise SftpRemoteError(f"archive of {remote_path} on {self._where}: no free name in {archive_folder}")

        return self._retrying("archive", remote_path, attempt)

    # -- upload / download internals ------------------------------------------------------------------------------

    def _upload(self, src: IO[bytes], remote_path: str) -> int:
        part = remote_path + PART_SUFFIX
        seekable = _seekable(src)
        base = src.tell() if seekable else 0
        progress = _Progress()

        def attempt(sftp: paramiko.SFTPClient, number: int) -> int:
            if progress.renaming and not _exists(sftp, part):
                with contextlib.suppress(FileNotFoundError):
                    final = int(sftp.stat(remote_path).st_size or 0)
                    if final == progress.done:  # the rename went through before the connection dropped
                        return final
            offset = 0
            if progress.started:
                if not seekable:
                    raise SftpConnectionLost(f"upload {remote_path} on {self._where}: {CANNOT_REWIND}")
                offset = _resumable_offset(sftp, part, src, base, progress.done)
                src.seek(base + offset)
            progress.started = True
            sent = _write_part(sftp, part, src, offset, progress)
            held = int(sftp.stat(part).st_size or 0)
            if held != sent:
                with contextlib.suppress(OSError):
                    sftp.remove(part)
                raise SftpIntegrityError(
                    f"upload of {remote_path} to {self._where}: the server holds {held} bytes of {sent} sent; "
                    "the partial file was removed"
                )
            progress.renaming = True
            sftp.posix_rename(part, remote_path)
            final = int(sftp.stat(remote_path).st_size or 0)
            if final != sent:
                raise SftpIntegrityError(
                    f"upload of {remote_path} to {self._where}: {final} bytes under the final name after the rename, "
                    f"expected {sent}; another writer may be using the same name"
                )
            if number > 1:
                log.info("SFTP upload to %s completed on attempt %d (%d bytes)", self._where, number, sent)
            return sent

        def blocker() -> str | None:
            return CANNOT_REWIND if progress.started and not seekable and not progress.renaming else None

        return self._retrying("upload", remote_path, attempt, retry_blocker=blocker)

    def _download(self, remote_path: str, sink: IO[bytes]) -> int:
        seekable = _seekable(sink)
        base = sink.tell() if seekable else 0
        progress = _Progress()

        def attempt(sftp: paramiko.SFTPClient, number: int) -> int:
            attrs = sftp.stat(remote_path)
            size, identity = int(attrs.st_size or 0), (int(attrs.st_size or 0), int(attrs.st_mtime or 0))
            if progress.done and identity != progress.identity:
                # The file changed while we were away: what we hold belongs to the old version.
                if not seekable:
                    raise SftpConnectionLost(
                        f"download of {remote_path} from {self._where}: the file changed after a dropped connection "
                        "and the target cannot be rewound; download again"
                    )
                sink.seek(base)
                sink.truncate()
                progress.done = 0
            progress.identity = identity
            with sftp.open(remote_path, "rb") as remote:
                # Read ahead one window at a time: fast over high-latency links, yet memory stays bounded
                # (paramiko's whole-file prefetch buffers as much as the server sends, however slow the sink).
                while progress.done < size:
                    end = min(size, progress.done + DOWNLOAD_WINDOW)
                    blocks = [(at, min(CHUNK_SIZE, end - at)) for at in range(progress.done, end, CHUNK_SIZE)]
                    for (_, length), data in zip(blocks, remote.readv(blocks), strict=True):
                        sink.write(data)
                        progress.done += len(data)
                        if len(data) != length:  # the file shrank while we read it
                            break
                    else:
                        continue
                    break
            if progress.done != size:
                raise SftpIntegrityError(
                    f"download of {remote_path} from {self._where}: got {progress.done} of {size} bytes"
                )
            return size

        return self._retrying("download", remote_path, attempt)

    # -- connection and retries ------------------------------------------------------------------------------------

    def _retrying(
        self,
        action: str,
        path: str,
        attempt: Callable[[paramiko.SFTPClient, int], T],
        *,
        retry_blocker: Callable[[], str | None] = lambda: None,
    ) -> T:
        """Run `attempt` on a live session; on a lost connection reconnect and run it again, within the policy.

        `retry_blocker` returns why another attempt cannot succeed (or None), checked before waiting."""
        waited = 0.0
        number = 0
        while True:
            number += 1
            try:
                return attempt(self._session(), number)
            except SftpError:
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                if not self._is_connection_loss(exc):
                    raise self._remote_error(action, path, exc) from exc
                self.close()
                reason = _describe(exc)
                blocked = retry_blocker()
                if blocked:
                    raise SftpConnectionLost(
                        f"{action} {path} on {self._where}: connection lost ({reason}); {blocked}"
                    ) from exc
                delay = self._retry.backoff(number, self._rand)
                if number >= self._retry.max_attempts or waited + delay > self._retry.max_total_wait:
                    raise SftpConnectionLost(
                        f"{action} {path} on {self._where}: connection failed or lost ({reason}) "
                        f"after {number} attempt(s)"
                    ) from exc
                log.warning(
                    "SFTP %s on %s: connection lost (%s), attempt %d; retrying in %.1f s",
                    action,
                    self._where,
                    reason,
                    number,
                    delay,
                )
                self._sleep(delay)
                waited += delay

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is not None and self._alive():
            return self._sftp
        self.close()
        self._sftp = self._open()
        return self._sftp

    def _alive(self) -> bool:
        transport, sftp = self._transport, self._sftp
        if transport is None or sftp is None or not transport.is_active():
            return False
        channel = sftp.get_channel()
        return channel is not None and not channel.closed

    def _open(self) -> paramiko.SFTPClient:
        sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout)
        transport = paramiko.Transport(sock)
        self._transport = transport
        try:
            transport.banner_timeout = self._connect_timeout
            transport.handshake_timeout = self._connect_timeout
            transport.auth_timeout = self._connect_timeout
            options = transport.get_security_options()
            options.key_types = _preferred_host_key_types(self._pins, tuple(options.key_types))
            transport.start_client(timeout=self._connect_timeout)
            self._check_host_key(transport.get_remote_server_key())
            try:
                transport.auth_publickey(self._username, self._pkey)
            except paramiko.AuthenticationException:
                raise SftpAuthError(
                    f"SFTP server {self._where} refused key authentication for user {self._username!r} "
                    f"(client key {self._pkey.fingerprint})"
                ) from None
            if self._keepalive_interval:
                transport.set_keepalive(self._keepalive_interval)
            sftp = paramiko.SFTPClient.from_transport(transport)
            if sftp is None:
                raise paramiko.SSHException("the server did not start the sftp subsystem")
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self._operation_timeout)
            return sftp
        except BaseException:
            transport.close()
            self._transport = None
            raise

    def _check_host_key(self, key: paramiko.PKey) -> None:
        seen = fingerprint_of(key.asbytes())
        if any(pin.fingerprint == seen for pin in self._pins):
            return
        shown = f"{key.get_name()} {seen}"
        if not self._pins:
            raise UnknownHostKey(
                f"SFTP server {self._where} presented host key {shown}, but no host key is pinned in the settings; "
                "refusing to connect. Confirm this fingerprint with the server's owner, then pin it.",
                host_port=self._where,
                seen=seen,
            )
        expected = tuple(pin.fingerprint for pin in self._pins)
        raise HostKeyMismatch(
            f"SFTP server {self._where} presented host key {shown}, which does not match the pinned host key "
            f"({', '.join(expected)}); refusing to connect. If the key was changed on purpose, confirm the new "
            "fingerprint with the server's owner and update the pinned key.",
            host_port=self._where,
            seen=seen,
            expected=expected,
        )

    def _is_connection_loss(self, exc: BaseException) -> bool:
        # A timeout leaves the session in an unknown state; paramiko reports a closed channel as SSHException or
        # EOFError. Other OSErrors are SFTP status replies (no such file, permission denied...) while the session
        # is still up.
        if isinstance(exc, TimeoutError | EOFError | paramiko.SSHException):
            return True
        return not self._alive()

    def _remote_error(self, action: str, path: str, exc: BaseException) -> SftpError:
        if isinstance(exc, FileNotFoundError):
            return RemoteFileNotFound(f"{action} {path} on {self._where}: no such file or folder")
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        return SftpRemoteError(f"{action} {path} on {self._where} failed: {detail}")


# -- helpers --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Progress:
    started: bool = False  # bytes were consumed from the source (upload)
    done: int = 0  # bytes handed to the server (upload) or written to the target (download)
    renaming: bool = False  # the rename of the upload was requested
    identity: tuple[int, int] | None = None  # (size, mtime) of the remote file a download started from


def _write_part(sftp: paramiko.SFTPClient, part: str, src: IO[bytes], offset: int, progress: _Progress) -> int:
    with sftp.open(part, "r+b" if offset else "wb") as remote:
        remote.set_pipelined(True)
        if offset:
            remote.seek(offset)
        total = offset
        progress.done = total
        while chunk := src.read(CHUNK_SIZE):
            remote.write(chunk)
            total += len(chunk)
            progress.done = total
        remote.flush()
        _wait_for_write_replies(sftp, remote)
    return total


def _wait_for_write_replies(sftp: paramiko.SFTPClient, remote: paramiko.SFTPFile) -> None:
    # paramiko does not read the replies of pipelined writes before closing the file, so a failed write (disk
    # full) would pass unnoticed; reading them here raises it. Uses paramiko internals, hence the getattr: if they
    # ever change, the size check after the upload still catches short files.
    pending = getattr(remote, "_reqs", None)
    read_response = getattr(sftp, "_read_response", None)
    if pending is None or read_response is None:
        return
    while pending:
        read_response(pending.popleft())


def _resumable_offset(sftp: paramiko.SFTPClient, part: str, src: IO[bytes], base: int, sent: int) -> int:
    """Size of the partial upload if it is a prefix of what this call sent and its tail matches the source, else 0.

    The server applies writes in order, so after a drop it holds a prefix of the bytes sent; the tail comparison
    guards against anyone else having touched the file in between."""
    try:
        size = int(sftp.stat(part).st_size or 0)
    except FileNotFoundError:
        return 0
    if size == 0 or size > sent:
        return 0
    window = min(size, RESUME_CHECK_BYTES)
    with sftp.open(part, "rb") as remote:
        remote.seek(size - window)
        remote_tail = remote.read(window)
    src.seek(base + size - window)
    return size if src.read(window) == remote_tail else 0


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    current = "/" if folder.startswith("/") else ""
    for part in [p for p in folder.split("/") if p and p != "."]:
        current = posixpath.join(current, part)
        try:
            attrs = sftp.stat(current)
        except FileNotFoundError:
            try:
                sftp.mkdir(current)
            except OSError:
                if not _is_dir(sftp, current):  # created by someone else in between is fine
                    raise
            continue
        if not stat.S_ISDIR(attrs.st_mode or 0):
            raise SftpRemoteError(f"makedirs {folder}: {current} exists and is not a folder")


def _is_dir(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        return stat.S_ISDIR(sftp.stat(path).st_mode or 0)
    except FileNotFoundError:
        return False


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _numbered(name: str, n: int) -> str:
    """`export.csv.gz` -> `export-2.csv.gz`: the counter goes before every extension so wildcards still match."""
    if n == 0:
        return name
    stem, dot, extensions = name.partition(".")
    if not stem:  # hidden name such as ".x": keep it simple
        return f"{name}-{n}"
    return f"{stem}-{n}{dot}{extensions}"


def _preferred_host_key_types(pins: tuple[HostKeyPin, ...], defaults: tuple[str, ...]) -> tuple[str, ...]:
    pinned: list[str] = []
    for pin in pins:
        for algorithm in _ALGORITHMS_FOR_KEY_TYPE.get(pin.key_type or "", ()):
            if algorithm in defaults and algorithm not in pinned:
                pinned.append(algorithm)
    # Pinned types first, the rest after: a server without the pinned type then shows another key, and the error
    # names its fingerprint instead of a bare negotiation failure.
    return tuple(pinned) + tuple(a for a in defaults if a not in pinned)


def _seekable(stream: IO[bytes]) -> bool:
    try:
        if not stream.seekable():
            return False
        stream.tell()
    except (AttributeError, OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[IO[bytes]]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            yield f
    else:
        yield source


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

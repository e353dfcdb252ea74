"""A private OpenSSH sshd on loopback: the SFTP server that tests and the local demo talk to.

It is the real server (not a Python imitation), so host-key checks, key authentication, `posix-rename@openssh.com`
and dropped sessions behave exactly as they will against an OpenSSH-based SFTP host.

Layout: everything lives in one temporary folder (host key, client key pair, authorized_keys, sshd_config, pid file,
log) plus a `files/` folder that tests use as their SFTP root. There is no chroot: the server user is the user
running the tests (root on CI), and callers use absolute paths under `SshdServer.root`.

Run `python -m sandbox.sshd` to start one in the foreground; it prints its connection details as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
APT_INSTALL = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-server"
_install_lock = threading.Lock()


class SshdError(RuntimeError):
    """sshd could not be installed, configured or started."""


def find_sshd() -> str | None:
    # sshd re-executes itself and refuses to run from a relative path, so only absolute paths qualify.
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("sshd")
    return os.path.abspath(found) if found else None


def ensure_openssh_server() -> str:
    """Path of sshd, installing `openssh-server` with apt first when it is missing (fresh CI machines)."""
    with _install_lock:
        path = find_sshd()
        if path:
            return path
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise SshdError(f"sshd is not installed and cannot be installed automatically; run as root: {APT_INSTALL}")
        for attempt in range(3):  # apt's lock may be held by another job for a moment
            done = subprocess.run(["sh", "-c", APT_INSTALL], capture_output=True, text=True, timeout=600)
            path = find_sshd()
            if done.returncode == 0 and path:
                return path
            time.sleep(5 * (attempt + 1))
        raise SshdError(f"installing openssh-server failed (exit {done.returncode}): {done.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _new_ed25519() -> tuple[str, str]:
    """(private key in OpenSSH format, public key line) of a fresh ed25519 key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def _write_private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)  # sshd ignores host keys that others can read


class SshdServer:
    """One sshd child process on 127.0.0.1 with its own host key and one authorized client key.

    Attributes once started: host, port, username, client_private_key (OpenSSH text), client_public_key,
    host_public_key (`ssh-ed25519 AAAA...` line to pin), root (a folder for files), base_dir, log_path.
    """

    host = "127.0.0.1"

    def __init__(self, base_dir: str | Path | None = None, *, port: int | None = None, start_timeout: float = 10.0):
        self._requested_base = Path(base_dir) if base_dir else None
        self._requested_port = port
        self._start_timeout = start_timeout
        self._owns_base = base_dir is None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.port = 0
        self.username = pwd.getpwuid(os.geteuid()).pw_name
        self.base_dir = Path()
        self.root = Path()
        self.log_path = Path()
        self.client_private_key = ""
        self.client_public_key = ""
        self.host_public_key = ""

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> SshdServer:
        if self._proc is not None:
            return self
        sshd = ensure_openssh_server()
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory
        self.base_dir = self._requested_base or Path(tempfile.mkdtemp(prefix="sshd-sandbox-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.root = self.base_dir / "files"
        self.root.mkdir(exist_ok=True)
        self.log_path = self.base_dir / "sshd.log"

        host_private, self.host_public_key = _new_ed25519()
        _write_private(self.base_dir / "ssh_host_ed25519_key", host_private)
        self.client_private_key, self.client_public_key = _new_ed25519()
        _write_private(self.base_dir / "client_ed25519_key", self.client_private_key)
        (self.base_dir / "authorized_keys").write_text(self.client_public_key + "\n")

        # A port picked free can be taken before sshd binds it: try a few.
        attempts = 1 if self._requested_port else 3
        for attempt in range(attempts):
            self.port = self._requested_port or _free_port()
            config = self._write_config(sshd)
            try:
                self._launch(sshd, config)
                return self
            except SshdError:
                if attempt == attempts - 1 or "Address already in use" not in self.log_tail():
                    self._cleanup_files()
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            self.drop_connections()
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._close_log()
        self._cleanup_files()

    def __enter__(self) -> SshdServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- helpers for tests and the demo ----------------------------------------------------------------------------

    def authorize(self, public_key_line: str) -> None:
        """Accept one more client key (sshd re-reads authorized_keys on every login)."""
        with (self.base_dir / "authorized_keys").open("a") as f:
            f.write(public_key_line.strip() + "\n")

    def drop_connections(self) -> int:
        """Kill every session process of this server (not the listener): clients see the connection drop.

        Returns how many processes were killed. Only descendants of our own sshd child are touched.
        """
        if self._proc is None:
            return 0
        victims = _descendants(self._proc.pid)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(victims)

    def details(self) -> dict[str, object]:
        """Connection details for the demo and for settings: what the product's SFTP settings hold."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "private_key": self.client_private_key,
            "private_key_path": str(self.base_dir / "client_ed25519_key"),
            "host_key": self.host_public_key,
            "root": str(self.root),
            "log": str(self.log_path),
            "pid": self.pid,
        }

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- internals -------------------------------------------------------------------------------------------------

    def _write_config(self, sshd: str) -> Path:
        base = self.base_dir
        lines = [
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            f"HostKey {base / 'ssh_host_ed25519_key'}",
            f"PidFile {base / 'sshd.pid'}",
            f"AuthorizedKeysFile {base / 'authorized_keys'}",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            # The keys live under /tmp, whose permissions StrictModes would reject.
            "StrictModes no",
            "UseDNS no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            # Tests open many short sessions in a row; do not let sshd throttle them.
            "MaxStartups 100:30:200",
        ]
        config = base / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def _launch(self, sshd: str, config: Path) -> None:
        self._close_log()
        log = self.log_path.open("ab")
        self._log_file = log
        # -D: stay in the foreground as our child; -e: log to stderr (our log file). Own session so that nothing
        # sent to the test runner's process group reaches it.
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._proc = proc
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                raise SshdError(f"sshd exited with {proc.returncode} at start: {self.log_tail()}")
            if _answers_ssh(self.host, self.port):
                return
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        self._proc = None
        raise SshdError(f"sshd did not accept connections on {self.host}:{self.port} in time: {self.log_tail()}")

    def _close_log(self) -> None:
        log, self._log_file = self._log_file, None
        if log is not None:
            log.close()

    def _cleanup_files(self) -> None:
        if self._owns_base and self.base_dir != Path() and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)


def _answers_ssh(host: str, port: int) -> bool:
    """True once sshd sends its identification string (another program on the port would not)."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            return s.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def _parent_pids() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry)] = int(fields[1])
    return parents


def _descendants(pid: int) -> list[int]:
    parents = _parent_pids()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a private OpenSSH sshd on loopback for the local demo.")
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--dir", default=None, help="folder for keys, config and files (default: a temp folder)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SshdServer(args.dir, port=args.port) as server:
        print(json.dumps(server.details()), flush=True)
        while not stop.is_set() and server.running:
            stop.wait(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The sandbox sshd launcher: starts a real OpenSSH server, drops sessions on demand, stops without leftovers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sandbox.sshd as sshd_module
from sandbox.sshd import SshdError, SshdServer
from shared.clients.sftp import SftpClient


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _client(server: SshdServer) -> SftpClient:
    return SftpClient(
        server.host,
        server.port,
        server.username,
        server.client_private_key,
        server.host_public_key,
        connect_timeout=5,
        sleep=lambda s: None,
    )


def test_server_serves_sftp_and_stop_leaves_nothing_behind() -> None:
    server = SshdServer().start()
    pid, base = server.pid, server.base_dir
    assert pid is not None
    try:
        assert server.host == "127.0.0.1"
        assert server.host_public_key.startswith("ssh-ed25519 AAAA")
        assert "PRIVATE KEY" in server.client_private_key
        with _client(server) as client:
            client.makedirs(str(server.root / "in"))
        assert (server.root / "in").is_dir()
    finally:
        server.stop()
    assert not _accepts(server.host, server.port)
    assert not Path(f"/proc/{pid}").exists()  # our child, so stop() reaped it
    assert not base.exists()


def test_drop_connections_kills_sessions_but_keeps_listening(sshd_server: SshdServer) -> None:
    with _client(sshd_server) as client:
        client.stat(str(sshd_server.root))
        assert sshd_server.drop_connections() >= 1
        deadline = time.monotonic() + 5
        while client._alive() and time.monotonic() < deadline:  # paramiko notices the closed socket on its thread
            time.sleep(0.01)
        assert not client._alive()  # the session really is gone
        # The listener survives: the next operation reconnects.
        assert client.stat(str(sshd_server.root)).name == "files"
    assert sshd_server.running


def test_each_server_has_its_own_keys() -> None:
    with SshdServer() as first, SshdServer() as second:
        assert first.host_public_key != second.host_public_key
        assert first.client_private_key != second.client_private_key
        assert first.port != second.port


def test_command_line_prints_details_as_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.sshd", "--dir", str(tmp_path / "demo")],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        details = json.loads(proc.stdout.readline())
        assert set(details) >= {"host", "port", "username", "private_key", "host_key", "root"}
        with SftpClient(
            details["host"], details["port"], details["username"], details["private_key"], details["host_key"]
        ) as client:
            assert client.list_ready(details["root"]) == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not _accepts(details["host"], details["port"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_missing_sshd_is_installed_with_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[bool] = []
    commands: list[list[str]] = []
    monkeypatch.setattr(sshd_module, "find_sshd", lambda: "/usr/sbin/sshd" if installed else None)
    monkeypatch.setattr(sshd_module.os, "geteuid", lambda: 0)
    monkeypatch.setattr(sshd_module.shutil, "which", lambda name: f"/usr/bin/{name}")

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        commands.append(cmd)
        installed.append(True)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(sshd_module.subprocess, "run", fake_run)
    assert sshd_module.ensure_openssh_server() == "/usr/sbin/sshd"
    assert commands == [["sh", "-c", sshd_module.APT_INSTALL]]
    assert "apt-get update" in sshd_module.APT_INSTALL
    assert "DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-server" in sshd_module.APT_INSTALL


def test_missing_sshd_without_root_explains_what_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sshd_module, "find_sshd", lambda: None)
    monkeypatch.setattr(sshd_module.os, "geteuid", lambda: 1000)
    with pytest.raises(SshdError, match="apt-get install -y openssh-server"):
        sshd_module.ensure_openssh_server()


def test_a_taken_port_is_reported_with_the_sshd_log() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SshdError, match=r"Address already in use|did not accept"):
            SshdServer(port=port, start_timeout=3).start()

#!/usr/bin/env bash
# Installs what the tests and the local demo need, on a fresh machine or an existing one:
# apt (openssh-server, as root), the Python venv with pinned ranges, and npm packages (Azurite).
# Idempotent: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: openssh-server is missing and installing it needs root (apt-get install openssh-server)" >&2
    exit 1
  fi
  echo "bootstrap: installing openssh-server (SFTP tests and demo)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha 2>/dev/null || true)" != "$want" ]; then
  echo "bootstrap: installing Python packages"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha
fi

lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/azurite ] || [ "$(cat node_modules/.lock.sha 2>/dev/null || true)" != "$lock" ]; then
  echo "bootstrap: installing npm packages (Azurite)"
  npm ci --no-audit --no-fund --silent
  echo "$lock" > node_modules/.lock.sha
fi

# The real Functions Python worker's venv (Python 3.13) for tests/worker; skipped where Python 3.13 is absent.
.venv/bin/python -m tests.worker.worker_venv >/dev/null

#!/usr/bin/env sh
# Start a private OpenSSH sshd on 127.0.0.1 for the local demo; prints its connection details as JSON, Ctrl-C stops it.
# Installs openssh-server with apt when it is missing (needs root). Options: --port N, --dir FOLDER.
set -eu
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="$repo/.venv/bin/python"
[ -x "$python" ] || python=python3
cd "$repo"
exec "$python" -m sandbox.sshd "$@"

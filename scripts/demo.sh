#!/usr/bin/env bash
# The main job on the local sandbox: installs what is missing, then runs ingress from a Dynamics
# sandbox into a Campaign sandbox (state on Azurite) and prints each run's summary.
# Options go to sandbox/demo.py: --contacts N, --cards N, --changes N, --threshold N.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m sandbox.demo "$@"

#!/usr/bin/env bash
# The whole test suite: installs what is missing, then lint, format check, type check and pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/state -k lease).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh || exit 1

status=0
echo "== ruff check";         .venv/bin/ruff check . || status=1
echo "== ruff format --check"; .venv/bin/ruff format --check . || status=1
echo "== mypy";               .venv/bin/mypy || status=1
echo "== pytest"
.venv/bin/pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests" >&2
fi
[ "$rc" = 0 ] || status=1
exit $status

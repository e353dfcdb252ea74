#!/usr/bin/env bash
# Dependency audit of what the Function App installs (requirements.txt), with pip-audit. Fails on a known
# vulnerability. Where the vulnerability service cannot be reached (a registry mirror that serves packages
# but not PyPI's JSON API), it says so loudly and does not pretend the audit passed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null || exit 1
report=$(mktemp)
trap 'rm -f "$report"' EXIT
.venv/bin/pip-audit -r requirements.txt --progress-spinner off -f json -o "$report" >/dev/null 2>&1
.venv/bin/python scripts/audit_report.py "$report"

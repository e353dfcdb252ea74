"""Reads pip-audit's JSON report: exit 1 on a known vulnerability; say plainly when nothing could be audited."""

from __future__ import annotations

import json
import sys
from typing import Any


def verdict(report: dict[str, Any]) -> tuple[int, list[str]]:
    deps = report.get("dependencies", [])
    lines = []
    vulnerable = [d for d in deps if d.get("vulns")]
    for d in vulnerable:
        lines.append(f"audit: {d['name']} {d.get('version')}: {', '.join(v['id'] for v in d['vulns'])}")
    skipped = [d for d in deps if d.get("skip_reason")]
    if vulnerable:
        return 1, lines
    if deps and len(skipped) == len(deps):
        lines.append(
            f"audit: NOT AUDITED: the vulnerability service could not be reached for any of {len(deps)} packages"
        )
    else:
        lines.append(f"audit: {len(deps) - len(skipped)} packages audited, no known vulnerability; "
                     f"{len(skipped)} not auditable")  # fmt: skip
    return 0, lines


if __name__ == "__main__":
    try:
        with open(sys.argv[1], encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):  # pip-audit died before writing its report: that is no pass
        print("audit: FAILED: pip-audit wrote no readable report (run scripts/audit.sh by hand to see why)")
        sys.exit(1)
    code, lines = verdict(report)
    print("\n".join(lines))
    sys.exit(code)

"""The dependency audit's verdict: a known vulnerability fails CI; an unreachable service is said, not hidden."""

from scripts.audit_report import verdict


def test_a_known_vulnerability_fails() -> None:
    report = {"dependencies": [{"name": "requests", "version": "2.0.0", "vulns": [{"id": "PYSEC-2014-13"}]},
                               {"name": "msal", "version": "1.39.0", "vulns": []}]}  # fmt: skip
    code, lines = verdict(report)
    assert code == 1 and lines == ["audit: requests 2.0.0: PYSEC-2014-13"]


def test_nothing_auditable_is_reported_as_not_audited() -> None:
    report = {"dependencies": [{"name": "requests", "version": "2.34.2", "skip_reason": "not found"}]}
    assert verdict(report) == (
        0,
        ["audit: NOT AUDITED: the vulnerability service could not be reached for any of 1 packages"],
    )


def test_a_clean_audit() -> None:
    report = {"dependencies": [{"name": "msal", "version": "1.39.0", "vulns": []}]}
    assert verdict(report) == (0, ["audit: 1 packages audited, no known vulnerability; 0 not auditable"])

"""Verification is never off outside the local sandbox: no production module disables TLS certificate or SSH
host-key checks (the scan can fail: each forbidden pattern is caught in a snippet), the CA-bundle setting can only
name a CA to trust, never switch verification off, and every HTTP function asks for a key."""

from __future__ import annotations

import pathlib

import pytest

import function_app
from shared.config.errors import ConfigError
from shared.http.tls import build_verified_session
from shared.settings import load_settings
from tests.security.tls_scan import scan_files, scan_source
from tests.settings.test_settings import GOOD

REPO = pathlib.Path(__file__).resolve().parents[2]
PRODUCTION = [*sorted((REPO / "shared").rglob("*.py")), REPO / "function_app.py"]

# (name, a snippet that turns verification off)
SNIPPETS: list[tuple[str, str]] = [
    ("requests verify=False", "requests.get(url, verify=False)"),
    ("session.verify = False", "session.verify = False"),
    ("a session built unverified", "build_verified_session(verify=False)"),
    ("ssl CERT_NONE", "context.verify_mode = ssl.CERT_NONE"),
    ("check_hostname off", "context.check_hostname = False"),
    ("an unverified context", "ctx = ssl._create_unverified_context()"),
    ("paramiko AutoAddPolicy", "client.set_missing_host_key_policy(paramiko.AutoAddPolicy())"),
    ("paramiko WarningPolicy", "policy = paramiko.WarningPolicy"),
    ("urllib3 warnings silenced", "urllib3.disable_warnings()"),
]


def test_production_code_never_turns_verification_off() -> None:
    assert len(PRODUCTION) > 50  # the scan sees the package, not an empty glob
    assert scan_files(PRODUCTION, REPO) == []


@pytest.mark.parametrize("snippet", [s[1] for s in SNIPPETS], ids=[s[0] for s in SNIPPETS])
def test_the_scan_catches(snippet: str) -> None:
    findings = scan_source(snippet, "snippet.py")
    assert findings and {f.where for f in findings} == {"snippet.py:1"}


def test_the_scan_ignores_words_in_comments_and_strings_and_verification_on() -> None:
    text = '# never verify=False\nmessage = "AutoAddPolicy is refused"\nsession.verify = True\nget(u, verify=path)\n'
    assert scan_source(text, "ok.py") == []


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off", "none"])
def test_the_ca_bundle_setting_cannot_turn_verification_off(
    value: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no file of that name
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, "DATAVERSE_CA_BUNDLE": value})
    assert [(p.path, p.message) for p in caught.value.problems] == [("DATAVERSE_CA_BUNDLE", "no such file")]


def test_verification_is_on_or_pinned_to_a_ca_file(tmp_path: pathlib.Path) -> None:
    assert load_settings(GOOD).dataverse.verify is True
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_settings({**GOOD, "DATAVERSE_CA_BUNDLE": str(bundle)}).dataverse.verify == str(bundle)


@pytest.mark.parametrize("verify", [False, "", "  "])
def test_a_session_cannot_be_built_unverified(verify: bool | str) -> None:
    with pytest.raises(ValueError, match="cannot be turned off"):
        build_verified_session(verify)


def test_every_http_function_asks_for_a_function_key() -> None:
    function_app.app.functions_bindings = None  # get_functions() may run once per app object otherwise
    http = {fn.get_function_name(): fn.get_trigger().get_dict_repr() for fn in function_app.app.get_functions()
            if fn.get_trigger().get_dict_repr()["type"] == "httpTrigger"}  # fmt: skip
    assert http  # the opt-out webhook at least
    levels = {name: str(getattr(t["authLevel"], "value", t["authLevel"])) for name, t in http.items()}
    assert set(levels.values()) == {"function"}, levels  # never anonymous

"""The end-to-end suite's leak guard can fail: a personal value or a secret in a log line, an exception text or a
dead-letter reason is caught and named; the same run without the leak passes."""

from __future__ import annotations

import logging
import textwrap

import pytest
from azure.data.tables import TableServiceClient

from sandbox.dataverse import DataverseSandbox
from shared.settings import Secret
from shared.state.deadletters import DeadLetterStore
from tests.security.leaks import LeakGuard, find_leaks, secret_parts

log = logging.getLogger("sync.leak_test")
EMAIL = "grizelda.quarrington@example.org"
KEY_LINE = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
PEM = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_LINE}\n-----END OPENSSH PRIVATE KEY-----\n"


def test_find_leaks_matches_whole_values_only() -> None:
    texts = [
        ("log a", f"to {EMAIL} now"),
        ("log b", "Adapter Adams ran"),
        ("log c", "key=b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
    ]
    leaks = find_leaks(texts, secrets=secret_parts(PEM), personal=[EMAIL, "Adam", "Ada"])
    assert {(leak.where, leak.kind, leak.value) for leak in leaks} == {
        ("log a", "personal", EMAIL),
        ("log c", "secret", KEY_LINE),
    }  # "Adam" inside "Adams" is another word, "Ada" is too short to tell from ordinary text


@pytest.fixture
def guard() -> LeakGuard:
    return LeakGuard()


def _contact(dv: DataverseSandbox) -> None:
    dv.create("contacts", {"firstname": "Grizelda", "lastname": "Quarrington", "emailaddress1": EMAIL})


@pytest.mark.parametrize("how", ["debug line", "exception text", "nothing"])
def test_a_personal_value_in_a_log_record_is_caught(dataverse_sandbox: DataverseSandbox, guard: LeakGuard,
                                                     how: str) -> None:  # fmt: skip
    _contact(dataverse_sandbox)
    guard.start()
    try:
        if how == "debug line":
            log.debug("writing contact %s", EMAIL)
        elif how == "exception text":
            try:
                raise ValueError("Quarrington refused")
            except ValueError:
                log.exception("write failed")
        else:
            log.debug("writing contact %s", "5e3b2a1c-0000-0000-0000-000000000001")
    finally:
        guard.stop()
    found = {(leak.kind, leak.value) for leak in guard.check({"dataverse_sandbox": dataverse_sandbox})}
    expected = {"debug line": {("personal", EMAIL)}, "exception text": {("personal", "Quarrington")}, "nothing": set()}
    assert found == expected[how]


def test_a_revealed_secret_in_a_log_line_is_caught(guard: LeakGuard) -> None:
    guard.start()
    try:
        secret = Secret("pa55-w0rd-of-the-app")  # as load_settings wraps every secret setting
        log.info("token request with %s", secret.reveal())
        log.info("settings %r", secret)  # the wrapper's repr hides it
    finally:
        guard.stop()
    assert [(leak.kind, leak.value) for leak in guard.check({})] == [("secret", "pa55-w0rd-of-the-app")]


def test_a_personal_value_in_a_dead_letter_reason_is_caught(
    dataverse_sandbox: DataverseSandbox, storage_connection_string: str, table_prefix: str, guard: LeakGuard
) -> None:
    _contact(dataverse_sandbox)
    service = TableServiceClient.from_connection_string(storage_connection_string)
    table = service.create_table_if_not_exists(table_prefix + "deadletters")
    DeadLetterStore(table).record("ingress", "contacts", "5e3b2a1c-0000-0000-0000-000000000001",
                                  f"value {EMAIL} refused")  # fmt: skip
    fixtures = {"dataverse_sandbox": dataverse_sandbox, "table_prefix": table_prefix,
                "storage_connection_string": storage_connection_string}  # fmt: skip
    assert [(leak.where, leak.value) for leak in guard.check(fixtures)] == [("state deadletters", EMAIL)]


def test_the_e2e_autouse_guard_fails_a_test_that_logs_an_email(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent("""
        pytest_plugins = ["tests.fixtures.dataverse"]
        from tests.e2e.conftest import no_secret_or_personal_data_leaks  # noqa: F401
    """))  # fmt: skip
    pytester.makepyfile(textwrap.dedent(f"""
        import logging

        def _seed(dv):
            dv.create("contacts", {{"firstname": "Grizelda", "lastname": "Quarrington", "emailaddress1": "{EMAIL}"}})

        def test_leaks(dataverse_sandbox):
            _seed(dataverse_sandbox)
            logging.getLogger("sync.ingress").debug("row %s", "{EMAIL}")

        def test_clean(dataverse_sandbox):
            _seed(dataverse_sandbox)
            logging.getLogger("sync.ingress").debug("row %s", "5e3b2a1c-0000-0000-0000-000000000001")
    """))  # fmt: skip
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([f"*leaked: personal '{EMAIL}' in log sync.ingress*"])

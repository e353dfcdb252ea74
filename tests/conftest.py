"""Shared fixtures. Each area's fixtures live in tests/fixtures/<area>.py and are registered here."""

pytest_plugins = [
    "tests.fixtures.dataverse",
    "tests.fixtures.campaign",
    "tests.fixtures.ports",
    "tests.fixtures.azurite",
    "tests.fixtures.sftp",
    "pytester",  # tests/security runs a test module through the e2e leak guard
]

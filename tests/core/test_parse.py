"""GUID parsing: every accepted spelling gives the canonical lower-case form (the record key of every payload)."""

from __future__ import annotations

import pytest

from shared.core.parse import parse_guid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abcdef01-2345-6789-abcd-ef0123456789", "abcdef01-2345-6789-abcd-ef0123456789"),  # as Dataverse writes it
        ("ABCDEF01-2345-6789-ABCD-EF0123456789", "abcdef01-2345-6789-abcd-ef0123456789"),
        ("{abcdef01-2345-6789-abcd-ef0123456789}", "abcdef01-2345-6789-abcd-ef0123456789"),
        ("Abcdef01-2345-6789-abcd-ef0123456789", "abcdef01-2345-6789-abcd-ef0123456789"),
        ("abcdef01-2345-6789-abcd-ef0123456789\n", None),
        ("abcdef0123456789abcdef0123456789", None),  # no dashes: not a form Dataverse writes
        ("abcdef01-2345-6789-abcd-ef012345678g", None),
        ("", None),
    ],
)
def test_parse_guid(text: str, expected: str | None) -> None:
    assert parse_guid(text) == expected

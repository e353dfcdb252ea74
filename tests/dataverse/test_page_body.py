"""Pages are parsed with orjson; what orjson refuses and the standard library reads comes out as json reads it."""

from __future__ import annotations

import json

import pytest
import requests

from shared.clients.dataverse import page_body


def response_of(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.headers["Content-Type"] = "application/json; odata.metadata=minimal"
    response.encoding = "utf-8"
    return response


@pytest.mark.parametrize(
    "body",
    [
        '{"value": [{"contactid": "0b6f8e2a-0000-0000-0000-000000000001", "firstname": "Zoë", "n": 12.5}]}',
        '{"value": [], "@odata.deltaLink": "https://x/api/data/v9.2/contacts?$deltatoken=1"}',
        '{"value": [{"lastname": "a\\ud800b"}]}',  # a lone surrogate: orjson refuses it, json reads it
    ],
)
def test_a_page_reads_as_the_standard_library_reads_it(body: str) -> None:
    assert page_body(response_of(body.encode())) == json.loads(body)


def test_a_body_that_is_not_json_fails_as_before() -> None:
    with pytest.raises(requests.JSONDecodeError):
        page_body(response_of(b"<html>gateway</html>"))

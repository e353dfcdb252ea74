"""campaign_classifier on the documented error shapes, without a server."""

from __future__ import annotations

import json

import pytest
import requests

from shared.clients.campaign import DUPLICATE_KEY, SIGNAL_TOO_SOON, campaign_classifier
from shared.http import Outcome


def response(status: int, body: object, content_type: str = "application/json") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = (body if isinstance(body, str) else json.dumps(body)).encode()
    r.headers["Content-Type"] = content_type
    r.reason = "Reason"
    return r


OOPS = {"code": 500, "message": "Oops. Something went wrong. Check your URI and try again."}
UNKNOWN_FIELD = {
    "code": 400,
    "message": "RST-360011 An error.\n'age' property is not valid for the 'profile' resource.",
}
BAD_PKEY = {"code": 404, "message": "RST-360011 An error.\nXTK-170036 '@x' is not a valid constant."}
TOO_SOON = "RST-360011 An error.\nThe 'signal1' activity cannot be triggered more often than every 10 minutes."


@pytest.mark.parametrize(
    ("status", "body", "outcome", "code"),
    [
        (200, {}, Outcome.OK, ""),
        (401, {"error_code": "401013", "message": "Oauth token is not valid"}, Outcome.AUTH_EXPIRED, "401013"),
        (403, {"error_code": "403023", "message": "Profile is not valid"}, Outcome.FATAL, "403023"),
        (403, {"error_code": "403003", "message": "Api Key is invalid"}, Outcome.FATAL, "403003"),
        (429, {"error_code": "429050", "message": "Too many requests"}, Outcome.RATE_LIMITED, "429050"),
        (429, "", Outcome.RATE_LIMITED, ""),
        (503, "Service Unavailable", Outcome.RETRY, ""),
        (500, OOPS, Outcome.FATAL, "500"),
        (400, UNKNOWN_FIELD, Outcome.RECORD_ERROR, "RST-360011"),
        (404, BAD_PKEY, Outcome.RECORD_ERROR, "XTK-170036"),  # the specific code, not the generic prefix
        (400, TOO_SOON, Outcome.FATAL, SIGNAL_TOO_SOON),
    ],
)
def test_shapes(status: int, body: object, outcome: Outcome, code: str) -> None:
    got_outcome, got_code, _ = campaign_classifier(response(status, body))
    assert (got_outcome, got_code) == (outcome, code)


def test_engine_messages_keep_schema_names_and_drop_values() -> None:
    body = {
        "code": 400,
        "message": "RST-360011 An error has occurred.\nPGS-220000 PostgreSQL error: ERROR:  duplicate key value "
        'violates unique constraint "profile_externalid"\n'
        "DETAIL:  Key (externalId)=(jane.doe@example.com) already exists.",
    }
    _, code, message = campaign_classifier(response(400, body))
    assert code == DUPLICATE_KEY  # named once by the classifier: callers test the code, not the text
    assert "duplicate key" in message
    assert "RST-360011 PGS-220000" in message
    assert "jane.doe" not in message


def test_signal_parameter_name_is_kept() -> None:
    text = (
        "RST-360011 An error has occurred - please contact your administrator.\n"
        "'contentURL' parameter isn't defined in signal activity.\n"
        "XTK-170006 Unable to parse expression 'HandleTrigger(@name, $(source), $({parameters}))'."
    )
    outcome, code, message = campaign_classifier(response(400, text, "text/plain"))
    assert outcome is Outcome.RECORD_ERROR
    assert code == "XTK-170006"
    assert "undeclared signal parameter 'contentURL'" in message
    assert "XTK-170006" in message


def test_unrecognised_text_never_leaks() -> None:
    body = {"code": 400, "message": "Something about Jane Doe, 12 Main Street"}
    _, _, message = campaign_classifier(response(400, body))
    assert "Jane" not in message

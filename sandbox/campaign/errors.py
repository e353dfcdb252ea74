"""Error answers of the sandbox, in the two shapes Campaign uses.

- Adobe I/O gateway errors: JSON `{"error_code": "...", "message": "..."}`. 401013 "Oauth token is
  not valid" and 403023 "Profile is not valid" are documented (api/using/troubleshooting.md);
  403003 "Api Key is invalid" is what the Adobe I/O gateway answers for a bad key (seen across Adobe
  APIs, e.g. AdobeDocs/adobeio-auth#54); 403000 for a missing key and 429050 for throttling are
  sandbox choices [U]. `{"code":500,"message":"Oops. Something went wrong. Check your URI and try
  again."}` is the documented answer for a wrong organization.
- Engine errors: text with RST-/XTK- codes, e.g. "RST-360011 An error has occurred - please contact
  your administrator." followed by detail lines (triggering-a-signal-activity.md). The sandbox sends
  them as JSON `{"code": <status>, "message": "<text>"}`; the exact envelope is undocumented [U].
"""

from __future__ import annotations

from typing import Any

RST_GENERIC = "RST-360011 An error has occurred - please contact your administrator."


class SandboxError(Exception):
    def __init__(
        self, status: int, body: Any, *, content_type: str = "application/json", headers: dict[str, str] | None = None
    ):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        super().__init__(f"{status}")


def gateway(status: int, error_code: str, message: str, headers: dict[str, str] | None = None) -> SandboxError:
    return SandboxError(status, {"error_code": error_code, "message": message}, headers=headers)


def token_invalid() -> SandboxError:
    return gateway(401, "401013", "Oauth token is not valid")


def api_key_missing() -> SandboxError:
    return gateway(403, "403000", "Api Key is required")


def api_key_invalid() -> SandboxError:
    return gateway(403, "403003", "Api Key is invalid")


def profile_not_valid() -> SandboxError:
    return gateway(403, "403023", "Profile is not valid")


def throttled(retry_after: int) -> SandboxError:
    return gateway(429, "429050", "Too many requests", headers={"Retry-After": str(retry_after)})


def wrong_uri() -> SandboxError:
    return SandboxError(500, {"code": 500, "message": "Oops. Something went wrong. Check your URI and try again."})


def engine(status: int, *lines: str) -> SandboxError:
    return SandboxError(status, {"code": status, "message": "\n".join((RST_GENERIC, *lines))})


def unknown_property(attribute: str, resource: str) -> SandboxError:
    return engine(400, f"'{attribute}' property is not valid for the '{resource}' resource.")


def read_only_property(attribute: str, resource: str) -> SandboxError:
    # A hidden comment in troubleshooting.md shows 500 for a PATCH of a read-only field.
    return SandboxError(
        500,
        {
            "code": 500,
            "message": f"Cannot update the '{attribute}' property that is read-only\n"
            f"'{attribute}' property is not valid for the '{resource}' resource.",
        },
    )


def invalid_pkey(pkey: str) -> SandboxError:
    # "'<x>' is not a valid constant" is what ACS answers for a bad PKey (aio-lib-campaign-standard e2e).
    return engine(404, f"XTK-170036 '{pkey}' is not a valid constant.")


def not_found(what: str) -> SandboxError:
    return engine(404, f"RST-360012 The '{what}' resource does not exist.")


def duplicate_key(resource: str, attribute: str, value: Any) -> SandboxError:
    # PostgreSQL's unique-violation wording, as Campaign relays database errors; it echoes the value.
    return engine(
        400,
        f"PGS-220000 PostgreSQL error: ERROR:  duplicate key value violates unique constraint "
        f'"{resource.lower()}_{attribute.lower()}"',
        f"DETAIL:  Key ({attribute})=({value}) already exists.",
    )


def bad_request(*lines: str) -> SandboxError:
    return engine(400, *lines)


def not_sortable(attribute: str, resource: str) -> SandboxError:
    # sorting.md: only fields flagged "sortable" in the metadata can be sorted; the wording is the sandbox's [U].
    return engine(400, f"The '{attribute}' property of the '{resource}' resource cannot be used to sort.")


def not_modelled(what: str) -> SandboxError:
    """Something real Campaign has that the sandbox does not imitate: refused loudly, never answered wrongly."""
    return SandboxError(
        501,
        {
            "code": 501,
            "message": f"The Campaign sandbox does not model {what} (see sandbox/campaign/README.md).",
        },
    )

"""IMS OAuth Server-to-Server tokens of the sandbox and their checks on every API call.

Token request (developer.adobe.com, Server-to-Server > IMS): `POST /ims/token/v3`, form fields
grant_type=client_credentials, client_id, client_secret, scope; answer `{access_token,
token_type: "bearer", expires_in}`. IMS error bodies are `{"error", "error_description"}`; which
status goes with which error is not documented [U]: invalid_client answers 401, the rest 400.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping

from sandbox.campaign import errors


@dataclasses.dataclass
class Token:
    client_id: str
    scope: str
    expires_at: float
    revoked: bool = False


class TokenStore:
    def __init__(self, client_id: str, client_secret: str, lifetime: float) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.lifetime = lifetime
        self._tokens: dict[str, Token] = {}
        self.issued = 0

    def issue(self, form: Mapping[str, str], now: float) -> tuple[int, dict[str, object]]:
        """(status, body) of a token request."""
        if form.get("grant_type") != "client_credentials":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "grant_type must be client_credentials",
            }
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client", "error_description": "invalid client_id parameter"}
        if not secrets.compare_digest(form.get("client_secret", ""), self._client_secret):
            return 401, {"error": "invalid_client", "error_description": "invalid client_secret parameter"}
        scope = form.get("scope", "")
        if not scope.strip():
            return 400, {"error": "invalid_scope", "error_description": "scope is required"}
        token = "sbx." + secrets.token_urlsafe(32)
        self._tokens[token] = Token(self.client_id, scope, now + self.lifetime)
        self.issued += 1
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": int(self.lifetime)}

    def check(self, authorization: str | None, api_key: str | None, now: float) -> None:
        """Raise the gateway error a real call with these headers would get."""
        if not api_key:
            raise errors.api_key_missing()
        if api_key != self.client_id:
            raise errors.api_key_invalid()
        if not authorization or not authorization.startswith("Bearer "):
            raise errors.token_invalid()
        token = self._tokens.get(authorization[len("Bearer ") :].strip())
        if token is None or token.revoked or now >= token.expires_at:
            raise errors.token_invalid()
        if token.client_id != api_key:
            raise errors.api_key_invalid()

    def expire_all(self) -> int:
        """Every token issued so far stops working (as if 24 h had passed). Returns how many."""
        count = 0
        for token in self._tokens.values():
            if not token.revoked:
                token.revoked = True
                count += 1
        return count

"""TLS trust for clients told to trust one CA (the local sandbox), and timeouts for libraries that set none."""

from __future__ import annotations

import functools
from typing import Any

import requests

from shared.http.session import OriginPoolAdapter, build_session


class _PinnedVerifyAdapter(OriginPoolAdapter):
    """Uses the given CA bundle whatever the environment says.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify`; a client told to
    trust one CA (the local sandbox) must not be overridden, and one told `True` keeps the default.
    """

    def __init__(self, verify: bool | str, **kwargs: Any) -> None:
        self._verify = verify
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = self._verify
        return super().send(request, *args, **kwargs)


def build_verified_session(verify: bool | str = True, pool_size: int = 16) -> requests.Session:
    """A pooled session (see shared.http.build_session) whose TLS verification is `verify`.

    `verify=True` uses the system/certifi CAs as requests normally does; a path pins that CA bundle.
    """
    if verify is not True and (not isinstance(verify, str) or not verify.strip()):
        raise ValueError("TLS verification cannot be turned off: give True or the path of a CA bundle")
    session = build_session(pool_size)
    session.verify = verify
    if verify is not True:
        adapter = _PinnedVerifyAdapter(verify, pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        session.mount("https://", adapter)
    return session


def with_default_timeout(session: requests.Session, timeout: float) -> requests.Session:
    """Give every request of `session` a default timeout (for libraries that pass none, e.g. msal)."""
    session.request = functools.partial(session.request, timeout=timeout)  # type: ignore[method-assign]
    return session

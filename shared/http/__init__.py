"""One HTTP stack for every client: a session factory, a retry policy and a response classifier."""

from shared.http.classify import Outcome, classify_status
from shared.http.errors import ApiError, TlsVerificationError, TransportError
from shared.http.pacing import PacingPolicy
from shared.http.retry import RetryPolicy, parse_retry_after
from shared.http.session import HttpClient, TokenProvider, build_session

__all__ = [
    "ApiError",
    "HttpClient",
    "Outcome",
    "PacingPolicy",
    "RetryPolicy",
    "TlsVerificationError",
    "TokenProvider",
    "TransportError",
    "build_session",
    "classify_status",
    "parse_retry_after",
]

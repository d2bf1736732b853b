"""Adapter for the Zaptec cloud REST API (and the Service Bus message body format)."""

from zapflow.zaptec.auth import PasswordGrant, TokenProvider
from zapflow.zaptec.client import DEFAULT_ACCOUNTS, AccountRegistry, ApiCall, ZaptecClient
from zapflow.zaptec.errors import (
    AmbiguousWrite,
    AuthenticationFailed,
    BadRequest,
    ConfigurationError,
    Forbidden,
    MessageDecodeError,
    ModeNotControllable,
    NotFound,
    PermanentError,
    RateLimited,
    ResponseDecodeError,
    ServerError,
    TransientError,
    TransportFailure,
    UnexpectedResponse,
    ValidationFailed,
    ZaptecError,
)
from zapflow.zaptec.ratelimit import LimiterRegistry, RateLimiter, TokenBucket
from zapflow.zaptec.retry import RetryPolicy
from zapflow.zaptec.update import InstallationUpdate

__all__ = [
    "DEFAULT_ACCOUNTS",
    "AccountRegistry",
    "AmbiguousWrite",
    "ApiCall",
    "AuthenticationFailed",
    "BadRequest",
    "ConfigurationError",
    "Forbidden",
    "InstallationUpdate",
    "LimiterRegistry",
    "MessageDecodeError",
    "ModeNotControllable",
    "NotFound",
    "PasswordGrant",
    "PermanentError",
    "RateLimited",
    "RateLimiter",
    "ResponseDecodeError",
    "RetryPolicy",
    "ServerError",
    "TokenBucket",
    "TokenProvider",
    "TransientError",
    "TransportFailure",
    "UnexpectedResponse",
    "ValidationFailed",
    "ZaptecClient",
    "ZaptecError",
]

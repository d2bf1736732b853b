"""Shared access signatures: what the broker checks on `$cbs` put-token, and the connection string."""

from __future__ import annotations

import hmac
from base64 import b64encode
from hashlib import sha256
from urllib.parse import parse_qs, quote_plus

__all__ = ["connection_string", "entity_path", "verify_sas_token"]


def connection_string(host: str, port: int, key_name: str, key: str) -> str:
    """The SDK's connection string for a broker without TLS (`UseSSL: false`)."""
    return (
        f"Endpoint=sb://{host}:{port};SharedAccessKeyName={key_name};SharedAccessKey={key};"
        "UseDevelopmentEmulator=true"
    )


def entity_path(address: str | None) -> str:
    """`amqps://host:port/Topic/Subscriptions/Sub` -> `topic/subscriptions/sub` (case-insensitive)."""
    path = address or ""
    if "://" in path:
        path = path.split("://", 1)[1]
        path = path.split("/", 1)[1] if "/" in path else ""
    return path.strip("/").lower()


def verify_sas_token(token: str, *, keys: dict[str, str], now_s: float) -> tuple[str, str]:
    """The token's audience path when it is signed by a known key and unexpired, else a reason.

    Returns `(audience_path, "")` on success and `("", reason)` on failure; the reason never
    contains the key or the signature.
    """
    prefix = "SharedAccessSignature "
    if not token.startswith(prefix):
        return "", "not a SharedAccessSignature token"
    fields = {k: v[0] for k, v in parse_qs(token[len(prefix) :], keep_blank_values=True).items()}
    audience, signature, expiry, name = (fields.get(k, "") for k in ("sr", "sig", "se", "skn"))
    key = keys.get(name)
    if key is None:
        return "", f"unknown shared access key name {name!r}"
    expected = b64encode(
        hmac.new(key.encode(), f"{quote_plus(audience)}\n{expiry}".encode(), sha256).digest()
    ).decode()
    if not hmac.compare_digest(expected, signature):
        return "", f"the signature does not match the key {name!r}"
    try:
        expires_s = int(expiry)
    except ValueError:
        return "", "the token has no valid expiry"
    if expires_s <= now_s:
        return "", "the token has expired"
    return entity_path(audience), ""

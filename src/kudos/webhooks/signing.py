"""Webhook signatures: Standard Webhooks (every delivery) and Gameball's ``X-GB-Signature``.

Standard Webhooks (https://www.standardwebhooks.com): the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``, signed with HMAC-SHA256 under the endpoint's
secret (``whsec_`` + base64 of the key bytes); ``webhook-signature`` carries
``v1,<base64 signature>``, several space-separated when secrets rotate. Gameball's signature is
the SHA-1 hex digest of ``body + ":" + the account's secret key``.

``verify`` is the receiver's side: import it (or copy its dozen lines) to check a delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
# How far a delivery's timestamp may be from the receiver's clock (replay protection).
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    """The delivery is not signed by this secret, or its timestamp is too old or too new."""


def new_secret() -> str:
    """A fresh endpoint secret in Standard Webhooks form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def gameball_signature(body: bytes, account_secret_key: str) -> str:
    """Gameball's ``X-GB-Signature``: SHA-1 hex of ``body:secret``."""
    return hashlib.sha1(body + b":" + account_secret_key.encode()).hexdigest()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> None:
    """Check a delivery's Standard Webhooks headers; raise ``InvalidSignature`` if wrong.

    ``headers`` must be case-insensitive or lower-case (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``). The comparison is constant-time.
    """
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        given = headers["webhook-signature"]
    except (KeyError, ValueError):
        raise InvalidSignature("missing or malformed webhook headers") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature("timestamp outside the tolerance")
    expected = sign(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise InvalidSignature("no matching signature")

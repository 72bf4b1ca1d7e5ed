"""One delivery attempt: sign the stored body and POST it through an injected client.

Every delivery carries Standard Webhooks' headers (``webhook-id``, stable across retries;
``webhook-timestamp`` and ``webhook-signature``, fresh for each attempt). Gameball's topics
also carry ``X-GB-Signature`` and ``X-GB-Webhook-Version: v4``. A 2xx answer is a success;
anything else, a timeout or a connection error is a failure. Redirects are not followed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from kudos.services.security import Keyring
from kudos.storage.webhooks import Claimed
from kudos.webhooks import outbox, signing

USER_AGENT = "kudos-webhooks/1"
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def headers_for(claimed: Claimed, keyring: Keyring, body: bytes, timestamp: int) -> dict[str, str]:
    """The signed headers of one attempt (secrets are decrypted only here)."""
    secret = keyring.decrypt(claimed.endpoint_secret_encrypted)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": claimed.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.sign(secret, claimed.message_id, timestamp, body),
    }
    if claimed.topic in outbox.GAMEBALL_TOPICS:
        account_secret = keyring.decrypt(claimed.account_secret_encrypted)
        headers["X-GB-Signature"] = signing.gameball_signature(body, account_secret)
        headers["X-GB-Webhook-Version"] = "v4"
    return headers


async def attempt(
    client: httpx.AsyncClient,
    claimed: Claimed,
    keyring: Keyring,
    *,
    timestamp: int,
    seconds: float,
) -> AttemptResult:
    """POST the message once; never raises for what the endpoint or network does."""
    body = claimed.payload.encode()
    headers = headers_for(claimed, keyring, body, timestamp)
    started = time.perf_counter()
    try:
        response = await client.post(
            claimed.url, content=body, headers=headers, timeout=seconds, follow_redirects=False
        )
    except httpx.TimeoutException:
        return AttemptResult(None, f"timed out after {seconds:g} s", _since(started))
    except httpx.HTTPError as exc:
        return AttemptResult(None, _describe(exc), _since(started))
    error = None if response.is_success else f"HTTP {response.status_code}"
    return AttemptResult(response.status_code, error, _since(started))


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR]

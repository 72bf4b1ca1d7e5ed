"""One delivery attempt: sign the stored body and POST it through an injected client.

Every delivery carries Standard Webhooks' headers (``webhook-id``, stable across retries;
``webhook-timestamp`` and ``webhook-signature``, fresh for each attempt). Gameball's topics
also carry ``X-GB-Signature`` and ``X-GB-Webhook-Version: v4``. A 2xx answer is a success;
anything else, a timeout or a connection error is a failure. Redirects are not followed.

What a receiver can hold: the whole attempt (resolving, connecting, sending, waiting, reading
the answer) ends at ``seconds`` however slowly the receiver trickles, and at most
``MAX_ANSWER_BYTES`` of the answer's body are read (raw: never decompressed), then the
connection is dropped. The status code decides: an answer cut short after its status line
counts as that status.

What the delivery log tells the tenant: the status code, ``timed out after N s``, a refused
target, or for every other failure one text (``NO_ANSWER``), so that the log cannot tell a
closed port from an open one. The reason goes to the server log (debug level).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from kudos.services.security import Keyring
from kudos.storage.webhooks import Claimed
from kudos.webhooks import outbox, signing, targets
from kudos.webhooks.transport import TargetNotAllowed

log = logging.getLogger("kudos.webhooks")

USER_AGENT = "kudos-webhooks/1"
# Bytes of an answer's body read at most (one network read may bring more into a buffer:
# httpcore reads 64 KiB at a time); the rest is never read.
MAX_ANSWER_BYTES = 4 * 1024
# The delivery log's text for every failure without an HTTP answer but a timeout.
NO_ANSWER = "no HTTP answer"
MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(slots=True)
class _Answer:
    status: int | None = None
    bytes_read: int = 0


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
    """POST the message once, within ``seconds`` in all; never raises for what the endpoint
    or the network does."""
    body = claimed.payload.encode()
    headers = headers_for(claimed, keyring, body, timestamp)
    answer = _Answer()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            await _exchange(client, claimed.url, body, headers, answer, seconds)
    except Exception as exc:  # the receiver's or the network's doing, whatever it is
        if answer.status is None:
            return AttemptResult(None, _failure(claimed, exc, seconds), _since(started))
        _note(claimed, exc, "after its status line")
    status = answer.status
    error = None if status is not None and 200 <= status < 300 else f"HTTP {status}"
    return AttemptResult(status, error, _since(started))


async def _exchange(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    answer: _Answer,
    seconds: float,
) -> None:
    """Send the request; note the status, read at most ``MAX_ANSWER_BYTES``, close."""
    request = client.build_request("POST", url, content=body, headers=headers, timeout=seconds)
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        answer.status = response.status_code
        async for chunk in response.aiter_raw():  # raw: a small gzip body cannot grow
            answer.bytes_read += len(chunk)
            if answer.bytes_read >= MAX_ANSWER_BYTES:
                break  # closing the response drops the connection and the unread rest
    finally:
        await response.aclose()


def _failure(claimed: Claimed, exc: Exception, seconds: float) -> str:
    """The delivery log's text for an attempt without an answer."""
    if isinstance(exc, TargetNotAllowed):
        text = targets.REFUSED
    elif isinstance(exc, TimeoutError | httpx.TimeoutException):
        text = f"timed out after {seconds:g} s"
    else:
        text = NO_ANSWER
    _note(claimed, exc, text)
    return text


def _note(claimed: Claimed, exc: Exception, what: str) -> None:
    """The detailed reason, for the operator only (never the payload or the URL)."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    log.debug(
        "attempt %d of %s to endpoint %d: %s (%s)",
        claimed.attempt,
        claimed.message_id,
        claimed.endpoint_id,
        what,
        reason[:MAX_REASON],
    )


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)

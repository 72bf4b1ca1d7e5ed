"""What requests hold in this process right now, what the process refuses when that is too
much, and the counters that say so (read by ``/metrics``; see docs/architecture.md, "When
kudos is saturated").

- ``in_flight``: requests being served; past ``max_in_flight`` a new one is answered 503
  (5003, ``Retry-After``) before anything of it is read.
- ``bytes_held``: request-body bytes held by all requests; a request reserves its
  Content-Length before reading (or each chunk as it comes without one) and gives it back
  when it ends, whatever happens. Past ``memory_bytes``: 503 (5003, ``Retry-After``), the
  body unread.
- ``refused``: refusals by reason (``REASONS``), counted here by the app and by the HTTP
  protocol (``api.server``), which enforces the header and body limits and timeouts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from kudos import errors
from kudos.config import MAX_BODY_BYTES, Settings

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

RETRY_AFTER_SECONDS = 1
IN_FLIGHT = "in_flight"
MEMORY = "memory"
HEADER_BYTES = "header_bytes"
HEADER_TIMEOUT = "header_timeout"
BODY_TIMEOUT = "body_timeout"
REASONS = (IN_FLIGHT, MEMORY, HEADER_BYTES, HEADER_TIMEOUT, BODY_TIMEOUT)
STATE_KEY = "kudos.admission"
"""Where the app publishes its ``Admission`` in the ASGI lifespan state (the protocol reads it)."""


@dataclass
class Admission:
    """One process's limits on what clients may make it hold, and its counters."""

    max_in_flight: int
    memory_bytes: int
    header_max_bytes: int
    header_timeout: float
    body_timeout: float
    in_flight: int = 0
    bytes_held: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            max_in_flight=settings.max_requests_in_flight,
            memory_bytes=settings.request_memory_bytes,
            header_max_bytes=settings.header_max_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        )

    def reserve(self, size: int) -> None:
        """Hold ``size`` more body bytes, or refuse (503) when the budget cannot take them."""
        if self.bytes_held + size > self.memory_bytes:
            self.refused[MEMORY] += 1
            raise errors.Unavailable(
                "Service unavailable: the server holds as many request bodies as it may;"
                " retry later.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.bytes_held += size


def saturated() -> errors.Unavailable:
    """The answer to a request over the in-flight limit."""
    return errors.Unavailable(
        "Service unavailable: the server serves as many requests as it may; retry later.",
        retry_after=RETRY_AFTER_SECONDS,
    )


class BodyGuard:
    """One request's ``receive``: refuses a body past 1 MiB, and holds what it announces (or
    what arrives, without a Content-Length) in the process's budget until ``release``."""

    __slots__ = ("admission", "announced", "held", "receive", "seen")

    def __init__(self, receive: Receive, admission: Admission, *, announced: int) -> None:
        self.receive = receive
        self.admission = admission
        self.announced = announced
        self.held = 0
        self.seen = 0

    async def __call__(self) -> Message:
        """``receive``, for a framework that reads the body itself."""
        self._reserve_announced()
        message = await self.receive()
        body = message.get("body")
        if body:
            self.seen += len(body)
            if self.seen > self.held:
                self._hold_seen()
        return message

    async def read(self) -> bytes:
        """The whole body, in one coroutine however many chunks (the ingest hot path's way:
        a body that fits its Content-Length costs one reservation and nothing per chunk)."""
        self._reserve_announced()
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise errors.InvalidPayload("Invalid payload: the client disconnected.")
            body: bytes = message.get("body", b"")
            self.seen += len(body)
            if self.seen > self.held:  # no Content-Length
                self._hold_seen()
            if not message.get("more_body", False):
                if not chunks:
                    return body
                chunks.append(body)
                return b"".join(chunks)
            chunks.append(body)

    def _reserve_announced(self) -> None:
        """Before reading anything: the whole announced body."""
        if self.held < self.announced:
            self.admission.reserve(self.announced - self.held)
            self.held = self.announced

    def _hold_seen(self) -> None:
        """More arrived than is held: past 1 MiB, refuse; else hold that too."""
        if self.seen > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge()
        self.admission.reserve(self.seen - self.held)
        self.held = self.seen

    def release(self) -> None:
        """Give every byte held back to the budget (call once the request has ended)."""
        self.admission.bytes_held -= self.held
        self.held = 0


def announced_length(value: bytes | None) -> int | None:
    """A Content-Length header's value, or ``None`` when absent or not a number."""
    if value is None or not value.isdigit():
        return None
    return int(value)

"""What requests hold in this process right now, what the process refuses when that is too
much, and the counters that say so (read by ``/metrics``; see docs/architecture.md, "When
kudos is saturated").

- ``in_flight``: requests being served; past ``max_in_flight`` a new one is answered 503
  (5003, ``Retry-After``) before anything of it is read.
- ``bytes_held``: request-body bytes held by all requests; a request holds each chunk of
  its body as it arrives (not what its Content-Length promises: a client that announces a
  megabyte and sends a byte holds a byte) and gives them back when it ends, whatever
  happens. Past ``memory_bytes``: 503 (5003, ``Retry-After``), the rest of the body unread.
- Shares: one account may hold at most ``account_in_flight`` of the requests and
  ``account_memory_bytes`` of the bytes (requests whose API key this process has not seen
  yet count as one more account, ``UNSEEN``), so no tenant can take every slot or byte from
  the others: past its share, its own requests get 503 while the others' go on.
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
ACCOUNT_IN_FLIGHT = "account_in_flight"
ACCOUNT_MEMORY = "account_memory"
HEADER_BYTES = "header_bytes"
HEADER_TIMEOUT = "header_timeout"
BODY_TIMEOUT = "body_timeout"
WRITE_TIMEOUT = "write_timeout"
REASONS = (
    IN_FLIGHT,
    MEMORY,
    ACCOUNT_IN_FLIGHT,
    ACCOUNT_MEMORY,
    HEADER_BYTES,
    HEADER_TIMEOUT,
    BODY_TIMEOUT,
    WRITE_TIMEOUT,
)
UNSEEN = -1
"""The share of requests whose API key (if any) this process has not seen yet."""
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
    account_in_flight: int = 256
    account_memory_bytes: int = 16 * MAX_BODY_BYTES
    in_flight: int = 0
    bytes_held: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    # Per account (``UNSEEN`` included): requests in flight and bytes held. An account's entry
    # exists only while it holds something.
    in_flight_of: dict[int, int] = field(default_factory=dict)
    bytes_of: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            max_in_flight=settings.max_requests_in_flight,
            memory_bytes=settings.request_memory_bytes,
            header_max_bytes=settings.header_max_bytes,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            account_in_flight=settings.account_requests_in_flight,
            account_memory_bytes=settings.account_request_memory_bytes,
        )

    def enter(self, account: int) -> bool:
        """Count a request of ``account`` in flight; ``False`` (nothing counted) when the
        process or the account already serves as many as it may."""
        mine = self.in_flight_of.get(account, 0)
        if self.in_flight >= self.max_in_flight:
            self.refused[IN_FLIGHT] += 1
            return False
        if mine >= self.account_in_flight:
            self.refused[ACCOUNT_IN_FLIGHT] += 1
            return False
        self.in_flight += 1
        self.in_flight_of[account] = mine + 1
        return True

    def leave(self, account: int) -> None:
        """A request counted by ``enter`` ended."""
        self.in_flight -= 1
        mine = self.in_flight_of[account] - 1
        if mine:
            self.in_flight_of[account] = mine
        else:
            del self.in_flight_of[account]

    def reserve(self, size: int, account: int) -> None:
        """Hold ``size`` more body bytes for ``account``, or refuse (503) when the process's
        budget or the account's share cannot take them."""
        mine = self.bytes_of.get(account, 0)
        if self.bytes_held + size > self.memory_bytes:
            self.refused[MEMORY] += 1
        elif mine + size > self.account_memory_bytes:
            self.refused[ACCOUNT_MEMORY] += 1
        else:
            self.bytes_held += size
            self.bytes_of[account] = mine + size
            return
        raise errors.Unavailable(
            "Service unavailable: the server holds as many request bodies as it may; retry later.",
            retry_after=RETRY_AFTER_SECONDS,
        )

    def give_back(self, size: int, account: int) -> None:
        """Bytes held by ``reserve`` for ``account`` are no longer held."""
        self.bytes_held -= size
        mine = self.bytes_of[account] - size
        if mine:
            self.bytes_of[account] = mine
        else:
            del self.bytes_of[account]


def account_of(headers: list[tuple[bytes, bytes]], known: Callable[[str], int | None]) -> int:
    """Whose share a request counts in: the account of its ``apikey`` header if this process
    has seen that key lately (``known``: ``KnownKeys.cached``), else ``UNSEEN``."""
    for name, value in headers:
        if name == b"apikey":
            found = known(value.decode("latin-1")) if value else None
            return UNSEEN if found is None else found
    return UNSEEN


def saturated() -> errors.Unavailable:
    """The answer to a request over the in-flight limit."""
    return errors.Unavailable(
        "Service unavailable: the server serves as many requests as it may; retry later.",
        retry_after=RETRY_AFTER_SECONDS,
    )


class BodyGuard:
    """One request's ``receive``: refuses a body past 1 MiB, and holds what arrives in the
    process's budget (and its account's share) until ``release``; ``announced`` is its
    Content-Length (0 without one), which the callers refuse past 1 MiB before reading."""

    __slots__ = ("account", "admission", "announced", "held", "receive", "seen")

    def __init__(
        self, receive: Receive, admission: Admission, *, announced: int, account: int
    ) -> None:
        self.receive = receive
        self.admission = admission
        self.announced = announced
        self.account = account
        self.held = 0
        self.seen = 0

    async def __call__(self) -> Message:
        """``receive``, for a framework that reads the body itself."""
        message = await self.receive()
        body = message.get("body")
        if body:
            self.seen += len(body)
            if self.seen > self.held:
                self._hold_seen()
        return message

    async def read(self) -> bytes:
        """The whole body, in one coroutine however many chunks (the ingest hot path's way:
        a body that comes in one chunk costs one reservation)."""
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise errors.InvalidPayload("Invalid payload: the client disconnected.")
            body: bytes = message.get("body", b"")
            self.seen += len(body)
            if self.seen > self.held:
                self._hold_seen()
            if not message.get("more_body", False):
                if not chunks:
                    return body
                chunks.append(body)
                return b"".join(chunks)
            chunks.append(body)

    def _hold_seen(self) -> None:
        """More arrived than is held: past 1 MiB, refuse; else hold that too."""
        if self.seen > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge()
        self.admission.reserve(self.seen - self.held, self.account)
        self.held = self.seen

    def release(self) -> None:
        """Give every byte held back to the budget (call once the request has ended)."""
        if self.held:
            self.admission.give_back(self.held, self.account)
            self.held = 0


def announced_length(value: bytes | None) -> int | None:
    """A Content-Length header's value, or ``None`` when absent or not a number."""
    if value is None or not value.isdigit():
        return None
    return int(value)

"""The event-ingest hot path, as a plain ASGI handler.

STYLE.md allows one deliberate exception: framework machinery that costs a large share of a
request may be bypassed on the ingest path. This module refuses what it can before reading
the body (method, a missing or unknown API key, size, content type, the memory budget), reads
it, decodes with msgspec, validates (``domain.payload``), and hands the request to the
group-commit writer; it answers 200 only after the writer's COMMIT. Everything else
(OpenAPI, the other routes) lives in FastAPI. The contract tests cover these routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec

from kudos import errors
from kudos.api import errors as api_errors
from kudos.api.admission import Admission, BodyGuard
from kudos.config import MAX_BODY_BYTES
from kudos.domain.model import Credentials
from kudos.domain.payload import EventBatch, decode_event_batch
from kudos.services.ingest import MAX_IDEMPOTENCY_KEY, IngestContext, IngestEvents, request_hash
from kudos.services.keys import KnownKeys
from kudos.storage.writer import Writer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SUCCESS_BODY = msgspec.json.encode({"success": True, "message": "Events processed"})
_JSON_HEADERS = [(b"content-type", b"application/json")]
# The success answer never changes: build its two ASGI messages once (servers only read them).
_SUCCESS_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [*_JSON_HEADERS, (b"content-length", str(len(SUCCESS_BODY)).encode())],
}
_SUCCESS_END = {"type": "http.response.body", "body": SUCCESS_BODY}


@dataclass(frozen=True, slots=True)
class EventRoute:
    """How one ingest path reads its body and answers."""

    id_field: str = "customerId"
    attributes_field: str | None = None
    secret_required: bool = False
    legacy: bool = False


V4 = EventRoute()
V41 = EventRoute(secret_required=True)
V3 = EventRoute(id_field="playerUniqueId", legacy=True)
V2 = EventRoute(id_field="playerUniqueId", attributes_field="playerAttributes", legacy=True)

ROUTES: dict[str, EventRoute] = {
    "/api/v4.0/integrations/events": V4,
    "/api/v4/integrations/events": V4,
    "/api/v4.1/integrations/events": V41,
    "/api/v3.0/integrations/event": V3,
    "/api/v2.0/integrations/event": V2,
}


def match(path: str) -> EventRoute | None:
    """The ingest route for a path (letter case and a trailing slash are tolerated)."""
    route = ROUTES.get(path)
    if route is None:
        route = ROUTES.get(path.lower().rstrip("/"))
    return route


def is_json(content_type: bytes | None) -> bool:
    """``application/json`` or any ``application/*+json``, with or without parameters."""
    if content_type == b"application/json":
        return True
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class IngestHandler:
    """Serves every Send Events path."""

    def __init__(
        self, writer: Writer, context: IngestContext, keys: KnownKeys, admission: Admission
    ) -> None:
        self.writer = writer
        self.context = context
        self.keys = keys
        self.admission = admission

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: EventRoute,
        account: int,
        headers: dict[bytes, bytes],
        known: tuple[int, str] | None,
    ) -> None:
        """Serve one Send Events request: ``headers`` are ``wanted_headers(scope)``, ``known``
        what the key cache had for its key (the app looked both up to admit it); its body
        counts in ``account``'s share."""
        length = headers.get(b"content-length")
        announced = int(length) if length is not None and length.isdigit() else 0
        body = BodyGuard(receive, self.admission, announced=announced, account=account)
        try:
            await self._ingest(scope, headers, body, route, known)
        except errors.KudosError as error:
            status, extra, answer = api_errors.render(error, legacy=route.legacy)
            if b"expect" in headers and body.seen < body.announced:
                # The client waits for a go-ahead before it sends the body: what it sends
                # next would be read as that body, not as its next request.
                extra.append((b"connection", b"close"))
            await respond(send, status, answer, extra)
            return
        finally:
            body.release()
        await send(_SUCCESS_START)
        await send(_SUCCESS_END)

    async def _ingest(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        body: BodyGuard,
        route: EventRoute,
        known: tuple[int, str] | None,
    ) -> None:
        """Everything that can be refused without the body first, then the body, then the
        writer; each check raises the ``KudosError`` that answers the request."""
        if scope["method"] != "POST":
            raise errors.MethodNotAllowed(
                "Method not allowed: send events with POST.", allow="POST"
            )
        api_key = api_key_of(headers)
        if known is None:
            account = await self.keys.account_id(api_key)  # AuthError, the body unread
        else:
            account = known[0]
            # An account already over its rate limit is refused before its body is read and
            # decoded; requests are counted by the writer, once authenticated (``prepare``).
            wait = self.context.limiter.wait(known[0], known[1], self.context.clock())
            if wait is not None:
                raise errors.RateLimited(retry_after=wait)
        if body.announced > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge()
        if not is_json(headers.get(b"content-type")):
            raise errors.UnsupportedMediaType()
        raw = await body.read()
        batch = decode_event_batch(
            raw, id_field=route.id_field, attributes_field=route.attributes_field
        )
        secret = headers.get(b"secretkey") or headers.get(b"transactionkey")
        work = IngestEvents(
            context=self.context,
            batch=batch,
            credentials=Credentials(
                api_key=api_key,
                secret_key=_text(secret) if secret else None,
                secret_required=route.secret_required,
            ),
        )
        key = headers.get(b"idempotency-key")
        if key is not None:
            work.idempotency_key = idempotency_key(key)
            work.body_hash = request_hash(raw)
        await self.writer.submit(work, share=account, cost=work_cost(batch, raw))


def work_cost(batch: EventBatch, raw: bytes) -> int:
    """About how much of the writer's time a request takes, in units of one event or one
    top-level metadata key (the catalog counts each) or one KiB of body (stored): a plain
    request is about 10, the largest about 2,000 (``Writer._take_batch`` shares batches by it)."""
    return 1 + len(batch.events) + sum(map(len, (m for _, m in batch.events))) + len(raw) // 1024


_WANTED = frozenset(
    {
        b"expect",
        b"apikey",
        b"secretkey",
        b"transactionkey",
        b"content-type",
        b"content-length",
        b"idempotency-key",
    }
)


def wanted_headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers Send Events reads, by their lower-case names."""
    return {name: value for name, value in scope["headers"] if name in _WANTED}


def api_key_of(headers: dict[bytes, bytes]) -> str:
    """The ``apikey`` header's text ("" without one)."""
    return _text(headers.get(b"apikey") or b"")


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def idempotency_key(raw: bytes) -> str:
    key = raw.decode("latin-1").strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise errors.InvalidValue(
            f"Invalid value: Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters."
        )
    return key


async def respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response."""
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

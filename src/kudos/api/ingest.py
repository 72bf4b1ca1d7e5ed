"""The event-ingest hot path, as a plain ASGI handler.

STYLE.md allows one deliberate exception: framework machinery that costs a large share of a
request may be bypassed on the ingest path. This module reads the body, checks size and
content type, decodes with msgspec, validates (``domain.payload``), and hands the request to
the group-commit writer; it answers 200 only after the writer's COMMIT. Everything else
(OpenAPI, the other routes) lives in FastAPI. The contract tests cover these routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec

from kudos import errors
from kudos.api import errors as api_errors
from kudos.config import MAX_BODY_BYTES
from kudos.domain.model import Credentials
from kudos.domain.payload import decode_event_batch
from kudos.services.ingest import MAX_IDEMPOTENCY_KEY, IngestContext, IngestEvents, request_hash
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


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole request body; ``PayloadTooLarge`` as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.InvalidPayload("Invalid payload: the client disconnected.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class IngestHandler:
    """Serves every Send Events path."""

    def __init__(self, writer: Writer, context: IngestContext) -> None:
        self.writer = writer
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send, route: EventRoute) -> None:
        try:
            await self._ingest(scope, receive, route)
        except errors.KudosError as error:
            status, headers, body = api_errors.render(error, legacy=route.legacy)
            await respond(send, status, body, headers)
            return
        await send(_SUCCESS_START)
        await send(_SUCCESS_END)

    async def _ingest(self, scope: Scope, receive: Receive, route: EventRoute) -> None:
        if scope["method"] != "POST":
            raise errors.MethodNotAllowed(
                "Method not allowed: send events with POST.", allow="POST"
            )
        headers = _headers(scope)
        api_key = headers.get(b"apikey")
        if not api_key:
            raise errors.AuthError()
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge()
        if not is_json(headers.get(b"content-type")):
            raise errors.UnsupportedMediaType()
        body = await read_body(receive)
        batch = decode_event_batch(
            body, id_field=route.id_field, attributes_field=route.attributes_field
        )
        secret = headers.get(b"secretkey") or headers.get(b"transactionkey")
        work = IngestEvents(
            context=self.context,
            batch=batch,
            credentials=Credentials(
                api_key=_text(api_key),
                secret_key=_text(secret) if secret else None,
                secret_required=route.secret_required,
            ),
        )
        key = headers.get(b"idempotency-key")
        if key is not None:
            work.idempotency_key = _idempotency_key(key)
            work.body_hash = request_hash(body)
        await self.writer.submit(work)


_WANTED = frozenset(
    {
        b"apikey",
        b"secretkey",
        b"transactionkey",
        b"content-type",
        b"content-length",
        b"idempotency-key",
    }
)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name: value for name, value in scope["headers"] if name in _WANTED}


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _idempotency_key(raw: bytes) -> str:
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

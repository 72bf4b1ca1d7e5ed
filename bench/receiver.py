"""The webhook benchmark's receiver: counts deliveries and distinct webhook-ids, answers 204,
as `uvicorn bench.receiver:app`; `GET /count` reports ``{"received": n, "unique": m}``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
seen: set[bytes] = set()
received = [0]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "GET":
        body = json.dumps({"received": received[0], "unique": len(seen)}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    received[0] += 1
    seen.add(dict(scope["headers"]).get(b"webhook-id", b""))
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

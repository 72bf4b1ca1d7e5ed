"""``KudosRoute``: the FastAPI route class of every API router.

A route that takes a JSON body refuses a missing or unknown ``apikey`` (401) before it reads
the body, then reads it (through the app's ``BodyGuard``: size and memory budget) and decodes
it once, with ``domain.payload.decode_json``: msgspec, strict JSON, checked for depth, size
and NUL characters, as on Send Events. Its refusals are raised as themselves here, before
FastAPI's own body handling, which would turn any exception into a bare 400.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from kudos import errors
from kudos.bootstrap import Runtime
from kudos.domain import payload

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class JsonRequest(Request):
    """A request whose JSON body is decoded by ``domain.payload`` (FastAPI asks for it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = payload.decode_json(await self.body())
        return self._json


class KudosRoute(APIRoute):
    """An API route: the key before the body, and one strict JSON decoding."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def route(request: Request) -> Response:
            request = JsonRequest(request.scope, request.receive)
            if takes_body:
                runtime: Runtime = request.app.state.runtime
                await runtime.keys.account_id(request.headers.get("apikey"))
                if await _body(request):
                    await request.json()
            return await handler(request)

        return route


async def _body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        raise errors.InvalidPayload("Invalid payload: the client disconnected.") from None

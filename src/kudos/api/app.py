"""``create_app(settings)``: the ASGI application.

Requests to the Send Events paths go straight to ``api.ingest`` (the hot path); everything
else goes to a FastAPI app, whose routes are ``api.routing.KudosRoute``s. The outer layer
sheds requests past the in-flight limit before reading anything (``api.admission``), and
enforces, for every request with a body, the JSON content type, the 1 MiB limit and the
process's budget of body bytes, so no route can be reached around them. ``kudos serve`` runs
it under ``api.server``'s HTTP protocol (header limits, read timeouts).
"""

from __future__ import annotations

import gc
import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from kudos import errors
from kudos.api import admission, ingest
from kudos.api import errors as api_errors
from kudos.api.docs import mount_docs
from kudos.api.openapi import install_openapi
from kudos.api.routes import (
    analytics,
    burn,
    burn_v3,
    catalog,
    customers,
    loyalty,
    preview,
    program,
    webhooks,
)
from kudos.api.schemas import Health
from kudos.api.validation import error_from_validation
from kudos.bootstrap import Runtime
from kudos.config import MAX_BODY_BYTES, Settings

log = logging.getLogger("kudos.api")

INTEGRATION_PREFIXES = ("/api/v4.0/integrations", "/api/v4/integrations", "/api/v4.1/integrations")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Never shed: liveness must not fail because the process is busy (it is alive, and cheap).
UNSHED_PATHS = frozenset({"/healthz"})
GC_YOUNG_THRESHOLD = 20_000


class KudosApp:
    """The outer ASGI callable: lifespan, the in-flight limit, the ingest fast path, then
    FastAPI (its request bodies read through a ``BodyGuard``)."""

    def __init__(self, runtime: Runtime, api: FastAPI) -> None:
        self.runtime = runtime
        self.api = api
        self.admission = admission.Admission.from_settings(runtime.settings)
        self.ingest = ingest.IngestHandler(
            runtime.writer, runtime.context, runtime.keys, self.admission
        )

    async def __call__(
        self, scope: ingest.Scope, receive: ingest.Receive, send: ingest.Send
    ) -> None:
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        route = ingest.match(scope["path"])
        if scope["path"] in UNSHED_PATHS:
            await self.api(scope, receive, send)
            return
        # Before anything is read: the process's and the account's share of requests.
        if route is not None:  # the hot path: its headers and key looked up once, here
            headers = ingest.wanted_headers(scope)
            known = self.runtime.keys.entry(ingest.api_key_of(headers))
            account = admission.UNSEEN if known is None else known[0]
        else:
            account = admission.account_of(scope["headers"], self.runtime.keys.cached)
        if not self.admission.enter(account):
            await _answer(send, admission.saturated(), legacy=route is not None and route.legacy)
            return
        try:
            if route is not None:
                await self.ingest(scope, receive, send, route, account, headers, known)
            elif scope["method"] in _BODY_METHODS:
                await self._with_body(scope, receive, send, account)
            else:
                await self.api(scope, receive, send)
        finally:
            self.admission.leave(account)

    async def _other(self, scope: ingest.Scope, receive: ingest.Receive, send: ingest.Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    async def _with_body(
        self, scope: ingest.Scope, receive: ingest.Receive, send: ingest.Send, account: int
    ) -> None:
        headers = dict(scope["headers"])
        announced = admission.announced_length(headers.get(b"content-length"))
        refused = _refuse_body(headers, announced)
        if refused is not None:
            await _answer(send, refused)
            return
        body = admission.BodyGuard(
            receive, self.admission, announced=announced or 0, account=account
        )
        if b"expect" in headers:
            send = _closing_unless_read(send, body)
        try:
            await self.api(scope, body, send)
        finally:
            body.release()

    async def _lifespan(
        self, scope: ingest.Scope, receive: ingest.Receive, send: ingest.Send
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if "state" in scope:  # for the HTTP protocol (api.server) of every connection
                    scope["state"][admission.STATE_KEY] = self.admission
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start(self) -> None:
        """Start the runtime (SQLite migrates itself; PostgreSQL needs ``kudos migrate``)."""
        self.runtime.start(
            migrate=self.runtime.db.dialect == "sqlite", ensure_default_account=False
        )
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's passes, which otherwise rescan it and show up in tail latency.
        gc.collect()
        gc.freeze()
        # Requests allocate many short-lived containers; collecting the young generation every
        # 700 allocations (the default) costs measurable throughput for nothing.
        gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


async def _answer(send: ingest.Send, error: errors.KudosError, *, legacy: bool = False) -> None:
    status, headers, body = api_errors.render(error, legacy=legacy)
    await ingest.respond(send, status, body, headers)


def _closing_unless_read(send: ingest.Send, body: admission.BodyGuard) -> ingest.Send:
    """``send`` that closes the connection after an answer sent before the body was read:
    the client waits for a go-ahead (``Expect: 100-continue``) before it sends the body, so
    what it sends next would be read as that body, not as its next request."""

    async def sending(message: ingest.Message) -> None:
        if message["type"] == "http.response.start" and body.seen < body.announced:
            message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
        await send(message)

    return sending


def _refuse_body(headers: dict[bytes, bytes], announced: int | None) -> errors.KudosError | None:
    if announced is not None and announced > MAX_BODY_BYTES:
        return errors.PayloadTooLarge()
    empty = announced == 0 or (announced is None and b"transfer-encoding" not in headers)
    if not empty and not ingest.is_json(headers.get(b"content-type")):
        return errors.UnsupportedMediaType()  # a request without a body needs no type
    return None


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> KudosApp:
    """Wire the runtime and the routes; nothing starts until the ASGI lifespan (or ``start``)."""
    runtime = runtime or Runtime.build(settings)
    api = FastAPI(
        title="kudos",
        version="0.1.0",
        description="Self-hostable events and rewards engine speaking the Gameball REST API.",
        docs_url=None,
        redoc_url=None,
    )
    api.state.runtime = runtime
    for prefix in INTEGRATION_PREFIXES:
        api.include_router(customers.router, prefix=prefix)
        api.include_router(preview.router, prefix=prefix)
        api.include_router(loyalty.router, prefix=prefix)
        api.include_router(burn.router, prefix=prefix)
    api.include_router(burn_v3.router, prefix="/api/v3.0")
    api.include_router(catalog.router, prefix="/api/kudos/v1")
    api.include_router(analytics.router, prefix="/api/kudos/v1")
    api.include_router(program.router, prefix="/api/kudos/v1")
    api.include_router(webhooks.router, prefix="/api/kudos/v1")

    @api.get("/healthz", response_model=Health, tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _install_error_handlers(api)
    install_openapi(api)
    mount_docs(api)
    return KudosApp(runtime, api)


def _install_error_handlers(api: FastAPI) -> None:
    def respond(error: errors.KudosError) -> JSONResponse:
        return JSONResponse(
            api_errors.envelope(error), status_code=error.status, headers=api_errors.headers(error)
        )

    async def on_kudos_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.KudosError)
        return respond(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(error_from_validation(exc.errors()))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return respond(_from_http_error(exc))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return respond(errors.InternalError())

    api.add_exception_handler(errors.KudosError, on_kudos_error)
    api.add_exception_handler(RequestValidationError, on_validation_error)
    api.add_exception_handler(StarletteHTTPException, on_http_error)
    api.add_exception_handler(Exception, on_unexpected)


def _from_http_error(exc: StarletteHTTPException) -> errors.KudosError:
    """The coded error for one of Starlette's or FastAPI's own HTTP errors."""
    if isinstance(exc.__cause__, errors.KudosError):  # raised while FastAPI read a body
        return exc.__cause__
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return errors.MethodNotAllowed(f"Method not allowed: use {allow}.", allow=allow)
    if exc.status_code == 404:
        return errors.NotFound("Not found: no such route.")
    # Every route with a body is a KudosRoute, whose errors never come this way: anything
    # else is a bug, not the client's (4500 is never answered).
    log.error("unexpected HTTP error %s: %s", exc.status_code, exc.detail, exc_info=exc)
    return errors.InternalError()


def app_from_environment() -> KudosApp:
    """Factory for ``uvicorn --factory`` worker processes: settings from ``KUDOS_*``."""
    return create_app(Settings())

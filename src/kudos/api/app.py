"""``create_app(settings)``: the ASGI application.

Requests to the Send Events paths go straight to ``api.ingest`` (the hot path); everything
else goes to a FastAPI app. The outer layer also enforces, for every request with a body,
the JSON content type and the 1 MiB limit, so no route can be reached around them.
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
from kudos.api import errors as api_errors
from kudos.api import ingest
from kudos.api.docs import mount_docs
from kudos.api.openapi import install_openapi
from kudos.api.routes import catalog, customers, loyalty, preview, program, webhooks
from kudos.api.schemas import Health
from kudos.api.validation import error_from_validation
from kudos.bootstrap import Runtime
from kudos.config import MAX_BODY_BYTES, Settings

log = logging.getLogger("kudos.api")

INTEGRATION_PREFIXES = ("/api/v4.0/integrations", "/api/v4/integrations", "/api/v4.1/integrations")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
GC_YOUNG_THRESHOLD = 20_000


class KudosApp:
    """The outer ASGI callable: lifespan, the ingest fast path, then FastAPI."""

    def __init__(self, runtime: Runtime, api: FastAPI) -> None:
        self.runtime = runtime
        self.api = api
        self.ingest = ingest.IngestHandler(runtime.writer, runtime.context)

    async def __call__(
        self, scope: ingest.Scope, receive: ingest.Receive, send: ingest.Send
    ) -> None:
        if scope["type"] == "http":
            route = ingest.match(scope["path"])
            if route is not None:
                await self.ingest(scope, receive, send, route)
                return
            if scope["method"] in _BODY_METHODS:
                refused = _refuse_body(scope)
                if refused is not None:
                    status, headers, body = api_errors.render(refused)
                    await ingest.respond(send, status, body, headers)
                    return
                receive = _limited(receive)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.api(scope, receive, send)

    async def _lifespan(self, receive: ingest.Receive, send: ingest.Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
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


def _refuse_body(scope: ingest.Scope) -> errors.KudosError | None:
    headers = dict(scope["headers"])
    length = headers.get(b"content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return errors.PayloadTooLarge()
    empty = length == b"0" or (length is None and b"transfer-encoding" not in headers)
    if not empty and not ingest.is_json(headers.get(b"content-type")):
        return errors.UnsupportedMediaType()  # a request without a body needs no type
    return None


def _limited(receive: ingest.Receive) -> ingest.Receive:
    """A ``receive`` that refuses bodies over the limit even without a Content-Length."""
    seen = 0

    async def wrapped() -> ingest.Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge()
        return message

    return wrapped


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
    api.include_router(catalog.router, prefix="/api/kudos/v1")
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
            api_errors.envelope(error), status_code=error.status, headers=error.headers()
        )

    async def on_kudos_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.KudosError)
        return respond(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return respond(error_from_validation(exc.errors()))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        error: errors.KudosError
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            error = errors.MethodNotAllowed(f"Method not allowed: use {allow}.", allow=allow)
        elif exc.status_code == 404:
            error = errors.NotFound("Not found: no such route.")
        else:
            error = errors.KudosError(str(exc.detail))
        return respond(error)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return respond(errors.InternalError())

    api.add_exception_handler(errors.KudosError, on_kudos_error)
    api.add_exception_handler(RequestValidationError, on_validation_error)
    api.add_exception_handler(StarletteHTTPException, on_http_error)
    api.add_exception_handler(Exception, on_unexpected)


def app_from_environment() -> KudosApp:
    """Factory for ``uvicorn --factory`` worker processes: settings from ``KUDOS_*``."""
    return create_app(Settings())

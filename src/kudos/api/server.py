"""The HTTP protocol ``kudos serve`` runs: uvicorn's httptools protocol with limits on what a
client can make the server hold before (and while) the app reads its request.

httptools accumulates a request line and headers of any size, and uvicorn waits for them, and
for a body, as long as the client likes. This subclass adds, per connection:

- a cap on the request line and headers (``header_max_bytes``): past it, 431 (code 3021) and
  the connection closed. Bytes are counted as they arrive, before the parser buffers them;
- a time limit on them (``header_timeout``, from the connection's opening or the request's
  first byte): past it, the connection is closed;
- a time limit on the body once its headers arrived (``body_timeout``): past it, 408
  (code 3020, unless an answer was already sent) and the connection closed.

One timer per connection, armed only while a request is incomplete after a read: a request
that arrives whole in one read (the common case) costs no timer at all. The limits and the
refusal counters come from the app's ``Admission``, published in the ASGI lifespan state;
``kudos serve`` passes this class to uvicorn by its import path, so ``--workers`` processes
load it too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from kudos import errors
from kudos.api import admission, ingest
from kudos.api import errors as api_errors
from kudos.config import Settings

# Where a connection is: waiting for the rest of a request line and headers, for the rest of
# a body, or neither (between requests, or while the app works).
_HEADERS, _BODY, _IDLE = 0, 1, 2


class KudosHttpProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with header and read-time limits."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        published = app_state.get(admission.STATE_KEY)
        self.admission: admission.Admission = (
            published
            if isinstance(published, admission.Admission)
            else admission.Admission.from_settings(Settings.model_construct())  # the defaults
        )
        self._header_limit = self.admission.header_max_bytes
        self._header_bytes = 0
        # The phase the connection was in after the last read, and the phase ``_since`` dates.
        # Both are worked out after each read from the parser's own state (uvicorn's scope
        # and cycle), so a request that arrives whole in one read costs no clock reading, no
        # timer and no extra callback.
        self._phase = _HEADERS
        self._timed_phase = _HEADERS
        self._since = 0.0
        self._completed: object = None  # the scope of the last request received whole
        self._watchdog: asyncio.TimerHandle | None = None
        self._write_stall: asyncio.TimerHandle | None = None
        self._running: Any = None  # the cycle of the request being answered
        self._body_left: int | None = None  # bytes of the body still to come, if known
        # A refusal of a pipelined request, held until the request before it is answered.
        self._refusal: errors.KudosError | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        HttpToolsProtocol.connection_made(self, transport)
        self._since = self.loop.time()  # the first request's headers count from here
        self._watch_until(self._since + self.admission.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._watchdog, self._write_stall):
            if timer is not None:
                timer.cancel()
        self._watchdog = self._write_stall = None
        HttpToolsProtocol.connection_lost(self, exc)

    def data_received(self, data: bytes) -> None:
        # Fed in slices of at most the header limit, the phase worked out after each: while a
        # request line and headers arrive, at most what the limit has room for, so a refusal
        # happens before the parser buffers more. A slice that ends a body and begins the next
        # request's headers lets those pass the limit by at most one limit's worth.
        if self._refusal is not None:
            return  # a refusal waits for the earlier answer: nothing more is read
        limit = self._header_limit
        while data:
            if self._phase == _BODY:
                # The rest of the body in one piece when its length is known (a big body
                # costs the parser few calls), else a limit's worth at a time.
                left = self._body_left if self._body_left is not None else limit
                part, data = data[: max(left, 1)], data[max(left, 1) :]
            else:
                room = limit - self._header_bytes
                if room <= 0:
                    self._refuse_headers()
                    return
                part, data = data[:room], data[room:]
                self._header_bytes += len(part)
            HttpToolsProtocol.data_received(self, part)
            if self.transport.is_closing() or self._refusal is not None:
                return
            self._phase = self._current_phase()
            if self._phase != _HEADERS:
                self._header_bytes = 0  # the next request's headers count from zero
        if self._phase != self._timed_phase:
            self._phase_began()

    def pause_writing(self) -> None:
        """The client stopped reading its answers: it has the body timeout to start again,
        then the connection is dropped (its request would hold an in-flight slot forever)."""
        HttpToolsProtocol.pause_writing(self)
        if self._write_stall is None:
            self._write_stall = self.loop.call_later(self.admission.body_timeout, self._stalled)

    def resume_writing(self) -> None:
        if self._write_stall is not None:
            self._write_stall.cancel()
            self._write_stall = None
        HttpToolsProtocol.resume_writing(self)

    def _stalled(self) -> None:
        self._write_stall = None
        self.admission.refused[admission.WRITE_TIMEOUT] += 1
        for cycle in (self._running, self.cycle, *(queued for queued, _ in self.pipeline)):
            if cycle is not None:  # their answers now go nowhere (uvicorn's send returns)
                cycle.disconnected = True
                cycle.message_event.set()
        self.transport.abort()  # drops what it could not send

    def on_message_complete(self) -> None:
        self._completed = self.scope
        self._body_left = None
        HttpToolsProtocol.on_message_complete(self)

    def on_headers_complete(self) -> None:
        HttpToolsProtocol.on_headers_complete(self)
        length = next((v for k, v in self.headers if k == b"content-length"), None)
        self._body_left = int(length) if length is not None and length.isdigit() else None

    def on_body(self, body: bytes) -> None:
        if self._body_left is not None:
            self._body_left -= len(body)
        HttpToolsProtocol.on_body(self, body)

    def _current_phase(self) -> int:
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:
            return _HEADERS  # no request yet, or one whose headers have not all come
        if self._completed is not self.scope:
            return _BODY
        # Received whole. Answered too, yet bytes came (this runs after reads only): they
        # begin the next request, or are blank lines the parser skips, which must not keep
        # the connection open for ever (uvicorn's keep-alive timer stops at any byte).
        return _HEADERS if cycle.response_complete else _IDLE

    def _phase_began(self) -> None:
        """A read left the connection in a new phase: date it, and make sure the timer runs
        by the time it runs out."""
        self._timed_phase = self._phase
        self._since = self.loop.time()
        deadline = self._deadline()
        if deadline is not None and (self._watchdog is None or self._watchdog.when() > deadline):
            self._watch_until(deadline)

    def _deadline(self) -> float | None:
        """When the current phase runs out, or ``None`` when nothing is awaited."""
        if self._phase == _HEADERS:
            return self._since + self.admission.header_timeout
        if self._phase == _BODY:
            return self._since + self.admission.body_timeout
        return None

    def _watch_until(self, deadline: float) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = self.loop.call_at(deadline, self._watch)

    def _watch(self) -> None:
        """The timer: refuse the request whose phase ran out; else wait for the new phase."""
        self._watchdog = None
        deadline = self._deadline()
        if deadline is None or self.transport.is_closing():
            return
        if self._phase == _BODY and (self.flow.read_paused or self.pipeline):
            # The server is not reading (an earlier request is still served, or its buffer
            # is full): no time runs against the client meanwhile.
            self._since = self.loop.time()
            self._watch_until(self._since + self.admission.body_timeout)
        elif self.loop.time() < deadline:
            self._watch_until(deadline)
        elif self._phase == _HEADERS:
            self.admission.refused[admission.HEADER_TIMEOUT] += 1
            self.transport.close()
        else:
            self.admission.refused[admission.BODY_TIMEOUT] += 1
            self._answer_and_close(errors.RequestTimeout())

    def _refuse_headers(self) -> None:
        self.admission.refused[admission.HEADER_BYTES] += 1
        limit = self.admission.header_max_bytes
        self._answer_and_close(
            errors.HeadersTooLarge(
                f"Request header fields too large: the request line and headers exceed"
                f" {limit:,} bytes."
            )
        )

    def _answer_and_close(self, error: errors.KudosError) -> None:
        """Answer ``error`` (unless the request was answered already), close, and tell the
        app, whose reads then see a disconnect and whose answer, if any, goes nowhere. While
        an earlier request on the connection is still being answered (pipelining), first let
        that answer go out (it may have been committed: a client that lost it would retry it),
        reading nothing more meanwhile."""
        if self._phase == _HEADERS and self.cycle is not None and not self.cycle.response_complete:
            self._refusal = error
            self.flow.pause_reading()
            return
        if self._unanswered():
            self.transport.write(self._response(error))
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._running = cycle  # the request being answered (``cycle`` may be a later one's)
        HttpToolsProtocol._start_asgi_task(self, cycle, app)

    def on_response_complete(self) -> None:
        refusal, self._refusal = self._refusal, None
        if refusal is not None and not self.transport.is_closing():
            self.transport.write(self._response(refusal))
            self.transport.close()
            return
        HttpToolsProtocol.on_response_complete(self)

    def _unanswered(self) -> bool:
        """Whether the request being received has no answer begun (while its headers arrive,
        ``cycle`` is still the previous request's: its answer must be complete)."""
        cycle = self.cycle
        if cycle is None:
            return True
        if self._phase == _HEADERS:
            return cycle.response_complete
        return not cycle.response_started

    def _response(self, error: errors.KudosError) -> bytes:
        route = ingest.match(self.scope["path"]) if self.scope and "path" in self.scope else None
        status, extra, body = api_errors.render(error, legacy=route is not None and route.legacy)
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        lines = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        return STATUS_LINE[status] + lines + b"\r\n" + body

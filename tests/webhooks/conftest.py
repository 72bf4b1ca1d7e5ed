"""A real local HTTP receiver, an injected clock, and a worker driven by both."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime, build_worker
from kudos.config import Settings
from kudos.webhooks.worker import Worker
from tests.conftest import events_body

HOLD_LIMIT = 30.0  # a held request is answered after this long at the latest
TRICKLE_SECONDS = 0.2  # between two bytes of a trickled answer
EVENTS = "/api/v4.0/integrations/events"
HOOKS = "/api/kudos/v1/webhooks"


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers 200 unless told otherwise per path, or holds it."""

    port: int = 0
    received: list[Delivery] = field(default_factory=list)
    statuses: dict[str, deque[int]] = field(default_factory=dict)
    holds: dict[str, threading.Event] = field(default_factory=dict)
    trickles: set[str] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    in_flight: dict[str, int] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with these statuses (then 200)."""
        self.statuses.setdefault(path, deque()).extend(statuses)

    def hold(self, path: str) -> threading.Event:
        """Keep requests to ``path`` open until the returned event is set."""
        self.holds[path] = threading.Event()
        return self.holds[path]

    def trickle(self, path: str) -> None:
        """Answer requests to ``path`` with a 200 whose body comes one byte at a time, on and
        on (until the test ends)."""
        self.trickles.add(path)

    def got(self, path: str = "/hook") -> list[Delivery]:
        with self.lock:
            return [d for d in self.received if d.path == path]

    def wait_for(self, count: int, path: str = "/hook", timeout: float = 20.0) -> list[Delivery]:
        """Block until ``count`` requests reached ``path`` (for tests across processes)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.got(path)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.got(path))} of {count} deliveries arrived"
                self.arrived.wait(left)
        return self.got(path)

    def _handle(self, handler: BaseHTTPRequestHandler) -> int:
        length = int(handler.headers.get("content-length", "0"))
        path = handler.path
        delivery = Delivery(
            path, {k.lower(): v for k, v in handler.headers.items()}, handler.rfile.read(length)
        )
        with self.lock:
            self.received.append(delivery)
            self.in_flight[path] = self.in_flight.get(path, 0) + 1
            self.most_in_flight[path] = max(self.most_in_flight.get(path, 0), self.in_flight[path])
        with self.arrived:
            self.arrived.notify_all()
        hold = self.holds.get(path)
        if hold is not None:
            hold.wait(HOLD_LIMIT)
        with self.lock:
            self.in_flight[path] -= 1
            queue = self.statuses.get(path)
            return queue.popleft() if queue else 200


def _server(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            status = receiver._handle(self)
            self.send_response(status)
            if self.path in receiver.trickles:
                self._trickle()
                return
            self.send_header("content-length", "0")
            self.end_headers()

        def _trickle(self) -> None:
            self.send_header("content-length", str(10**9))
            self.end_headers()
            try:
                while not receiver.done.wait(TRICKLE_SECONDS):
                    self.wfile.write(b".")
                    self.wfile.flush()
            except OSError:  # the client hung up
                pass

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the default 5 drops connections beyond it (1 s retries)

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = _server(found)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.done.set()
        for event in found.holds.values():
            event.set()
        server.shutdown()
        server.server_close()


class Clock:
    """An injected clock: a minute ahead of the real time, so every message the test creates
    (stamped with the real time) is due; it moves only when told."""

    def __init__(self) -> None:
        self.now = time.time() + 60

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_worker(runtime: Runtime, settings: Settings) -> AsyncIterator[Callable[..., Worker]]:
    """Workers on the test's runtime (its writer), with an injected clock, and the
    production client (guarded connections) unless the test gives one."""
    workers: list[Worker] = []

    def make(
        clock: Callable[[], float], *, client: httpx.AsyncClient | None = None, **overrides: Any
    ) -> Worker:
        configured = settings.model_copy(update=overrides) if overrides else settings
        workers.append(
            build_worker(
                configured, runtime.writer, runtime.context.keyring, client=client, clock=clock
            )
        )
        return workers[-1]

    yield make
    for made in workers:
        await made.client.aclose()


Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def mock_client(handler: Handler) -> httpx.AsyncClient:
    """A client whose requests ``handler`` answers (no network; no timeouts of its own)."""
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.fixture
async def worker(make_worker: Callable[..., Worker], clock: Clock) -> Worker:
    return make_worker(clock)


# --- the API calls the webhook tests share ----------------------------------------------------


async def add_endpoint(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, *topics: str
) -> dict[str, Any]:
    """Register an endpoint through the API; its answer (with the secret)."""
    response = await client.post(HOOKS, json={"url": url, "topics": list(topics)}, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str = "cust-1", **overrides: Any
) -> None:
    """One Send Events request (two events) for ``customer``."""
    body = events_body(customer, **overrides)
    response = await client.post(EVENTS, json=body, headers={"apikey": auth["apikey"]})
    assert response.status_code == 200, response.text


async def _items(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(path, params={"limit": 500, **params}, headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def messages(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint_id: int, **params: Any
) -> list[dict[str, Any]]:
    """The endpoint's messages, newest first (``state=`` filters)."""
    return await _items(client, auth, f"{HOOKS}/{endpoint_id}/messages", params)


async def deliveries(
    client: httpx.AsyncClient, auth: dict[str, str], endpoint_id: int
) -> list[dict[str, Any]]:
    """The endpoint's delivery log, newest first."""
    return await _items(client, auth, f"{HOOKS}/{endpoint_id}/deliveries", {})

"""Receivers that answer too much, too slowly or not at all, and targets inside the network
(issue 7, 8, 9): what one attempt reads, how long it lasts, and what the delivery log says."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.webhooks import targets
from kudos.webhooks.delivery import MAX_ANSWER_BYTES, NO_ANSWER
from kudos.webhooks.worker import Worker
from tests.conftest import free_port
from tests.webhooks.conftest import Clock, add_endpoint, deliveries, messages, mock_client, send

BOUND = 20.0  # seconds a test waits for what must end far sooner (instead of hanging)
CHUNK = 1024


class Endless(httpx.AsyncByteStream):
    """An answer body that never ends (or ends after ``total`` bytes); counts what was read."""

    def __init__(self, *, total: int | None = None, pause: float = 0.0, chunk: int = CHUNK) -> None:
        self.total = total
        self.pause = pause
        self.chunk = chunk
        self.produced = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.total is None or self.produced < self.total:
            if self.pause:
                await asyncio.sleep(self.pause)
            self.produced += self.chunk
            yield b"x" * self.chunk


async def test_only_a_few_kib_of_a_huge_answer_are_read(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    bodies: list[Endless] = []

    async def huge(request: httpx.Request) -> httpx.Response:
        bodies.append(Endless(total=256 * 1024 * 1024))  # 256 MiB
        status = 200 if request.url.path == "/ok" else 500
        return httpx.Response(status, stream=bodies[-1])

    worker = make_worker(clock, client=mock_client(huge))
    ok = await add_endpoint(client, auth, "https://hooks.example.com/ok", "customer.created")
    failing = await add_endpoint(client, auth, "https://hooks.example.com/no", "customer.created")
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 2
    assert len(bodies) == 2
    assert all(body.produced <= MAX_ANSWER_BYTES + CHUNK for body in bodies)
    [delivered] = await messages(client, auth, ok["id"])
    [pending] = await messages(client, auth, failing["id"])
    assert (delivered["state"], delivered["lastStatusCode"]) == ("delivered", 200)
    assert (pending["state"], pending["lastError"]) == ("pending", "HTTP 500")


async def test_a_trickled_answer_is_cut_at_the_deadline_and_counts_as_its_status(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    async def trickle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Endless(pause=0.05, chunk=1))  # a byte at a time

    worker = make_worker(clock, client=mock_client(trickle), webhook_timeout_seconds=0.5)
    hook = await add_endpoint(client, auth, "https://hooks.example.com/in", "customer.created")
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 1
    [attempt] = await deliveries(client, auth, hook["id"])
    assert (attempt["statusCode"], attempt["outcome"], attempt["error"]) == (200, "delivered", None)


async def test_a_receiver_that_never_answers_times_out_at_the_deadline(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # no status line, ever
        raise AssertionError("unreachable")

    worker = make_worker(clock, client=mock_client(silent), webhook_timeout_seconds=0.5)
    hook = await add_endpoint(client, auth, "https://hooks.example.com/in", "customer.created")
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 1
    [attempt] = await deliveries(client, auth, hook["id"])
    assert (attempt["statusCode"], attempt["error"]) == (None, "timed out after 0.5 s")


@pytest.fixture
def open_port() -> Iterator[int]:
    """A local port that accepts connections and answers something that is not HTTP (as a
    database or a mail server would), then hangs up."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"220 not http\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


async def test_the_delivery_log_does_not_tell_an_open_port_from_a_closed_one(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    worker: Worker,
    open_port: int,
) -> None:
    opened = await add_endpoint(client, auth, f"http://127.0.0.1:{open_port}/", "customer.created")
    closed = await add_endpoint(
        client, auth, f"http://127.0.0.1:{free_port()}/", "customer.created"
    )
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 2
    [to_open] = await deliveries(client, auth, opened["id"])
    [to_closed] = await deliveries(client, auth, closed["id"])
    assert to_open["error"] == to_closed["error"] == NO_ANSWER
    assert to_open["statusCode"] is to_closed["statusCode"] is None


def store_endpoint(runtime: Runtime, endpoint_id: int, url: str) -> None:
    """Point an endpoint at ``url`` behind the API's back (as one stored before the checks)."""
    run_in_transaction(
        runtime.db,
        lambda tx: tx.execute(
            "UPDATE webhook_endpoints SET url = ? WHERE id = ?", (url, endpoint_id)
        ),
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0:{port}/",
    ],
)
async def test_a_refused_target_is_a_failed_attempt_with_a_fixed_text(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    runtime: Runtime,
    worker: Worker,
    url: str,
    open_port: int,
) -> None:
    hook = await add_endpoint(client, auth, "https://hooks.example.com/", "customer.created")
    store_endpoint(runtime, hook["id"], url.format(port=open_port))
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 1
    [attempt] = await deliveries(client, auth, hook["id"])
    assert (attempt["statusCode"], attempt["error"]) == (None, targets.REFUSED)


async def test_loopback_is_refused_at_delivery_when_private_targets_are_off(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    make_worker: Callable[..., Worker],
    clock: Clock,
    open_port: int,
) -> None:
    hook = await add_endpoint(client, auth, f"http://127.0.0.1:{open_port}/", "customer.created")
    worker = make_worker(clock, webhook_allow_private=False)
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 1
    [attempt] = await deliveries(client, auth, hook["id"])
    assert attempt["error"] == targets.REFUSED


async def test_a_legacy_url_the_client_cannot_even_parse_is_a_failed_attempt(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, worker: Worker
) -> None:
    hook = await add_endpoint(client, auth, "https://hooks.example.com/", "customer.created")
    store_endpoint(runtime, hook["id"], "https://hooks.example.com:99999/")
    await send(client, auth)
    assert await asyncio.wait_for(worker.run_once(), BOUND) == 1
    [attempt] = await deliveries(client, auth, hook["id"])
    assert (attempt["statusCode"], attempt["error"]) == (None, NO_ANSWER)

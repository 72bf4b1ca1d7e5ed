"""``kudos worker`` as separate processes on PostgreSQL (issue 4, items 7 and 8).

A worker killed mid-delivery leaves its claim to lapse and another worker delivers the
message; several workers claiming side by side never send the same attempt twice; SIGTERM
lets the attempt in flight finish and be recorded before the process exits; SQLite refuses
``kudos worker``. The receiver is a real local HTTP server; retry timing is an injected clock.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime, build_worker
from kudos.config import Settings
from kudos.domain.model import epoch
from kudos.storage.writer import NoHooks, Writer, build_writer
from kudos.webhooks import signing
from kudos.webhooks.policy import PREFETCH
from kudos.webhooks.worker import Worker
from tests.conftest import kudos_command, server_env
from tests.webhooks.conftest import (
    Clock,
    Delivery,
    Receiver,
    add_endpoint,
    deliveries,
    messages,
    send,
)

TIMEOUT = 5.0  # KUDOS_WEBHOOK_TIMEOUT_SECONDS of the workers below
# A claim holds the message this long (the delivery policy's lease for this timeout).
LEASE = Settings(webhook_timeout_seconds=TIMEOUT).webhook_policy().lease


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("`kudos worker` processes need PostgreSQL")
    return database_url


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """``kudos worker --db URL`` in a subprocess; whatever is still running is killed."""
    started: list[subprocess.Popen[bytes]] = []

    def start(database_url: str) -> subprocess.Popen[bytes]:
        env = {
            **server_env(),
            "KUDOS_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT),
            "KUDOS_WEBHOOK_POLL_SECONDS": "0.1",
        }
        with (tmp_path / "worker.log").open("ab") as log:
            process = subprocess.Popen(
                kudos_command("worker", "--db", database_url),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def worker_log(tmp_path: Path) -> str:
    path = tmp_path / "worker.log"
    return path.read_text() if path.exists() else ""


async def held_delivery(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    process: subprocess.Popen[bytes],
) -> tuple[dict[str, Any], threading.Event, subprocess.Popen[bytes], Delivery]:
    """An endpoint with one message, which the worker ``process`` is delivering right now:
    the receiver holds the request open until the returned event is set."""
    endpoint = await add_endpoint(client, auth, receiver.url("/hook"), "customer.created")
    release = receiver.hold("/hook")
    await send(client, auth, "cust-1")
    (held,) = receiver.wait_for(1, "/hook", timeout=30)
    return endpoint, release, process, held


async def test_a_worker_killed_mid_delivery_leaves_the_message_to_another(
    postgres_url: str,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    clock: Clock,
    make_worker: Callable[..., Worker],
    start_worker: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    endpoint, release, process, first = await held_delivery(
        client, auth, receiver, start_worker(postgres_url)
    )
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=15) == -signal.SIGKILL, worker_log(tmp_path)
    release.set()  # the dead worker's request is answered to no one

    (pending,) = await messages(client, auth, endpoint["id"])
    assert (pending["messageId"], pending["state"], pending["attempts"]) == (
        first.headers["webhook-id"],
        "pending",
        1,
    )
    claimed_at = int(first.headers["webhook-timestamp"])
    assert claimed_at + LEASE - 1 <= epoch(pending["nextAttemptAt"]) <= claimed_at + LEASE + 1

    another = make_worker(clock, webhook_timeout_seconds=TIMEOUT)
    clock.advance(claimed_at + LEASE - 2 - clock())
    assert await another.run_once() == 0  # the killed worker's claim still holds
    clock.advance(4)
    assert await another.run_once() == 1  # its lease ended: the message is claimed again

    second = receiver.wait_for(2, "/hook")[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    signing.verify(endpoint["secret"], second.headers, second.body, now=clock())
    assert second.json()["type"] == "customer.created"
    (delivered,) = await messages(client, auth, endpoint["id"])
    assert (delivered["state"], delivered["attempts"]) == ("delivered", 2)
    log = await deliveries(client, auth, endpoint["id"])
    assert [(d["attempt"], d["statusCode"]) for d in log] == [(2, 200)]


CUSTOMERS = 20  # each makes three messages: customer.created and two event.received


async def test_several_workers_never_send_the_same_attempt_twice(
    postgres_url: str,
    runtime: Runtime,
    settings: Settings,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    clock: Clock,
) -> None:
    endpoint = await add_endpoint(
        client, auth, receiver.url("/hook"), "customer.created", "event.received"
    )
    for n in range(CUSTOMERS):
        await send(client, auth, f"cust-{n}")
    staged = await messages(client, auth, endpoint["id"])
    assert len(staged) == 3 * CUSTOMERS
    clock.advance(time.time() + 1 - clock())  # everything staged is due

    writers: list[Writer] = []
    clients: list[httpx.AsyncClient] = []
    workers: list[Worker] = []
    for _ in range(3):  # three workers, each on its own connection, as three processes are
        writer = build_writer(
            runtime.db,
            NoHooks(),
            max_batch=settings.writer_max_batch,
            max_queue=settings.writer_max_queue,
        )
        writer.start()
        writers.append(writer)
        clients.append(httpx.AsyncClient())
        workers.append(
            build_worker(settings, writer, runtime.context.keyring, client=clients[-1], clock=clock)
        )
    try:
        claimed = 0
        first: list[int] | None = None
        for _ in range(3 * CUSTOMERS):  # at least one claim per round: a bound, not a wait
            rounds = await asyncio.gather(*(worker.run_once() for worker in workers))
            first = first or rounds
            claimed += sum(rounds)
            if claimed >= 3 * CUSTOMERS:
                break
        leftover = await asyncio.gather(*(worker.run_once() for worker in workers))
    finally:
        for http in clients:
            await http.aclose()
        for writer in writers:
            await writer.stop()

    sent = Counter(d.headers["webhook-id"] for d in receiver.got("/hook"))
    assert sent == Counter({m["messageId"]: 1 for m in staged})
    assert (claimed, sum(leftover)) == (3 * CUSTOMERS, 0)
    # The workers share the work: each locks different messages (SKIP LOCKED), so the first
    # round already has more than one of them claiming, each at most its share per endpoint.
    most = settings.webhook_concurrency_per_endpoint * PREFETCH
    assert first is not None and sum(1 for n in first if n) >= 2
    assert max(first) <= most
    after = await messages(client, auth, endpoint["id"])
    assert {(m["state"], m["attempts"]) for m in after} == {("delivered", 1)}
    log = await deliveries(client, auth, endpoint["id"])
    assert sorted(d["messageId"] for d in log) == sorted(sent)


async def test_sigterm_lets_the_attempt_in_flight_finish_and_be_recorded(
    postgres_url: str,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    endpoint, release, process, held = await held_delivery(
        client, auth, receiver, start_worker(postgres_url)
    )
    process.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):  # it waits for the attempt it started
        process.wait(timeout=1)
    release.set()
    assert process.wait(timeout=15) == 0, worker_log(tmp_path)
    assert "Traceback" not in worker_log(tmp_path)

    (message,) = await messages(client, auth, endpoint["id"])
    assert (message["messageId"], message["state"], message["attempts"]) == (
        held.headers["webhook-id"],
        "delivered",
        1,
    )
    log = await deliveries(client, auth, endpoint["id"])
    assert [(d["messageId"], d["attempt"], d["statusCode"]) for d in log] == [
        (held.headers["webhook-id"], 1, 200)
    ]
    assert len(receiver.got("/hook")) == 1


def test_kudos_worker_refuses_sqlite(tmp_path: Path) -> None:
    done = subprocess.run(
        kudos_command("worker", "--db", f"sqlite:///{tmp_path}/kudos.db"),
        env=server_env(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert b"`kudos worker` is for PostgreSQL" in done.stderr


async def test_sigterm_returns_within_about_the_timeout_while_receivers_trickle(
    postgres_url: str,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    receiver: Receiver,
    start_worker: Callable[[str], subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """A receiver that answers a byte at a time for ever cannot keep a worker from stopping:
    its attempts end at the timeout and are recorded, the messages not yet started are
    given back (due at once, their attempt uncounted)."""
    endpoint = await add_endpoint(
        client, auth, receiver.url("/slow"), "customer.created", "event.received"
    )
    receiver.trickle("/slow")
    for n in range(4):
        await send(client, auth, f"cust-{n}")
    process = start_worker(postgres_url)
    receiver.wait_for(1, "/slow", timeout=30)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT + 10) == 0, worker_log(tmp_path)
    assert "Traceback" not in worker_log(tmp_path)
    staged = await messages(client, auth, endpoint["id"])
    assert len(staged) == 12
    assert all(m["attempts"] == (m["state"] == "delivered") for m in staged)

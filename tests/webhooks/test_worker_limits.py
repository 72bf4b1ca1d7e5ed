"""The worker under slow receivers (issue 8): leases never end under a running attempt,
stopping gives back what has not started, and one account's slow endpoints do not keep
another account's deliveries waiting."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.domain.model import epoch
from kudos.services import accounts
from kudos.webhooks.policy import PREFETCH
from kudos.webhooks.worker import Worker
from tests.webhooks.conftest import (
    Clock,
    add_endpoint,
    deliveries,
    messages,
    mock_client,
    send,
)

BOUND = 20.0  # seconds a test waits for what must end far sooner (instead of hanging)
SERIAL = {  # one attempt at a time: a claim of 8 messages waits for 7 attempts
    "webhook_concurrency": 1,
    "webhook_concurrency_per_endpoint": 1,
    "webhook_concurrency_per_account": 1,
}


def ok() -> httpx.Response:
    return httpx.Response(204)


async def test_an_attempt_never_starts_when_its_lease_would_end_before_it_is_recorded(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    make_worker: Callable[..., Worker],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each attempt of the first worker takes 25 s on the injected clock (a slow receiver and
    a busy store); a second worker claims whatever is due meanwhile. The first worker's
    lease (9 timeouts + 30 s = 120 s) covers four attempts with their margin: it gives the
    rest back instead of sending them late, and no message is sent or recorded twice."""
    sent: Counter[str] = Counter()

    async def second_round(request: httpx.Request) -> httpx.Response:
        sent[request.headers["webhook-id"]] += 1
        return ok()

    other = make_worker(clock, client=mock_client(second_round), **SERIAL)

    async def slow(request: httpx.Request) -> httpx.Response:
        sent[request.headers["webhook-id"]] += 1
        clock.advance(25)
        await other.run_once()  # the other worker looks for due messages meanwhile
        return ok()

    first = make_worker(clock, client=mock_client(slow), webhook_timeout_seconds=10, **SERIAL)
    caplog.set_level("WARNING", logger="kudos.webhooks")
    hook = await add_endpoint(client, auth, "https://hooks.example.com/", "customer.created")
    for n in range(8):
        await send(client, auth, f"c{n}")
    assert await asyncio.wait_for(first.run_once(), BOUND) == 4
    assert await asyncio.wait_for(other.run_once(), BOUND) == 4  # the four given back

    staged = await messages(client, auth, hook["id"])
    assert sent == Counter({m["messageId"]: 1 for m in staged})
    assert {(m["state"], m["attempts"]) for m in staged} == {("delivered", 1)}
    log = await deliveries(client, auth, hook["id"])
    assert sorted((d["messageId"], d["attempt"]) for d in log) == sorted(
        (m["messageId"], 1) for m in staged
    )
    assert "outlived its lease" not in caplog.text


async def test_stop_gives_back_what_has_not_started_and_ends_the_attempt_in_flight(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    arrived = asyncio.Event()

    async def hanging(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    worker = make_worker(
        clock,
        client=mock_client(hanging),
        webhook_timeout_seconds=0.5,
        webhook_poll_seconds=0.05,
        **SERIAL,
    )
    hook = await add_endpoint(client, auth, "https://hooks.example.com/", "customer.created")
    for n in range(4):
        await send(client, auth, f"c{n}")
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(arrived.wait(), BOUND)
    worker.stop()
    await asyncio.wait_for(running, BOUND)

    staged = await messages(client, auth, hook["id"])
    attempted = [m for m in staged if m["attempts"]]
    [tried] = attempted
    assert (tried["state"], tried["lastError"]) == ("pending", "timed out after 0.5 s")
    given_back = [m for m in staged if not m["attempts"]]
    assert len(given_back) == 3
    due_now = clock() + 0.001  # stored to the microsecond
    assert all(m["state"] == "pending" and epoch(m["nextAttemptAt"]) <= due_now for m in given_back)
    assert len(await deliveries(client, auth, hook["id"])) == 1


async def test_one_accounts_slow_endpoints_do_not_hold_another_accounts_delivery(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    runtime: Runtime,
    make_worker: Callable[..., Worker],
    clock: Clock,
) -> None:
    """Account A has six endpoints that hang, four messages each; account B has one healthy
    endpoint. B's message goes out while A's attempts hang, and A's claims stay within its
    share."""
    release, b_arrived = asyncio.Event(), asyncio.Event()
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()

    async def receiver(request: httpx.Request) -> httpx.Response:
        if request.url.host == "b.example.com":
            b_arrived.set()
            return ok()
        in_flight["a"] += 1
        most["a"] = max(most["a"], in_flight["a"])
        await release.wait()
        in_flight["a"] -= 1
        return ok()

    worker = make_worker(
        clock,
        client=mock_client(receiver),
        webhook_timeout_seconds=60,
        webhook_poll_seconds=0.05,
        webhook_concurrency=4,
        webhook_concurrency_per_endpoint=2,
        webhook_concurrency_per_account=2,
    )
    keyring = runtime.context.keyring
    other = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "b"))
    b_auth = {"apikey": other.api_key, "secretkey": other.secret_key}
    a_hooks = [
        await add_endpoint(client, auth, f"https://a.example.com/{n}", "customer.created")
        for n in range(6)
    ]
    await add_endpoint(client, b_auth, "https://b.example.com/", "customer.created")
    for n in range(4):
        await send(client, auth, f"a{n}")  # A's 24 messages, queued first
    await send(client, b_auth, "b0")
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(b_arrived.wait(), BOUND)
        assert in_flight["a"] == most["a"] == 2  # A's share, still hanging
        claimed = [
            m for h in a_hooks for m in await messages(client, auth, h["id"]) if m["attempts"]
        ]
        assert len(claimed) == 2 * PREFETCH  # A's share of a claim, the rest left to others
    finally:
        release.set()
        worker.stop()
        await asyncio.wait_for(running, BOUND)


async def test_claims_take_one_endpoint_of_each_account_before_a_second_of_any(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, clock: Clock
) -> None:
    """Account A has ten endpoints with due messages, account B one: however few endpoints a
    claim can serve, B's is among them (endpoints used to be picked at random)."""
    from kudos.domain.model import iso_at
    from kudos.storage import webhooks as webhook_rows

    keyring = runtime.context.keyring
    other = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "b"))
    b_auth = {"apikey": other.api_key, "secretkey": other.secret_key}
    for n in range(10):
        await add_endpoint(client, auth, f"https://a.example.com/{n}", "customer.created")
    b_hook = await add_endpoint(client, b_auth, "https://b.example.com/", "customer.created")
    await send(client, auth, "a0")
    await send(client, b_auth, "b0")
    now = iso_at(clock())
    b_id = run_in_transaction(runtime.db, lambda tx: accounts.named(tx, "b").id)

    def due(busy_accounts: list[int]) -> list[tuple[int, int]]:
        return run_in_transaction(
            runtime.db,
            lambda tx: webhook_rows.due_endpoints(
                tx, now, limit=2, busy=[], busy_accounts=busy_accounts
            ),
        )

    for _ in range(20):
        picked = due([])
        assert len(picked) == 2 and (b_hook["id"], b_id) in picked
    assert len({endpoint for _ in range(20) for endpoint, _ in due([])}) > 2  # A's vary
    assert all(account != b_id for _, account in due([b_id]))

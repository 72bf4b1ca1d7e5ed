"""Never overdraw across processes: ``kudos serve --workers 2`` on PostgreSQL, redeems racing
for one customer's points from both processes (the customer's lock keys serialize them), and
two writers on one store spending through two customerIds of one merged profile."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from kudos import errors
from kudos.bootstrap import Runtime
from kudos.config import Settings
from kudos.services.burn import redeem
from kudos.services.burn.work import body_hash
from kudos.services.security import KeyPair
from kudos.storage import rewards as reward_rows
from tests.burn.conftest import (
    PROGRAM,
    V4,
    assert_ledger_holds,
    burn_program,
    call,
    shop_credentials,
)
from tests.conftest import (
    LiveServer,
    configure_account,
    kudos_command,
    server_env,
    start_server,
    stop_server,
)
from tests.e2e.test_workers import worker_processes

RACERS = 50


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    if database_url.startswith("sqlite"):
        pytest.skip("--workers > 1 needs PostgreSQL")
    server = start_server(database_url, tmp_path / "server.log", workers=2)
    try:
        subprocess.run(
            kudos_command(
                "accounts",
                "set",
                "live",
                "--rate-limit",
                "off",
                "--channel-merging",
                "email",
                "--db",
                database_url,
            ),
            env=server_env(),
            check=True,
            capture_output=True,
        )
        yield server
    finally:
        stop_server(server)


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(V4 + path, json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def outcomes(responses: list[httpx.Response]) -> Counter[Any]:
    return Counter(200 if r.status_code == 200 else r.json()["code"] for r in responses)


def ledger_total(client: httpx.Client, customer: str) -> tuple[int, int]:
    """The signed sum of the customer's active ledger entries, and the newest balance after."""
    page = client.get(f"{V4}/transactions", params={"customerId": customer, "limit": 200}).json()
    assert not page["hasMore"]
    active = [e for e in page["transactions"] if e["status"] == "Active"]
    signed = sum(e["points"] if e["direction"] == "+" else -e["points"] for e in active)
    return signed, active[0]["pointsBalanceAfter"]


def test_two_processes_never_overdraw(two_workers: LiveServer) -> None:
    server = two_workers
    assert len(worker_processes(server)) == 2
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(
        base_url=server.url, headers=server.headers(), timeout=30, limits=limits
    ) as client:
        assert client.put(PROGRAM, json=burn_program()).status_code == 200
        manual = {"username": "u", "reason": "seed"}
        post(
            client,
            "/transactions/manual",
            {"customerId": "c1", "transactionId": "s1", "points": 130, **manual},
        )
        hold = post(client, "/transactions/hold", {"customerId": "c1", "pointsToHold": 30})
        # Two customerIds of one profile (channel merging by email), 100 points between them.
        post(
            client,
            "/transactions/manual",
            {"customerId": "la", "email": "l@x.io", "transactionId": "s2", "points": 100, **manual},
        )
        event = {"customerId": "lb", "email": "l@x.io", "events": {"visit": {}}}
        assert client.post(f"{V4}/events", json=event).status_code == 200

        calls = [
            (
                "/transactions/redeem",
                {
                    "customerId": "c1",
                    "transactionId": f"h{n}",
                    "holdReference": hold["holdReference"],
                },
            )
            for n in range(RACERS)
        ]
        calls += [
            ("/transactions/redeem", {"customerId": "c1", "transactionId": f"p{n}", "points": 10})
            for n in range(RACERS)
        ]
        calls += [
            (
                "/transactions/redeem",
                {"customerId": "la" if n % 2 else "lb", "transactionId": f"l{n}", "points": 10},
            )
            for n in range(RACERS)
        ]
        with ThreadPoolExecutor(max_workers=32) as pool:
            got = list(pool.map(lambda call: client.post(V4 + call[0], json=call[1]), calls))

        assert outcomes(got[:RACERS]) == {200: 1, 9009: RACERS - 1}
        assert outcomes(got[RACERS : 2 * RACERS]) == {200: 10, 9008: RACERS - 10}
        assert outcomes(got[2 * RACERS :]) == {200: 10, 9008: RACERS - 10}
        for customer in ("c1", "la", "lb"):
            found = client.get(f"{V4}/customers/{customer}/balance").json()
            assert (found["totalPointsBalance"], found["heldPoints"]) == (0, 0), customer
            assert ledger_total(client, customer) == (0, 0), customer


async def test_two_writers_spending_through_two_linked_customer_ids_never_overdraw(
    client: httpx.AsyncClient,
    shop: dict[str, str],
    runtime: Runtime,
    settings: Settings,
    keys: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runtimes on one PostgreSQL store are two processes' writers. Each spends through
    its own customerId of one merged profile; reading the credits is slowed down so that
    their transactions overlap, as they would under load."""
    if settings.database_url.startswith("sqlite"):
        pytest.skip("one writer per SQLite store")
    configure_account(runtime, channel_merging="email", rate_limit="off")
    seed = {"customerId": "la", "email": "l@x.io", "transactionId": "s", "points": 40}
    await call(
        client, shop, "POST", "/transactions/manual", {**seed, "username": "u", "reason": "r"}
    )
    event = {"customerId": "lb", "email": "l@x.io", "events": {"visit": {}}}
    assert (await client.post(f"{V4}/events", json=event, headers=shop)).status_code == 200
    read = reward_rows.consumable_credits

    def slowly(*args: Any) -> Any:
        found = read(*args)
        time.sleep(0.005)
        return found

    monkeypatch.setattr(reward_rows, "consumable_credits", slowly)
    other = Runtime.build(settings)
    other.start(migrate=False, ensure_default_account=False)

    async def spend(n: int) -> int:
        writer, customer = (runtime, "la") if n % 2 else (other, "lb")
        work = redeem.Redeem(
            context=writer.context,
            credentials=shop_credentials(keys),
            customer_id=customer,
            request_hash=body_hash({"n": n}),
            transaction_id=f"t{n}",
            points=1,
        )
        try:
            await writer.writer.submit(work)
        except errors.KudosError as exc:
            return exc.code
        return 200

    try:
        got = Counter(await asyncio.gather(*(spend(n) for n in range(100))))
    finally:
        await other.stop()
    assert got == {200: 40, 9008: 60}
    found = await assert_ledger_holds(client, shop, "lb")
    assert found["totalPointsBalance"] == 0

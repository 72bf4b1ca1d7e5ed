"""Helpers of the burn side's tests: a program with redemption and cashback, and calls."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.domain.model import Credentials
from kudos.services.security import KeyPair
from tests.conftest import configure_account

V4 = "/api/v4.0/integrations"
PROGRAM = "/api/kudos/v1/program"


def burn_program(**overrides: Any) -> dict[str, Any]:
    """A point is worth 0.1; 1 point per 1 paid (Gold: 2); holds last 10 minutes."""
    program: dict[str, Any] = {
        "currency": "USD",
        "redemption": {"pointValue": 0.1, "minPoints": 0, "holdMinutes": 10},
        "cashback": {"points": 1, "every": 1, "byTier": {"Gold": {"points": 2, "every": 1}}},
        "tiers": [{"order": 1, "name": "Gold", "minProgress": 100000}],
        "campaigns": [
            {
                "id": "first-order",
                "name": "First order",
                "trigger": {"rules": [{"event": "place_order"}]},
                "reward": {"points": 50},
            }
        ],
    }
    program.update(overrides)
    return program


async def apply_program(
    client: httpx.AsyncClient, auth: dict[str, str], program: dict[str, Any]
) -> None:
    response = await client.put(PROGRAM, json=program, headers=auth)
    assert response.status_code == 200, response.text


async def call(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> dict[str, Any]:
    response = await client.request(method, V4 + path, json=body, headers=auth)
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()
    return found


async def grant(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str, points: int, txn: str
) -> None:
    """Give a customer points by hand (a manual transaction)."""
    body = {
        "customerId": customer,
        "transactionId": txn,
        "points": points,
        "username": "tester",
        "reason": "seed",
    }
    await call(client, auth, "POST", "/transactions/manual", body)


async def balance(client: httpx.AsyncClient, auth: dict[str, str], customer: str) -> dict[str, Any]:
    return await call(client, auth, "GET", f"/customers/{customer}/balance")


@pytest.fixture
async def shop(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, str]:
    """The "shop" account with the burn program applied; its headers."""
    await apply_program(client, auth, burn_program())
    return auth


# --- added for the rules, concurrency, pending, refund, adversarial and merge tests -------


def no_rate_limit(runtime: Runtime) -> None:
    """The "shop" account without a rate limit (tests that fire many requests at once)."""
    configure_account(runtime, rate_limit="off")


async def ledger(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str, **filters: str
) -> list[dict[str, Any]]:
    """Every ledger entry of a customer through ``GET /transactions``, newest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"customerId": customer, "limit": 200, **filters}
    while True:
        response = await client.get(f"{V4}/transactions", params=params, headers=auth)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["transactions"])
        if not page["hasMore"]:
            return found
        params["startAfter"] = page["transactions"][-1]["transactionId"]


async def assert_ledger_holds(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str, *, chained: bool = True
) -> dict[str, Any]:
    """The ledger explains the balance: the newest entry's balance after is the balance,
    the active entries' signed points add up to it, each entry moves its own points and
    (``chained``: not across a merge, where two profiles' entries interleave) starts where
    the one before it ended. Returns the balance."""
    found = await balance(client, auth, customer)
    entries = await ledger(client, auth, customer)
    active = [e for e in entries if e["status"] == "Active"]
    signed = sum(e["points"] if e["direction"] == "+" else -e["points"] for e in active)
    assert signed == found["totalPointsBalance"], entries
    if active:
        assert active[0]["pointsBalanceAfter"] == found["totalPointsBalance"], entries
    for entry in active:
        change = entry["points"] if entry["direction"] == "+" else -entry["points"]
        assert entry["pointsBalanceAfter"] - entry["pointsBalanceBefore"] == change, entry
    for newer, older in itertools.pairwise(active if chained else []):
        assert newer["pointsBalanceBefore"] == older["pointsBalanceAfter"], (newer, older)
    return found


async def holds_rows(runtime: Runtime) -> list[tuple[Any, ...]]:
    """Every hold in the store: ``(reference, points, state, used_by)``."""
    rows = await runtime.reader.run(
        lambda tx: tx.all("SELECT reference, points, state, used_by FROM holds ORDER BY reference")
    )
    return [tuple(row) for row in rows]


async def snapshot(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, customer: str
) -> tuple[Any, ...]:
    """What a refused request must leave as it was: balance, ledger, holds, shop ids, and
    how many profiles, events, order claims, webhook messages and history rows there are."""

    def stored(tx: Any) -> tuple[Any, ...]:
        shop_ids = tx.all("SELECT family, id FROM shop_transactions ORDER BY 1, 2")
        counts = [
            tx.one(f"SELECT count(*) FROM {table}")[0]
            for table in ("profiles", "events", "order_claims", "webhook_messages", "history")
        ]
        return [tuple(row) for row in shop_ids], counts

    return (
        await balance(client, auth, customer),
        await ledger(client, auth, customer),
        await holds_rows(runtime),
        await runtime.reader.run(stored),
    )


def shop_credentials(keys: KeyPair) -> Credentials:
    return Credentials(keys.api_key, keys.secret_key)


def moment(*, minutes: float = 0, days: float = 0) -> str:
    """Now moved by ``minutes`` and ``days``, in the stored time format."""
    when = datetime.now(UTC) + timedelta(minutes=minutes, days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def outbox_topics(runtime: Runtime) -> list[str]:
    """The topics of the webhook messages staged so far, oldest first."""
    rows = await runtime.reader.run(
        lambda tx: tx.all("SELECT topic FROM webhook_messages ORDER BY id")
    )
    return [row[0] for row in rows]

"""Helpers of the burn side's tests: a program with redemption and cashback, and calls."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

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

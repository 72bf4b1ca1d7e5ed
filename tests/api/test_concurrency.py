"""Concurrent requests: one profile per new customer, every event stored, order kept."""

from __future__ import annotations

import asyncio

import httpx

EVENTS = "/api/v4.0/integrations/events"


async def test_fifty_simultaneous_requests_for_a_new_customer_make_one_profile(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async def post(n: int) -> httpx.Response:
        body = {"customerId": "rush", "events": {"tap": {"seq": n}}}
        return await client.post(EVENTS, json=body, headers=auth)

    responses = await asyncio.gather(*(post(n) for n in range(50)))
    assert [r.status_code for r in responses] == [200] * 50

    page = await client.get(
        "/api/v4.0/integrations/customers/rush/events", params={"limit": 1000}, headers=auth
    )
    events = page.json()["events"]
    assert sorted(e["metadata"]["seq"] for e in events) == list(range(50))
    # Requests are applied in the order they arrived: newest first means seq descending.
    assert [e["metadata"]["seq"] for e in events] == list(range(49, -1, -1))
    profile = await client.get("/api/v4.0/integrations/customers/rush", headers=auth)
    assert profile.json()["linkedCustomerIds"] == ["rush"]

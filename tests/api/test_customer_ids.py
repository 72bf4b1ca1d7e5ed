"""customerIds and URLs: every customerId kudos stores is reachable through every
``/customers/{customerId}…`` route; those a URL path cannot carry are refused where they
would be created."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from kudos.bootstrap import Runtime
from tests.api.test_body_rules import table_counts

V4 = "/api/v4.0/integrations"
MANAGEMENT = "/api/kudos/v1"
LEGAL = [
    "with space",
    "  padded  ",
    "100%",
    "%2F-looking",
    "what?",
    "hash#tag",
    "back\\slash",
    "Zoë 李 🎉",
    "semi;colon+plus&amp=",
    "...",
    ".hidden",
]
UNROUTABLE = ["/", "a/b", "/leading", ".", ".."]


async def send(client: httpx.AsyncClient, auth: dict[str, str], customer_id: str) -> None:
    body = {"customerId": customer_id, "events": {"place_order": {"amount": 10}}}
    response = await client.post(f"{V4}/events", json=body, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("customer_id", LEGAL)
async def test_a_customer_created_by_send_events_is_reachable_through_every_route(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str
) -> None:
    await send(client, auth, customer_id)
    segment = quote(customer_id, safe="")
    base = f"{V4}/customers/{segment}"
    for path in (
        base,
        f"{base}/events",
        f"{base}/balance",
        f"{base}/tier-progress",
        f"{base}/reward-campaigns-progress",
        f"{base}/activities",
    ):
        response = await client.get(path, headers=auth)
        assert response.status_code == 200, f"{path}: {response.text}"
    profile = (await client.get(base, headers=auth)).json()
    assert profile["customerId"] == customer_id
    (event,) = (await client.get(f"{base}/events", headers=auth)).json()["events"]
    assert event["customerId"] == customer_id
    credited = await client.post(
        f"{MANAGEMENT}/customers/{segment}/points",
        json={"points": 5, "reason": "reachable"},
        headers=auth,
    )
    assert (credited.status_code, credited.json()["customerId"]) == (200, customer_id)
    ledger = await client.get(
        f"{V4}/transactions", params={"customerId": customer_id}, headers=auth
    )
    assert [entry["points"] for entry in ledger.json()["transactions"]] == [5]


@pytest.mark.parametrize("customer_id", UNROUTABLE)
@pytest.mark.parametrize(
    ("path", "field", "code"),
    [
        (f"{V4}/events", "customerId", 3003),
        ("/api/v4.1/integrations/events", "customerId", 3003),
        ("/api/v3.0/integrations/event", "playerUniqueId", 7),
        ("/api/v2.0/integrations/event", "playerUniqueId", 7),
        (f"{V4}/customers", "customerId", 3003),
    ],
)
async def test_a_customer_id_no_url_can_carry_is_refused_where_it_would_be_created(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    customer_id: str,
    path: str,
    field: str,
    code: int,
) -> None:
    before = table_counts(runtime)
    body = {field: customer_id, "events": {"a": {}}}
    response = await client.post(path, json=body, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, code), response.text
    assert "no URL path" in response.json()["message"]
    assert table_counts(runtime) == before

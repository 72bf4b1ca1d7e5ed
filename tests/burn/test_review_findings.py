"""Found in a review of the burn side: each test failed before its fix."""

from __future__ import annotations

from typing import Any

import httpx

from tests.burn.conftest import V4, apply_program, balance, burn_program, call, grant

EVERY_ORDER = {
    "id": "every-order",
    "name": "Every order",
    "trigger": {"rules": [{"event": "place_order"}]},
    "repeat": {"maxAchievements": -1},
    "reward": {"points": 50},
}


async def test_a_cashback_sent_with_a_redeem_s_body_and_id_is_9004_not_a_500(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    """The replay check compares only the body's hash, not the route: a redeem and a cashback
    take the same keys, so a cashback with the redeem's id and body is taken for a replay and
    answered with the redeem's answer, which the cashback's response model cannot carry."""
    await grant(client, shop, "c1", 1000, "seed")
    body = {"customerId": "c1", "transactionId": "t1", "amount": 10}
    await call(client, shop, "POST", "/transactions/redeem", body)
    response = await client.post(f"{V4}/transactions/cashback", json=body, headers=shop)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == 9004


async def test_an_order_s_extra_order_id_does_not_let_its_place_order_campaigns_run_twice(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """POST /orders copies ``extra`` into the event; the claim reads ``orderId`` before
    ``order_id``, so the order claims the extra's id, and the shop's own place_order event for
    the real order id is rewarded again."""
    await apply_program(client, auth, burn_program(campaigns=[EVERY_ORDER]))
    order = {"customerId": "c1", "orderId": "o1", "totalPaid": 10, "extra": {"orderId": "web-1"}}
    await call(client, auth, "POST", "/orders", order)
    before = await balance(client, auth, "c1")
    assert before["totalPointsBalance"] == 60  # 10 cashback + 50 campaign
    sent = {"customerId": "c1", "events": {"place_order": {"order_id": "o1"}}}
    response = await client.post("/api/v4.0/integrations/events", json=sent, headers=auth)
    assert response.status_code == 200, response.text
    after = await balance(client, auth, "c1")
    assert after["totalPointsBalance"] == 60  # once per order id: got 110


async def test_an_order_s_line_item_lists_are_bounded_in_its_event(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    """500 lines of 50 distinct tags, categories and collections (825 KB, under the 1 MiB
    limit) made a place_order event of 75,000 list items, gathered in quadratic time (15 s of
    the single writer). Each list now keeps its first 100 distinct values, in order."""
    lines: list[dict[str, Any]] = [
        {
            "productId": f"p{i}",
            "tags": [f"t{i}_{j}" for j in range(50)],
            "category": [f"c{i}_{j}" for j in range(50)],
            "collection": [f"k{i}_{j}" for j in range(50)],
        }
        for i in range(500)
    ]
    body = {"customerId": "c1", "orderId": "o1", "totalPaid": 10, "lineItems": lines}
    await call(client, shop, "POST", "/orders", body)
    events = await call(client, shop, "GET", "/customers/c1/events")
    metadata = events["events"][0]["metadata"]
    assert metadata["tag"] == [f"t{i}_{j}" for i in range(2) for j in range(50)]
    assert metadata["category"][-1] == "c1_49"
    assert metadata["product_id"] == [f"p{i}" for i in range(100)]
    assert metadata["quantity"] == 500  # the sum covers every line


async def test_an_idempotency_key_names_one_kind_of_request(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    """A key used by a redeem, sent again on the cashback route with the same body, is
    another request (2002), not a replay of the redeem's answer."""
    await grant(client, shop, "c1", 1000, "seed")
    headers = {**shop, "Idempotency-Key": "k-1"}
    body = {"customerId": "c1", "transactionId": "t1", "amount": 10}
    first = await client.post(f"{V4}/transactions/redeem", json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await client.post(f"{V4}/transactions/redeem", json=body, headers=headers)
    assert again.json() == first.json()
    other = await client.post(f"{V4}/transactions/cashback", json=body, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, 2002)
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 900

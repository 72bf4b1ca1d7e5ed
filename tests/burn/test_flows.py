"""The burn side's flows through the v4 routes, on both stores."""

from __future__ import annotations

import httpx

from tests.burn.conftest import balance, call, grant


async def test_hold_then_order_with_the_hold_then_partial_refund(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 1000, "seed-1")
    hold = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "amountToHold": 10}
    )
    assert (hold["holdAmount"], hold["holdEquivalentPoints"]) == (10, 100)
    held = await balance(client, shop, "c1")
    assert (held["totalPointsBalance"], held["availablePointsBalance"]) == (1000, 900)
    order = {
        "customerId": "c1",
        "orderId": "o-1",
        "orderDate": "2026-12-01T10:00:00Z",
        "totalPaid": 90,
        "totalPrice": 100,
        "lineItems": [
            {"productId": "p1", "quantity": 1, "price": 60},
            {"productId": "p2", "quantity": 2, "price": 20},
        ],
        "redemption": {"pointsHoldReference": hold["holdReference"]},
    }
    placed = await call(client, shop, "POST", "/orders", order)
    assert (placed["redeemedPoints"], placed["rewardedPoints"]) == (100, 90)
    assert [line["points"] for line in placed["lineItems"]] == [54, 36]
    after = await balance(client, shop, "c1")
    # 1000 - 100 redeemed + 90 cashback + 50 from the place_order campaign
    assert after["availablePointsBalance"] == 1040
    assert after["totalPointsValue"] == 104
    again = await call(client, shop, "POST", "/orders", order)
    assert again == placed
    refund = {
        "customerId": "c1",
        "refundTransactionId": "r-1",
        "reverseTransactionId": "o-1",
        "refundAmount": 45,
    }
    refunded = await call(client, shop, "POST", "/transactions/refund", refund)
    assert (refunded["pointsClawedBack"], refunded["pointsReturned"]) == (45, 50)
    final = await balance(client, shop, "c1")
    assert final["availablePointsBalance"] == 1040 - 45 + 50
    listed = await call(client, shop, "GET", "/orders/o-1/transactions")
    kinds = [t["transactionType"] for t in listed["transactions"]]
    assert kinds == ["Redemption", "PaymentReward", "Refund", "Cancel"]
    rest = await call(
        client,
        shop,
        "POST",
        "/transactions/refund",
        {"customerId": "c1", "refundTransactionId": "r-2", "reverseTransactionId": "o-1"},
    )
    assert (rest["pointsClawedBack"], rest["pointsReturned"]) == (45, 50)
    more = {"customerId": "c1", "refundTransactionId": "r-3", "reverseTransactionId": "o-1"}
    refused = await call(client, shop, "POST", "/transactions/refund", more, status=422)
    assert refused["code"] == 9001

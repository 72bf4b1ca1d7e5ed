"""Refunds: in proportion to the amount, adding up exactly to a full refund; what an order
earned is clawed back (never below zero), what it redeemed is given back."""

from __future__ import annotations

from typing import Any

import httpx

from tests.burn.conftest import V4, assert_ledger_holds, balance, call, grant, ledger


def refund(
    refund_id: str, reverse: str, amount: Any = None, customer: str = "c1"
) -> dict[str, Any]:
    body = {
        "customerId": customer,
        "refundTransactionId": refund_id,
        "reverseTransactionId": reverse,
    }
    if amount is not None:
        body["refundAmount"] = amount
    return body


async def order_with_hold(
    client: httpx.AsyncClient, auth: dict[str, str], order_id: str, points: int, paid: Any
) -> dict[str, Any]:
    hold = await call(
        client, auth, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": points}
    )
    body = {
        "customerId": "c1",
        "orderId": order_id,
        "totalPaid": paid,
        "redemption": {"pointsHoldReference": hold["holdReference"]},
    }
    return await call(client, auth, "POST", "/orders", body)


async def test_partial_refunds_add_up_exactly_to_a_full_refund(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 10_000, "seed")
    whole = await order_with_hold(client, shop, "whole", 77, 99.99)
    parts = await order_with_hold(client, shop, "parts", 77, 99.99)
    assert whole["rewardedPoints"] == parts["rewardedPoints"] == 99
    full = await call(client, shop, "POST", "/transactions/refund", refund("rf-w", "whole"))
    assert (full["pointsClawedBack"], full["pointsReturned"], full["refundAmount"]) == (
        99,
        77,
        99.99,
    )
    steps = []
    for n, amount in enumerate([33.33, 33.33, 33.33]):
        answer = await call(
            client, shop, "POST", "/transactions/refund", refund(f"rf-{n}", "parts", amount)
        )
        steps.append((answer["pointsClawedBack"], answer["pointsReturned"]))
    assert steps == [(33, 26), (33, 25), (33, 26)]
    assert sum(s[0] for s in steps) == 99 and sum(s[1] for s in steps) == 77
    done = await client.post(
        f"{V4}/transactions/refund", json=refund("rf-9", "parts"), headers=shop
    )
    assert (done.status_code, done.json()["code"]) == (422, 9001)
    found = await assert_ledger_holds(client, shop, "c1")
    # Two orders that were undone in full: the seed and the campaign's 50 are left.
    assert found["totalPointsBalance"] == 10_000 + 50


async def test_refunding_more_than_is_left_is_refused_and_cashback_is_refunded_alike(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    body = {"customerId": "c1", "orderId": "o1", "totalPaid": 100}
    await call(client, shop, "POST", "/orders", body)
    await call(client, shop, "POST", "/transactions/refund", refund("rf-1", "o1", 60))
    before = await ledger(client, shop, "c1")
    too_much = await client.post(
        f"{V4}/transactions/refund", json=refund("rf-2", "o1", 40.000001), headers=shop
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, 3003)
    assert "40" in too_much.json()["message"]
    assert await ledger(client, shop, "c1") == before
    rest = await call(client, shop, "POST", "/transactions/refund", refund("rf-2", "o1", 40))
    assert (rest["pointsClawedBack"], rest["refundAmount"]) == (40, 40)
    assert (await balance(client, shop, "c1"))["totalPointsBalance"] == 50
    # A cashback transaction is refunded the same way.
    paid = {"customerId": "c2", "transactionId": "cb1", "amount": 80}
    await call(client, shop, "POST", "/transactions/cashback", paid)
    answer = await call(
        client, shop, "POST", "/transactions/refund", refund("rf-3", "cb1", 20, customer="c2")
    )
    assert answer["pointsClawedBack"] == 20
    found = await assert_ledger_holds(client, shop, "c2")
    assert (found["totalPointsBalance"], found["totalEarnedPoints"]) == (60, 60)


async def test_a_redeem_refund_gives_the_points_back(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    redeem = {"customerId": "c1", "transactionId": "r1", "points": 100}
    redeemed = await call(client, shop, "POST", "/transactions/redeem", redeem)
    assert redeemed["redeemAmount"] == 10
    part = await call(client, shop, "POST", "/transactions/refund", refund("rf-1", "r1", 2.5))
    assert (part["refundEquivalentPoints"], part["pointsReturned"], part["pointsClawedBack"]) == (
        25,
        25,
        0,
    )
    rest = await call(client, shop, "POST", "/transactions/refund", refund("rf-2", "r1"))
    assert (rest["refundAmount"], rest["pointsReturned"]) == (7.5, 75)
    found = await assert_ledger_holds(client, shop, "c1")
    assert found["availablePointsBalance"] == 100
    entries = await ledger(client, shop, "c1", type="Cancel")
    assert [(e["direction"], e["points"], e["clientTransactionId"]) for e in entries] == [
        ("+", 75, "r1"),
        ("+", 25, "r1"),
    ]
    again = await client.post(f"{V4}/transactions/refund", json=refund("rf-3", "r1"), headers=shop)
    assert again.json()["code"] == 9001


async def test_points_already_spent_are_not_clawed_below_zero(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await call(
        client, shop, "POST", "/orders", {"customerId": "c1", "orderId": "o1", "totalPaid": 100}
    )
    spend = {"customerId": "c1", "transactionId": "r1", "points": 120}
    await call(client, shop, "POST", "/transactions/redeem", spend)  # 150 earned, 120 spent
    answer = await call(client, shop, "POST", "/transactions/refund", refund("rf-1", "o1"))
    assert (answer["pointsClawedBack"], answer["uncollectedPoints"]) == (30, 70)
    assert answer["refundEquivalentPoints"] == 100
    found = await assert_ledger_holds(client, shop, "c1")
    assert (found["totalPointsBalance"], found["availablePointsBalance"]) == (0, 0)
    # Nothing is left to refund, and the balance never went below zero.
    again = await client.post(f"{V4}/transactions/refund", json=refund("rf-2", "o1"), headers=shop)
    assert again.json()["code"] == 9001


async def test_an_order_paid_entirely_with_points_is_refunded_once(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    placed = await order_with_hold(client, shop, "o1", 100, 0)
    assert (placed["redeemedPoints"], placed["rewardedPoints"]) == (100, 0)
    answer = await call(client, shop, "POST", "/transactions/refund", refund("rf-1", "o1"))
    assert (answer["pointsReturned"], answer["refundAmount"]) == (100, 0)
    again = await client.post(f"{V4}/transactions/refund", json=refund("rf-2", "o1"), headers=shop)
    assert again.json()["code"] == 9001
    some = await client.post(
        f"{V4}/transactions/refund", json=refund("rf-3", "o1", 1), headers=shop
    )
    assert some.json()["code"] == 9001
    assert (await assert_ledger_holds(client, shop, "c1"))["totalPointsBalance"] == 150

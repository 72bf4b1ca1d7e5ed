"""Pending points: a return window keeps cashback out of the balance until it ends (the
housekeeping work ``MaturePoints`` with a later ``now``), or until activated."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx

from kudos.bootstrap import Runtime
from kudos.services.burn import earn, orders, refunds
from kudos.services.burn.work import body_hash
from kudos.services.security import KeyPair
from tests.burn.conftest import (
    apply_program,
    assert_ledger_holds,
    balance,
    burn_program,
    call,
    ledger,
    moment,
    shop_credentials,
)

WINDOW = {"points": 1, "every": 1, "returnWindowDays": 14}


def order(order_id: str, total_paid: Any, customer: str = "c1", **more: Any) -> dict[str, Any]:
    return {"customerId": customer, "orderId": order_id, "totalPaid": total_paid, **more}


def shape(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["type"], e["direction"], e["points"], e["status"]) for e in entries]


async def test_order_points_stay_pending_for_the_program_s_return_window(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply_program(client, auth, burn_program(cashback=WINDOW))
    placed = await call(client, auth, "POST", "/orders", order("o1", 100))
    assert (placed["rewardedPoints"], placed["pendingPoints"]) == (100, 100)
    found = await balance(client, auth, "c1")
    # The first-order campaign's 50 are available; the cashback is pending.
    assert (found["totalPointsBalance"], found["availablePointsBalance"]) == (50, 50)
    assert (found["pendingPoints"], found["pendingPointsValue"]) == (100, 10)
    assert found["totalEarnedPoints"] == 50
    refused = await client.post(
        "/api/v4.0/integrations/transactions/redeem",
        json={"customerId": "c1", "transactionId": "r1", "points": 51},
        headers=auth,
    )
    assert refused.json()["code"] == 9008  # pending points are not spendable
    spend = {"customerId": "c1", "transactionId": "r2", "points": 20}
    await call(client, auth, "POST", "/transactions/redeem", spend)
    assert shape(await ledger(client, auth, "c1", status="Pending")) == [
        ("PaymentReward", "+", 100, "Pending")
    ]
    await assert_ledger_holds(client, auth, "c1")
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=13))) == 0
    assert (await balance(client, auth, "c1"))["pendingPoints"] == 100
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=15))) == 1
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=15))) == 0  # once
    found = await assert_ledger_holds(client, auth, "c1")
    assert (found["availablePointsBalance"], found["pendingPoints"]) == (130, 0)
    assert found["totalEarnedPoints"] == 150
    assert await ledger(client, auth, "c1", status="Pending") == []
    # Matured after the redeem, the points end the ledger with this moment's balances.
    newest = (await ledger(client, auth, "c1"))[0]
    assert (newest["type"], newest["points"], newest["pointsBalanceAfter"]) == (
        "PaymentReward",
        100,
        130,
    )


async def test_a_request_s_return_window_wins_over_the_program_s(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply_program(client, auth, burn_program())  # no window of its own
    await call(
        client,
        auth,
        "POST",
        "/orders",
        order("o1", 30, cashbackConfigurations={"returnWindow": 3}),
    )
    cashback = {
        "customerId": "c1",
        "transactionId": "cb1",
        "amount": 20,
        "configurations": {"returnWindow": 7},
    }
    answer = await call(client, auth, "POST", "/transactions/cashback", cashback)
    assert (answer["rewardEquivalentPoints"], answer["pendingPoints"]) == (20, 20)
    immediate = {**cashback, "transactionId": "cb2", "configurations": {"returnWindow": 0}}
    assert (await call(client, auth, "POST", "/transactions/cashback", immediate))[
        "pendingPoints"
    ] == 0
    found = await balance(client, auth, "c1")
    assert (found["availablePointsBalance"], found["pendingPoints"]) == (50 + 20, 50)
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=4))) == 1
    assert (await balance(client, auth, "c1"))["pendingPoints"] == 20
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=8))) == 1
    found = await assert_ledger_holds(client, auth, "c1")
    assert (found["availablePointsBalance"], found["pendingPoints"]) == (120, 0)


async def test_activate_ends_the_window_at_once_and_only_once(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply_program(client, auth, burn_program(cashback=WINDOW))
    await call(client, auth, "POST", "/orders", order("o1", 100))
    activated = await call(client, auth, "PUT", "/transactions/o1/activate")
    assert (activated["pointsActivated"], activated["clientTransactionId"]) == (100, "o1")
    newest = (await ledger(client, auth, "c1"))[0]
    assert activated["gameballTransactionId"] == newest["transactionId"]
    assert (newest["type"], newest["points"], newest["status"]) == ("PaymentReward", 100, "Active")
    found = await balance(client, auth, "c1")
    assert (found["availablePointsBalance"], found["pendingPoints"]) == (150, 0)
    again = await call(client, auth, "PUT", "/transactions/o1/activate")
    assert again["pointsActivated"] == 0
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=15))) == 0
    assert (await assert_ledger_holds(client, auth, "c1"))["totalPointsBalance"] == 150
    unknown = await client.put("/api/v4.0/integrations/transactions/nope/activate", headers=auth)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 9002)


async def test_a_refund_inside_the_window_takes_the_pending_points_first(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply_program(client, auth, burn_program(cashback=WINDOW))
    await call(client, auth, "POST", "/orders", order("o1", 100))
    refund = {
        "customerId": "c1",
        "refundTransactionId": "rf1",
        "reverseTransactionId": "o1",
        "refundAmount": 40,
    }
    answer = await call(client, auth, "POST", "/transactions/refund", refund)
    assert (answer["pointsClawedBack"], answer["uncollectedPoints"]) == (40, 0)
    found = await balance(client, auth, "c1")
    assert (found["totalPointsBalance"], found["pendingPoints"]) == (50, 60)
    await assert_ledger_holds(client, auth, "c1")
    assert shape(await ledger(client, auth, "c1", status="Pending")) == [
        ("Refund", "-", 40, "Pending"),
        ("PaymentReward", "+", 100, "Pending"),
    ]
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=15))) == 1
    found = await assert_ledger_holds(client, auth, "c1")
    assert (found["totalPointsBalance"], found["pendingPoints"]) == (110, 0)
    assert shape(await ledger(client, auth, "c1"))[0] == ("PaymentReward", "+", 60, "Active")
    listed = await call(client, auth, "GET", "/orders/o1/transactions")
    assert [(t["transactionType"], t["equivalentPoints"]) for t in listed["transactions"]] == [
        ("PaymentReward", 60)
    ]
    assert found["totalEarnedPoints"] == 110
    # The rest of the refund, after the window: from the balance.
    rest = {**refund, "refundTransactionId": "rf2", "refundAmount": None}
    answer = await call(client, auth, "POST", "/transactions/refund", rest)
    assert (answer["refundAmount"], answer["pointsClawedBack"]) == (60, 60)
    found = await assert_ledger_holds(client, auth, "c1")
    assert (found["totalPointsBalance"], found["pendingPoints"]) == (50, 0)


async def test_a_full_refund_inside_the_window_leaves_nothing_to_mature(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply_program(client, auth, burn_program(cashback=WINDOW))
    await call(client, auth, "POST", "/orders", order("o1", 100))
    refund = {"customerId": "c1", "refundTransactionId": "rf1", "reverseTransactionId": "o1"}
    answer = await call(client, auth, "POST", "/transactions/refund", refund)
    assert answer["pointsClawedBack"] == 100
    assert (await balance(client, auth, "c1"))["pendingPoints"] == 0
    await runtime.writer.submit(earn.MaturePoints(now=moment(days=15)))
    found = await assert_ledger_holds(client, auth, "c1")
    assert (found["totalPointsBalance"], found["pendingPoints"]) == (50, 0)
    assert found["totalEarnedPoints"] == 50
    activated = await call(client, auth, "PUT", "/transactions/o1/activate")
    assert activated["pointsActivated"] == 0


async def test_a_refund_in_the_batch_of_its_order_takes_the_pending_points(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, keys: KeyPair
) -> None:
    """The order's pending credit is staged for the batch's bulk insert when its refund,
    queued right behind it in the same batch, runs: the refund must still find it."""
    await apply_program(client, auth, burn_program(cashback=WINDOW))
    shared = {"context": runtime.context, "credentials": shop_credentials(keys)}
    placing = orders.PlaceOrder(
        **shared,
        customer_id="c1",
        request_hash=body_hash("order"),
        order=orders.Order("o1", None, Decimal(100), {}, [], {}),
    )
    refunding = refunds.Refund(
        **shared,
        customer_id="c1",
        request_hash=body_hash("refund"),
        refund_id="rf1",
        reverse_id="o1",
        amount=Decimal(40),
    )
    placed, refunded = await asyncio.gather(
        runtime.writer.submit(placing), runtime.writer.submit(refunding)
    )
    assert (placed["pendingPoints"], refunded["pointsClawedBack"]) == (100, 40)
    found = await assert_ledger_holds(client, auth, "c1")
    assert (found["totalPointsBalance"], found["pendingPoints"]) == (50, 60)

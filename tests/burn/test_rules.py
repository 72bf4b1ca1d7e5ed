"""The burn side's rules through the v4 routes: money in and points out exactly, ids once,
the codes of refused requests (which write nothing), the ledger and the webhooks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.webhooks import outbox
from tests.burn.conftest import (
    V4,
    apply_program,
    assert_ledger_holds,
    balance,
    burn_program,
    call,
    grant,
    ledger,
    outbox_topics,
    snapshot,
)
from tests.webhooks.conftest import add_endpoint


def redeem_body(customer: str, txn: str, **how: Any) -> dict[str, Any]:
    return {"customerId": customer, "transactionId": txn, **how}


def order_body(customer: str, order_id: str, total_paid: Any, **more: Any) -> dict[str, Any]:
    return {"customerId": customer, "orderId": order_id, "totalPaid": total_paid, **more}


async def refused(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    *,
    status: int,
    code: int,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.request(
        method, V4 + path, json=body, headers={**auth, **(headers or {})}
    )
    assert (response.status_code, response.json().get("code")) == (status, code), response.text
    found: dict[str, Any] = response.json()
    return found


# --- money in, points out -----------------------------------------------------------------


async def test_a_third_of_a_point_is_never_given_away_and_the_minimum_applies(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    program = burn_program(redemption={"pointValue": 0.3, "minPoints": 0, "holdMinutes": 10})
    await apply_program(client, auth, program)
    await grant(client, auth, "c1", 100, "seed")
    redeemed = await call(
        client, auth, "POST", "/transactions/redeem", redeem_body("c1", "r1", amount=1)
    )
    assert (redeemed["redeemEquivalentPoints"], redeemed["redeemAmount"]) == (3, 0.9)
    hold = await call(
        client, auth, "POST", "/transactions/hold", {"customerId": "c1", "amountToHold": 1}
    )
    assert (hold["holdEquivalentPoints"], hold["holdAmount"]) == (3, 0.9)
    found = await balance(client, auth, "c1")
    assert (found["totalPointsBalance"], found["availablePointsBalance"]) == (97, 94)
    assert found["totalPointsValue"] == pytest.approx(29.1)
    assert found["availablePointsValue"] == pytest.approx(28.2)
    # The program's minimum points apply to holds and redeems.
    program = burn_program(redemption={"pointValue": 0.1, "minPoints": 50, "holdMinutes": 10})
    await apply_program(client, auth, program)
    await grant(client, auth, "c2", 100, "seed-2")
    body = redeem_body("c2", "m-r1", points=49)
    await refused(client, auth, "POST", "/transactions/redeem", body, status=422, code=3003)
    hold = {"customerId": "c2", "amountToHold": 4.99}
    await refused(client, auth, "POST", "/transactions/hold", hold, status=422, code=3003)
    ok = await call(
        client, auth, "POST", "/transactions/redeem", redeem_body("c2", "m-r2", points=50)
    )
    assert ok["redeemAmount"] == 5


async def test_amounts_below_one_point_are_refused_and_write_nothing(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    before = await snapshot(client, shop, runtime, "c1")
    tiny = redeem_body("c1", "r1", amount=0.09)
    answer = await refused(
        client, shop, "POST", "/transactions/redeem", tiny, status=422, code=3003
    )
    assert "at least 1 points" in answer["message"]
    hold = {"customerId": "c1", "amountToHold": 0.000001}
    await refused(client, shop, "POST", "/transactions/hold", hold, status=422, code=3003)
    manual = {**redeem_body("c1", "m1", amount=0.05), "username": "a", "reason": "b"}
    await refused(client, shop, "POST", "/transactions/manual", manual, status=422, code=3003)
    assert await snapshot(client, shop, runtime, "c1") == before
    # The same transactionId is free for a request that is right: at a point value of 0.1,
    # 0.35 buys 3 points, worth 0.3.
    ok = await call(
        client, shop, "POST", "/transactions/redeem", redeem_body("c1", "r1", amount=0.35)
    )
    assert (ok["redeemEquivalentPoints"], ok["redeemAmount"]) == (3, 0.3)
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 97


async def test_a_billion_paid_earns_at_most_a_billion_points(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply_program(client, auth, burn_program(cashback={"points": 10, "every": 1}))
    placed = await call(
        client,
        auth,
        "POST",
        "/orders",
        order_body("c1", "o1", 1e9, lineItems=[{"productId": "p", "quantity": 1, "price": 1e9}]),
    )
    assert placed["rewardedPoints"] == 1_000_000_000
    assert placed["lineItems"][0]["points"] == 1_000_000_000
    found = await balance(client, auth, "c1")
    assert found["totalPointsBalance"] == 1_000_000_000 + 50  # and the first-order campaign
    quote = await call(client, auth, "POST", "/orders/cashback", {"totalPaid": 1e9})
    assert quote["totalPoints"] == 1_000_000_000


async def test_earnings_are_floored_once_and_below_one_point_are_nothing(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    paid = {"customerId": "c1", "transactionId": "cb1", "amount": 0.99}
    answer = await call(client, shop, "POST", "/transactions/cashback", paid)
    assert (answer["rewardEquivalentPoints"], answer["gameballTransactionId"]) == (0, None)
    assert await ledger(client, shop, "c1") == []
    assert (await balance(client, shop, "c1"))["totalPointsBalance"] == 0
    lines = [{"productId": f"p{n}", "quantity": 1, "price": 1} for n in range(3)]
    placed = await call(
        client, shop, "POST", "/orders", order_body("c1", "o1", 10, lineItems=lines)
    )
    assert placed["rewardedPoints"] == 10  # not 3 + 3 + 3
    assert [line["decimalPoints"] for line in placed["lineItems"]] == [3.33, 3.33, 3.33]
    assert [line["points"] for line in placed["lineItems"]] == [3, 3, 3]


# --- ids are unique per account -------------------------------------------------------------


async def test_a_repeated_transaction_id_answers_the_first_and_changes_nothing(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    body = redeem_body("c1", "r1", points=10, transactionTime="2026-01-01T00:00:00Z")
    first = await call(client, shop, "POST", "/transactions/redeem", body)
    state = await snapshot(client, shop, runtime, "c1")
    # The same body, with its keys in another order, is the same request.
    again = await call(client, shop, "POST", "/transactions/redeem", dict(reversed(body.items())))
    assert again == first
    assert await snapshot(client, shop, runtime, "c1") == state
    other = {**body, "points": 11}
    answer = await refused(
        client, shop, "POST", "/transactions/redeem", other, status=422, code=9004
    )
    assert "r1" in answer["message"]
    assert await snapshot(client, shop, runtime, "c1") == state
    assert (await balance(client, shop, "c1"))["totalPointsBalance"] == 90


SHOP_IDS = [
    ("/orders", order_body("c1", "o1", 20), {"totalPaid": 21}),
    (
        "/transactions/cashback",
        {"customerId": "c1", "transactionId": "cb1", "amount": 20},
        {"amount": 21},
    ),
    (
        "/transactions/manual",
        {"customerId": "c1", "transactionId": "m1", "points": 5, "username": "u", "reason": "r"},
        {"points": 6},
    ),
    (
        "/transactions/refund",
        {
            "customerId": "c1",
            "refundTransactionId": "rf1",
            "reverseTransactionId": "o1",
            "refundAmount": 10,
        },
        {"refundAmount": 11},
    ),
]


async def test_every_shop_id_is_taken_once(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    for path, body, changed in SHOP_IDS:
        first = await call(client, shop, "POST", path, body)
        state = await snapshot(client, shop, runtime, "c1")
        assert await call(client, shop, "POST", path, body) == first
        await refused(client, shop, "POST", path, {**body, **changed}, status=422, code=9004)
        assert await snapshot(client, shop, runtime, "c1") == state, path
    # An order id and a transaction id may be equal (families of their own) …
    await call(client, shop, "POST", "/orders", order_body("c1", "same", 20))
    paid = {"customerId": "c1", "transactionId": "same", "amount": 30}
    assert (await call(client, shop, "POST", "/transactions/cashback", paid))[
        "rewardEquivalentPoints"
    ] == 30
    # … and a refund by that id reverses the order (an order id is looked up first).
    refund = {"customerId": "c1", "refundTransactionId": "rf2", "reverseTransactionId": "same"}
    undone = await call(client, shop, "POST", "/transactions/refund", refund)
    assert (undone["refundAmount"], undone["pointsClawedBack"]) == (20, 20)


async def test_an_idempotency_key_answers_its_first_request(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    key = {"Idempotency-Key": "checkout-1"}
    hold = {"customerId": "c1", "pointsToHold": 30}
    response = await client.post(f"{V4}/transactions/hold", json=hold, headers={**shop, **key})
    assert response.status_code == 200, response.text
    first = response.json()
    state = await snapshot(client, shop, runtime, "c1")
    again = await client.post(f"{V4}/transactions/hold", json=hold, headers={**shop, **key})
    assert (again.status_code, again.json()) == (200, first)  # the same hold, not a second
    assert await snapshot(client, shop, runtime, "c1") == state
    other = {"customerId": "c1", "pointsToHold": 31}
    await refused(
        client, shop, "POST", "/transactions/hold", other, status=422, code=2002, headers=key
    )
    assert await snapshot(client, shop, runtime, "c1") == state
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 70
    # A refused request leaves its key free for the request that succeeds.
    key = {"Idempotency-Key": "k-2"}
    body = redeem_body("c1", "r1", points=80)
    await refused(
        client, shop, "POST", "/transactions/redeem", body, status=422, code=9008, headers=key
    )
    await call(client, shop, "DELETE", f"/transactions/hold/{first['holdReference']}")
    response = await client.post(f"{V4}/transactions/redeem", json=body, headers={**shop, **key})
    assert response.status_code == 200, response.text
    assert (await balance(client, shop, "c1"))["totalPointsBalance"] == 20


# --- the codes of refused requests ----------------------------------------------------------


async def test_insufficient_balance_is_9008_for_redeems_holds_and_debits(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    await call(client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 60})
    state = await snapshot(client, shop, runtime, "c1")
    await refused(
        client,
        shop,
        "POST",
        "/transactions/redeem",
        redeem_body("c1", "r1", points=41),
        status=422,
        code=9008,
    )
    await refused(
        client,
        shop,
        "POST",
        "/transactions/hold",
        {"customerId": "c1", "amountToHold": 4.1},
        status=422,
        code=9008,
    )
    debit = {**redeem_body("c1", "m1", points=-41), "username": "u", "reason": "r"}
    await refused(client, shop, "POST", "/transactions/manual", debit, status=422, code=9008)
    assert await snapshot(client, shop, runtime, "c1") == state
    ok = await call(
        client, shop, "POST", "/transactions/redeem", redeem_body("c1", "r1", points=40)
    )
    assert ok["redeemEquivalentPoints"] == 40
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 0


async def test_hold_references_that_are_not_the_customer_s_are_not_found(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed-1")
    await grant(client, shop, "c2", 100, "seed-2")
    hold = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 10}
    )
    state = await snapshot(client, shop, runtime, "c2")
    steal = redeem_body("c2", "r1", holdReference=hold["holdReference"])
    await refused(client, shop, "POST", "/transactions/redeem", steal, status=404, code=9006)
    order = order_body("c2", "o1", 5, redemption={"pointsHoldReference": hold["holdReference"]})
    await refused(client, shop, "POST", "/orders", order, status=404, code=9006)
    unknown = redeem_body("c1", "r2", holdReference="00000000-0000-0000-0000-000000000000")
    await refused(client, shop, "POST", "/transactions/redeem", unknown, status=404, code=9006)
    await refused(client, shop, "GET", "/transactions/hold/nope", None, status=404, code=9006)
    await refused(client, shop, "DELETE", "/transactions/hold/nope", None, status=404, code=9006)
    assert await snapshot(client, shop, runtime, "c2") == state
    # c2's refused order created nothing: c2 has no order to refund.
    refund = {"customerId": "c2", "refundTransactionId": "x", "reverseTransactionId": "o1"}
    await refused(client, shop, "POST", "/transactions/refund", refund, status=404, code=9005)


async def test_refund_codes(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "m1")
    await call(client, shop, "POST", "/orders", order_body("c1", "o1", 10))
    await call(client, shop, "POST", "/orders", order_body("c2", "o2", 10))

    def refund(refund_id: str, reverse: str, customer: str = "c1") -> dict[str, Any]:
        return {
            "customerId": customer,
            "refundTransactionId": refund_id,
            "reverseTransactionId": reverse,
        }

    state = await snapshot(client, shop, runtime, "c1")
    await refused(
        client, shop, "POST", "/transactions/refund", refund("x", "nope"), status=404, code=9005
    )
    # Another customer's order is not found for this one.
    await refused(
        client, shop, "POST", "/transactions/refund", refund("x", "o2"), status=404, code=9005
    )
    await refused(
        client, shop, "POST", "/transactions/refund", refund("x", "m1"), status=422, code=9000
    )
    assert await snapshot(client, shop, runtime, "c1") == state
    await call(client, shop, "POST", "/transactions/refund", refund("r1", "o1"))
    await refused(
        client, shop, "POST", "/transactions/refund", refund("r2", "o1"), status=422, code=9001
    )
    await refused(
        client, shop, "POST", "/transactions/refund", refund("r3", "r1"), status=422, code=9000
    )
    await refused(
        client,
        shop,
        "POST",
        "/transactions/refund",
        {**refund("r4", "o2", "c2"), "refundAmount": 10.01},
        status=422,
        code=3003,
    )


async def test_a_hold_used_released_or_expired_cannot_be_redeemed(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    used = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 10}
    )
    ref = used["holdReference"]
    await call(
        client, shop, "POST", "/transactions/redeem", redeem_body("c1", "r1", holdReference=ref)
    )
    state = await snapshot(client, shop, runtime, "c1")
    again = redeem_body("c1", "r2", holdReference=ref)
    answer = await refused(
        client, shop, "POST", "/transactions/redeem", again, status=422, code=9009
    )
    assert "used" in answer["message"]
    await refused(client, shop, "DELETE", f"/transactions/hold/{ref}", None, status=422, code=9009)
    order = order_body("c1", "o1", 5, redemption={"pointsHoldReference": ref})
    await refused(client, shop, "POST", "/orders", order, status=422, code=9009)
    assert await snapshot(client, shop, runtime, "c1") == state
    released = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 10}
    )
    await call(client, shop, "DELETE", f"/transactions/hold/{released['holdReference']}")
    late = redeem_body("c1", "r3", holdReference=released["holdReference"])
    answer = await refused(
        client, shop, "POST", "/transactions/redeem", late, status=422, code=9009
    )
    assert "released" in answer["message"]
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 90


async def test_burning_without_redemption_configured_is_6002(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, auth, "c1", 100, "seed")
    hold = {"customerId": "c1", "pointsToHold": 10}
    redeem = redeem_body("c1", "r1", points=10)
    manual = {**redeem_body("c1", "m2", amount=5), "username": "u", "reason": "r"}
    for program in (None, burn_program(redemption=None)):  # no program; one without redemption
        if program is not None:
            await apply_program(client, auth, program)
        state = await snapshot(client, auth, runtime, "c1")
        await refused(client, auth, "POST", "/transactions/hold", hold, status=422, code=6002)
        await refused(client, auth, "POST", "/transactions/redeem", redeem, status=422, code=6002)
        await refused(client, auth, "POST", "/transactions/manual", manual, status=422, code=6002)
        configuration = await call(client, auth, "GET", "/configurations/redemption")
        assert configuration["redemptionFactor"] is None
        assert await snapshot(client, auth, runtime, "c1") == state


# --- the ledger -----------------------------------------------------------------------------


async def test_every_point_movement_is_a_ledger_entry_that_explains_the_balance(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 500, "seed")
    hold = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 100}
    )
    order = order_body("c1", "o1", 80, redemption={"pointsHoldReference": hold["holdReference"]})
    await call(client, shop, "POST", "/orders", order)
    await call(client, shop, "POST", "/transactions/redeem", redeem_body("c1", "r1", amount=2.5))
    await call(
        client,
        shop,
        "POST",
        "/transactions/cashback",
        {"customerId": "c1", "transactionId": "cb1", "amount": 33.3},
    )
    refund = {"customerId": "c1", "refundTransactionId": "rf1", "reverseTransactionId": "o1"}
    await call(client, shop, "POST", "/transactions/refund", {**refund, "refundAmount": 30})
    await call(
        client,
        shop,
        "POST",
        "/transactions/refund",
        {"customerId": "c1", "refundTransactionId": "rf2", "reverseTransactionId": "r1"},
    )
    debit = {**redeem_body("c1", "m2", points=-7), "username": "u", "reason": "r"}
    await call(client, shop, "POST", "/transactions/manual", debit)
    found = await assert_ledger_holds(client, shop, "c1")
    # 500 - 100 + 80 + 50 (campaign) - 25 + 33 - 30 + 38 (a 30/80 share of the 100) + 25 - 7
    assert found["totalPointsBalance"] == 564
    kinds = [entry["type"] for entry in reversed(await ledger(client, shop, "c1"))]
    assert kinds == [
        "ManualReward",
        "Reward",  # place_order's campaign runs first
        "Redemption",
        "PaymentReward",
        "Redemption",
        "PaymentReward",
        "Refund",
        "Cancel",
        "Cancel",
        "ManualDeduction",
    ]


async def test_the_ledger_filters_by_direction_status_and_type(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    await call(client, shop, "POST", "/transactions/redeem", redeem_body("c1", "r1", points=10))
    pending = {
        "customerId": "c1",
        "transactionId": "cb1",
        "amount": 40,
        "configurations": {"returnWindow": 14},
    }
    await call(client, shop, "POST", "/transactions/cashback", pending)

    def shape(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(e["type"], e["direction"], e["points"], e["status"]) for e in entries]

    assert shape(await ledger(client, shop, "c1", direction="-")) == [
        ("Redemption", "-", 10, "Active")
    ]
    assert shape(await ledger(client, shop, "c1", direction="+")) == [
        ("PaymentReward", "+", 40, "Pending"),
        ("ManualReward", "+", 100, "Active"),
    ]
    assert shape(await ledger(client, shop, "c1", status="Pending")) == [
        ("PaymentReward", "+", 40, "Pending")
    ]
    assert len(await ledger(client, shop, "c1", status="Active")) == 2
    assert shape(await ledger(client, shop, "c1", type="Redemption")) == [
        ("Redemption", "-", 10, "Active")
    ]
    unencoded = await client.get(
        f"{V4}/transactions?customerId=c1&direction=+", headers=shop
    )  # an unencoded + reads as a space: Gameball's SDK sends it so
    assert [e["direction"] for e in unencoded.json()["transactions"]] == ["+", "+"]
    for bad in ({"direction": "x"}, {"status": "Blocked"}, {"type": "Nope"}):
        response = await client.get(
            f"{V4}/transactions", params={"customerId": "c1", **bad}, headers=shop
        )
        assert (response.status_code, response.json()["code"]) == (422, 3003), bad


# --- webhooks -------------------------------------------------------------------------------


async def test_the_burn_side_announces_redeems_refunds_orders_and_profile_changes(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    topics = (
        outbox.POINTS_REDEEMED,
        outbox.POINTS_REFUNDED,
        outbox.ORDER_COMPLETED,
        outbox.PROFILE_UPDATED,
    )
    await add_endpoint(client, shop, "https://example.com/hook", *topics)
    await grant(client, shop, "c1", 100, "seed")
    assert await outbox_topics(runtime) == [outbox.PROFILE_UPDATED]
    await call(client, shop, "POST", "/transactions/redeem", redeem_body("c1", "r1", points=10))
    assert (await outbox_topics(runtime))[1:] == [outbox.POINTS_REDEEMED, outbox.PROFILE_UPDATED]
    await call(client, shop, "POST", "/orders", order_body("c1", "o1", 20))
    tail = await outbox_topics(runtime)
    assert outbox.ORDER_COMPLETED in tail[3:] and outbox.PROFILE_UPDATED in tail[3:]
    count = len(tail)
    refund = {"customerId": "c1", "refundTransactionId": "x1", "reverseTransactionId": "r1"}
    await call(client, shop, "POST", "/transactions/refund", refund)
    assert (await outbox_topics(runtime))[count:] == [
        outbox.POINTS_REFUNDED,
        outbox.PROFILE_UPDATED,
    ]
    payloads = await runtime.reader.run(
        lambda tx: tx.all("SELECT topic, payload FROM webhook_messages ORDER BY id")
    )
    redeemed = json.loads(next(p for t, p in payloads if t == outbox.POINTS_REDEEMED))
    data = redeemed["data"]
    assert (data["customerId"], data["points"], data["transactionId"]) == ("c1", 10, "r1")
    assert data["pointsBalance"] == 90
    refunded = json.loads(next(p for t, p in payloads if t == outbox.POINTS_REFUNDED))
    assert (refunded["data"]["points"], refunded["data"]["transactionId"]) == (10, "r1")
    completed = json.loads(next(p for t, p in payloads if t == outbox.ORDER_COMPLETED))
    assert (completed["data"]["orderId"], completed["data"]["rewardedPoints"]) == ("o1", 20)
    # A repeat (replay) announces nothing again.
    count = len(await outbox_topics(runtime))
    await call(client, shop, "POST", "/transactions/refund", refund)
    assert len(await outbox_topics(runtime)) == count
    # A refund that finds its points spent announces what it took, not what it wanted.
    spend = {"customerId": "c1", "transactionId": "r2", "points": 160}
    await call(client, shop, "POST", "/transactions/redeem", spend)  # 10 left
    undo = {"customerId": "c1", "refundTransactionId": "x2", "reverseTransactionId": "o1"}
    answer = await call(client, shop, "POST", "/transactions/refund", undo)
    assert (answer["pointsClawedBack"], answer["uncollectedPoints"]) == (10, 10)
    payloads = await runtime.reader.run(
        lambda tx: tx.all("SELECT topic, payload FROM webhook_messages ORDER BY id")
    )
    last = json.loads([p for t, p in payloads if t == outbox.POINTS_REFUNDED][-1])
    assert (last["data"]["points"], last["data"]["pointsBalance"]) == (-10, 0)

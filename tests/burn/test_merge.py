"""A merge of two profiles (channel merging by email) carries the loser's holds, pending
points and orders to the merged customer."""

from __future__ import annotations

import httpx

from kudos.bootstrap import Runtime
from kudos.services.burn import earn
from tests.burn.conftest import (
    V4,
    apply_program,
    assert_ledger_holds,
    balance,
    burn_program,
    call,
    grant,
    ledger,
    moment,
)
from tests.conftest import configure_account


async def test_a_merge_carries_holds_pending_points_and_orders(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    configure_account(runtime, channel_merging="email")
    await apply_program(
        client, auth, burn_program(cashback={"points": 1, "every": 1, "returnWindowDays": 14})
    )
    await grant(client, auth, "old", 10, "seed-old")
    event = {"customerId": "old", "email": "a@x.io", "events": {"visit": {}}}
    assert (await client.post(f"{V4}/events", json=event, headers=auth)).status_code == 200
    # The newer profile: points, a hold, and an order whose cashback is pending.
    await grant(client, auth, "new", 100, "seed-new")
    hold = await call(
        client, auth, "POST", "/transactions/hold", {"customerId": "new", "pointsToHold": 30}
    )
    order = {"customerId": "new", "orderId": "o-new", "totalPaid": 80}
    await call(client, auth, "POST", "/orders", order)
    before = await balance(client, auth, "new")
    assert (before["availablePointsBalance"], before["pendingPoints"]) == (120, 80)

    # "new" presents the email "old" holds: the two profiles become one (the older wins).
    merge = {"customerId": "new", "email": "a@x.io", "events": {"visit": {}}}
    assert (await client.post(f"{V4}/events", json=merge, headers=auth)).status_code == 200
    merged = await balance(client, auth, "old")
    assert (merged["totalPointsBalance"], merged["heldPoints"], merged["pendingPoints"]) == (
        160,
        30,
        80,
    )
    assert merged["availablePointsBalance"] == 130
    assert await balance(client, auth, "new") == {**merged, "customerId": "new"}

    # The hold made for "new" is the merged customer's: "old" redeems it.
    redeem = {"customerId": "old", "transactionId": "r1", "holdReference": hold["holdReference"]}
    assert (await call(client, auth, "POST", "/transactions/redeem", redeem))[
        "redeemEquivalentPoints"
    ] == 30
    # The order of "new" is refunded under "old", inside its window: pending points first.
    refund = {
        "customerId": "old",
        "refundTransactionId": "rf1",
        "reverseTransactionId": "o-new",
        "refundAmount": 20,
    }
    answer = await call(client, auth, "POST", "/transactions/refund", refund)
    assert (answer["pointsClawedBack"], answer["uncollectedPoints"]) == (20, 0)
    assert (await balance(client, auth, "old"))["pendingPoints"] == 60
    # The window ends for the merged customer.
    assert await runtime.writer.submit(earn.MaturePoints(now=moment(days=15))) == 1
    found = await assert_ledger_holds(client, auth, "old", chained=False)
    assert (found["totalPointsBalance"], found["pendingPoints"], found["heldPoints"]) == (
        190,
        0,
        0,
    )
    refunds = await ledger(client, auth, "new", type="PaymentReward")
    assert [(e["clientTransactionId"], e["points"], e["status"]) for e in refunds] == [
        ("o-new", 60, "Active")
    ]


async def test_a_merged_customer_s_holds_still_reserve_their_points(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    configure_account(runtime, channel_merging="email")
    await grant(client, shop, "old", 10, "seed-old")
    event = {"customerId": "old", "email": "a@x.io", "events": {"visit": {}}}
    assert (await client.post(f"{V4}/events", json=event, headers=shop)).status_code == 200
    await grant(client, shop, "new", 20, "seed-new")
    await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "new", "pointsToHold": 20}
    )
    await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "old", "pointsToHold": 10}
    )
    merge = {"customerId": "new", "email": "a@x.io", "events": {"visit": {}}}
    assert (await client.post(f"{V4}/events", json=merge, headers=shop)).status_code == 200
    found = await balance(client, shop, "old")
    assert (found["totalPointsBalance"], found["availablePointsBalance"]) == (30, 0)
    spend = {"customerId": "new", "transactionId": "r1", "points": 1}
    refused = await client.post(f"{V4}/transactions/redeem", json=spend, headers=shop)
    assert refused.json()["code"] == 9008

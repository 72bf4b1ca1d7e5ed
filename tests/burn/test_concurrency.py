"""Never overdraw: requests that race for the same points, in one process (the writer's
batches, on both stores), each take effect exactly as often as the points allow."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from kudos.bootstrap import Runtime
from tests.burn.conftest import (
    V4,
    assert_ledger_holds,
    balance,
    call,
    grant,
    holds_rows,
    ledger,
    no_rate_limit,
)

RACERS = 50


async def race(
    client: httpx.AsyncClient, auth: dict[str, str], calls: list[tuple[str, str, Any]]
) -> list[httpx.Response]:
    """Send every ``(method, path, body)`` at once."""
    return await asyncio.gather(
        *(
            client.request(method, V4 + path, json=body, headers=auth)
            for method, path, body in calls
        )
    )


def outcomes(responses: list[httpx.Response]) -> Counter[Any]:
    """How many succeeded (200) and how many got each error code."""
    return Counter(200 if r.status_code == 200 else r.json()["code"] for r in responses)


async def test_fifty_redeems_of_one_hold_succeed_once_and_a_release_races_them(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    no_rate_limit(runtime)
    await grant(client, shop, "c1", 100, "seed")
    hold = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 30}
    )
    calls = [
        (
            "POST",
            "/transactions/redeem",
            {"customerId": "c1", "transactionId": f"r{n}", "holdReference": hold["holdReference"]},
        )
        for n in range(RACERS)
    ]
    assert outcomes(await race(client, shop, calls)) == {200: 1, 9009: RACERS - 1}
    found = await assert_ledger_holds(client, shop, "c1")
    assert (found["totalPointsBalance"], found["availablePointsBalance"]) == (70, 70)
    assert len(await ledger(client, shop, "c1", type="Redemption")) == 1
    # A hold redeemed and released at once is one or the other.
    await grant(client, shop, "c2", 100, "seed-2")
    hold = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c2", "pointsToHold": 30}
    )
    ref = hold["holdReference"]
    redeems = [
        (
            "POST",
            "/transactions/redeem",
            {"customerId": "c2", "transactionId": f"x{n}", "holdReference": ref},
        )
        for n in range(10)
    ]
    got = await race(client, shop, [("DELETE", f"/transactions/hold/{ref}", None), *redeems])
    state = (await call(client, shop, "GET", f"/transactions/hold/{ref}"))["state"]
    found = await assert_ledger_holds(client, shop, "c2")
    if state == "used":
        assert got[0].json()["code"] == 9009
        assert outcomes(got[1:]) == {200: 1, 9009: 9}
        assert found["totalPointsBalance"] == 70
    else:
        assert state == "released" and got[0].status_code == 200
        assert outcomes(got[1:]) == {9009: 10}
        assert found["totalPointsBalance"] == 100
    assert found["availablePointsBalance"] == found["totalPointsBalance"]


async def test_fifty_redeems_of_ten_points_from_a_hundred_succeed_ten_times(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    no_rate_limit(runtime)
    await grant(client, shop, "c1", 100, "seed")
    calls = [
        (
            "POST",
            "/transactions/redeem",
            {"customerId": "c1", "transactionId": f"r{n}", "points": 10},
        )
        for n in range(RACERS)
    ]
    assert outcomes(await race(client, shop, calls)) == {200: 10, 9008: RACERS - 10}
    found = await assert_ledger_holds(client, shop, "c1")
    assert found["totalPointsBalance"] == 0
    assert len(await ledger(client, shop, "c1", type="Redemption")) == 10


async def test_concurrent_holds_never_reserve_more_than_is_available(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    no_rate_limit(runtime)
    await grant(client, shop, "c1", 100, "seed")
    calls = [
        ("POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 7}) for _ in range(30)
    ]
    assert outcomes(await race(client, shop, calls)) == {200: 14, 9008: 16}
    found = await balance(client, shop, "c1")
    assert (found["heldPoints"], found["availablePointsBalance"]) == (98, 2)
    # Holds and redeems racing together: the held points stay reserved for their holds.
    refs = [row[0] for row in await holds_rows(runtime)]
    redeem_holds = [
        (
            "POST",
            "/transactions/redeem",
            {"customerId": "c1", "transactionId": f"h{n}", "holdReference": ref},
        )
        for n, ref in enumerate(refs)
    ]
    redeem_points = [
        (
            "POST",
            "/transactions/redeem",
            {"customerId": "c1", "transactionId": f"p{n}", "points": 1},
        )
        for n in range(10)
    ]
    got = await race(client, shop, redeem_holds + redeem_points)
    assert outcomes(got[: len(refs)]) == {200: 14}
    assert outcomes(got[len(refs) :]) == {200: 2, 9008: 8}
    found = await assert_ledger_holds(client, shop, "c1")
    assert (found["totalPointsBalance"], found["heldPoints"]) == (0, 0)


async def test_concurrent_orders_with_one_order_id_record_it_once(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    no_rate_limit(runtime)
    same = {"customerId": "c1", "orderId": "o1", "totalPaid": 40}
    other = {**same, "totalPaid": 41}
    got = await race(
        client, shop, [("POST", "/orders", same if n % 2 else other) for n in range(20)]
    )
    winner = next(r.json() for r in got if r.status_code == 200)
    won = same if winner["rewardedPoints"] == 40 else other
    for response, body in zip(got, [same if n % 2 else other for n in range(20)], strict=True):
        if body is won:
            assert (response.status_code, response.json()) == (200, winner)
        else:
            assert (response.status_code, response.json()["code"]) == (422, 9004)
    found = await assert_ledger_holds(client, shop, "c1")
    assert found["totalPointsBalance"] == winner["rewardedPoints"] + 50  # the campaign once
    listed = await call(client, shop, "GET", "/orders/o1/transactions")
    assert [t["transactionType"] for t in listed["transactions"]] == ["PaymentReward"]


async def test_concurrent_refunds_never_refund_more_than_was_paid(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    no_rate_limit(runtime)
    await call(
        client, shop, "POST", "/orders", {"customerId": "c1", "orderId": "o1", "totalPaid": 100}
    )
    body = {"customerId": "c1", "reverseTransactionId": "o1", "refundAmount": 15}
    got = await race(
        client,
        shop,
        [
            ("POST", "/transactions/refund", {**body, "refundTransactionId": f"rf{n}"})
            for n in range(12)
        ],
    )
    counted = outcomes(got)
    assert counted[200] == 6 and counted[3003] + counted[9001] == 6
    fulls = await race(
        client,
        shop,
        [
            (
                "POST",
                "/transactions/refund",
                {**body, "refundAmount": None, "refundTransactionId": f"full{n}"},
            )
            for n in range(5)
        ],
    )
    assert outcomes(fulls) == {200: 1, 9001: 4}
    found = await assert_ledger_holds(client, shop, "c1")
    assert found["totalPointsBalance"] == 50
    clawed = await ledger(client, shop, "c1", type="Refund")
    assert sum(e["points"] for e in clawed) == 100

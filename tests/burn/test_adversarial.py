"""Hostile input on the burn side: every bad value is refused with a code (never a 500) and
writes nothing; another account's holds and orders do not exist."""

from __future__ import annotations

from typing import Any

import httpx

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import accounts
from tests.burn.conftest import V4, apply_program, balance, burn_program, call, grant, snapshot

LONG = "x" * 101


def manual(**fields: Any) -> dict[str, Any]:
    return {"customerId": "c1", "transactionId": "m", "username": "u", "reason": "r", **fields}


def redeem(**fields: Any) -> dict[str, Any]:
    return {"customerId": "c1", "transactionId": "r", **fields}


def order(**fields: Any) -> dict[str, Any]:
    return {"customerId": "c1", "orderId": "o", "totalPaid": 10, **fields}


# (path, body, status, code): raw JSON text where a Python value cannot say it (1e400).
HOSTILE: list[tuple[str, Any, int, int]] = [
    (
        "/transactions/redeem",
        '{"customerId": "c1", "transactionId": "r", "amount": 1e400}',
        422,
        3003,
    ),
    ("/transactions/hold", '{"customerId": "c1", "amountToHold": -1e400}', 422, 3003),
    ("/transactions/redeem", redeem(amount=-1), 422, 3003),
    ("/transactions/redeem", redeem(points=-1), 422, 3003),
    ("/transactions/redeem", redeem(points=10**30), 422, 3003),
    ("/transactions/hold", {"customerId": "c1", "pointsToHold": 1_000_000_001}, 422, 3003),
    ("/transactions/redeem", redeem(amount=1.0000001), 422, 3003),
    ("/transactions/redeem", redeem(amount=1_000_000_000.5), 422, 3003),
    ("/transactions/redeem", redeem(points=1.5), 422, 3003),
    ("/transactions/redeem", redeem(points="10"), 422, 3003),
    ("/transactions/redeem", redeem(points=True), 422, 3003),
    ("/transactions/redeem", redeem(amount=True), 422, 3003),
    ("/transactions/redeem", redeem(amount="ten"), 422, 3003),
    ("/transactions/redeem", redeem(amount="NaN"), 422, 3003),
    ("/transactions/redeem", redeem(amount="Infinity"), 422, 3003),
    ("/transactions/redeem", redeem(amount=[1]), 422, 3003),
    ("/transactions/redeem", redeem(amount={"value": 1}), 422, 3003),
    ("/transactions/redeem", redeem(transactionId="a\x00b", points=1), 422, 3003),
    ("/transactions/redeem", redeem(transactionId=LONG, points=1), 422, 3003),
    ("/transactions/redeem", redeem(transactionId="   ", points=1), 422, 3003),
    ("/transactions/redeem", redeem(transactionId=True, points=1), 422, 3003),
    (
        "/transactions/redeem",
        {"customerId": "c\x001", "transactionId": "r", "points": 1},
        422,
        3003,
    ),
    ("/transactions/redeem", {"customerId": LONG, "transactionId": "r", "points": 1}, 422, 3003),
    ("/transactions/redeem", redeem(holdReference="h\x00"), 422, 3003),
    ("/transactions/redeem", redeem(holdReference=LONG), 422, 3003),
    ("/transactions/redeem", redeem(points=1, reason="y" * 256), 422, 3003),
    ("/transactions/manual", manual(points=-(10**9) - 1), 422, 3003),
    ("/transactions/manual", manual(amount="-1e400"), 422, 3003),
    ("/transactions/manual", manual(points=5, expiryAfter=-1), 422, 3003),
    ("/transactions/manual", manual(points=5, username="\x00"), 422, 3003),
    ("/transactions/cashback", {"customerId": "c1", "transactionId": "c", "amount": 0}, 422, 3003),
    (
        "/transactions/cashback",
        {"customerId": "c1", "transactionId": "c", "amount": "1e10"},
        422,
        3003,
    ),
    (
        "/transactions/cashback",
        {
            "customerId": "c1",
            "transactionId": "c",
            "amount": 1,
            "configurations": {"returnWindow": 7301},
        },
        422,
        3003,
    ),
    (
        "/transactions/refund",
        {
            "customerId": "c1",
            "refundTransactionId": "x",
            "reverseTransactionId": "o",
            "refundAmount": 0.0000001,
        },
        422,
        3003,
    ),
    ("/orders", order(totalPaid=-0.01), 422, 3003),
    ("/orders", order(totalPaid=False), 422, 3003),
    ("/orders", order(orderId="o\x00"), 422, 3003),
    ("/orders", order(orderId=LONG), 422, 3003),
    ("/orders", order(extra={"nested": {"a": 1}}), 422, 3003),
    ("/orders", order(extra={"list": [1, 2]}), 422, 3003),
    ("/orders", order(extra={f"k{n}": n for n in range(101)}), 422, 3003),
    ("/orders", order(extra={"": 1}), 422, 3003),
    ("/orders", order(lineItems=[{"productId": "p", "quantity": 1}] * 501), 422, 3003),
    ("/orders", order(lineItems=[{"productId": "p", "quantity": -1}]), 422, 3003),
    (
        "/orders",
        '{"customerId": "c1", "orderId": "o", "totalPaid": 1, "lineItems": [{"price": 1e400}]}',
        422,
        3003,
    ),
    ("/orders", order(lineItems=[{"productId": "p", "tags": ["t"] * 51}]), 422, 3003),
    ("/orders", order(lineItems=[{"productId": {"deep": [[[[1]]]]}}]), 422, 3003),
    ("/orders", order(lineItems="all of them"), 422, 3003),
    ("/orders", order(channel="carrier pigeon"), 422, 3003),
    ("/orders", order(guest="yes"), 422, 3003),
    ("/orders", order(cashbackConfigurations={"returnWindow": -1}), 422, 3003),
    ("/orders", order(redemption={"pointsHoldReference": "\x00"}), 422, 3003),
    ("/orders", [order()], 422, 3003),  # as on the other pydantic routes
    ("/transactions/hold", "not json", 400, 3016),
]


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: Any
) -> httpx.Response:
    if isinstance(body, str):
        headers = {**auth, "content-type": "application/json"}
        return await client.post(V4 + path, content=body, headers=headers)
    return await client.post(V4 + path, json=body, headers=auth)


async def test_hostile_values_and_paths_are_refused_with_a_code_and_write_nothing(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    state = await snapshot(client, shop, runtime, "c1")
    answers = [(path, body, await send(client, shop, path, body)) for path, body, _, _ in HOSTILE]
    wrong = [
        (path, str(body)[:80], response.status_code, response.text[:200])
        for (path, body, response), (_, _, status, code) in zip(answers, HOSTILE, strict=True)
        if (response.status_code, response.json().get("code")) != (status, code)
    ]
    assert wrong == []
    for method, path, status, code in [
        ("GET", f"/transactions/hold/{LONG}", 422, 3003),
        ("DELETE", f"/transactions/hold/{LONG}", 422, 3003),
        ("GET", "/transactions/hold/%00", 404, 9006),
        ("DELETE", "/transactions/hold/%00", 404, 9006),
        ("PUT", f"/transactions/{LONG}/activate", 422, 3003),
        ("PUT", "/transactions/%00/activate", 404, 9002),
        ("GET", "/orders/%00/transactions", 404, 9002),
        ("GET", f"/orders/{LONG}/transactions", 422, 3003),
    ]:
        response = await client.request(method, V4 + path, headers=shop)
        assert (response.status_code, response.json()["code"]) == (status, code), path
    assert await snapshot(client, shop, runtime, "c1") == state


async def test_what_gameball_s_clients_send_is_taken(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    """Numeric strings, integer ids, explicit nulls and unknown keys (Gameball's SDKs)."""
    await grant(client, shop, "c1", 100, "seed")
    body = {**redeem(amount="2.5", holdReference=None, points=None), "source": 1, "otp": None}
    assert (await call(client, shop, "POST", "/transactions/redeem", body))[
        "redeemEquivalentPoints"
    ] == 25
    placed = await call(
        client,
        shop,
        "POST",
        "/orders",
        {
            **order(orderId=1001, totalPaid="20.50", totalPrice="25"),
            "discountCodes": [],
            "lineItems": [
                {"productId": 7, "quantity": "2", "price": "10.25", "extra": {"a": {"b": 1}}}
            ],
        },
    )
    assert (placed["orderId"], placed["rewardedPoints"]) == ("1001", 20)
    assert placed["lineItems"][0]["productId"] == "7"
    five_hundred = [{"productId": f"p{n}", "quantity": 1, "price": 1} for n in range(500)]
    many = await call(
        client,
        shop,
        "POST",
        "/orders",
        order(orderId="many", totalPaid=500, lineItems=five_hundred),
    )
    assert many["rewardedPoints"] == 500 and len(many["lineItems"]) == 500
    exact = {"customerId": "c1", "transactionId": "x" * 100, "amount": "999999999.999999"}
    assert (await call(client, shop, "POST", "/transactions/cashback", exact))[
        "rewardEquivalentPoints"
    ] == 999_999_999


async def test_an_amount_worth_more_than_a_billion_points_is_refused_before_the_balance(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    program = burn_program(redemption={"pointValue": 0.000001, "minPoints": 0})
    await apply_program(client, auth, program)
    await grant(client, auth, "c1", 1_000_000_000, "seed")
    hold = {"customerId": "c1", "amountToHold": 1000.000001}
    response = await client.post(f"{V4}/transactions/hold", json=hold, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 3003)
    assert "1,000,000,001" in response.json()["message"]
    whole = {"customerId": "c1", "transactionId": "r", "amount": 1000}
    answer = await call(client, auth, "POST", "/transactions/redeem", whole)
    assert (answer["redeemEquivalentPoints"], answer["redeemAmount"]) == (1_000_000_000, 1000)
    assert (await balance(client, auth, "c1"))["totalPointsBalance"] == 0


async def test_another_account_s_holds_and_orders_do_not_exist(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime
) -> None:
    keyring = runtime.context.keyring
    other_keys = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "other"))
    other = {"apikey": other_keys.api_key, "secretkey": other_keys.secret_key}
    await apply_program(client, other, burn_program())
    await grant(client, other, "c1", 100, "seed")
    theirs = await call(
        client, other, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 10}
    )
    await call(client, other, "POST", "/orders", order(orderId="their-order"))
    await call(
        client, other, "POST", "/transactions/redeem", redeem(transactionId="their-r", points=5)
    )
    # The same customerId in this account: a customer of its own.
    await grant(client, shop, "c1", 100, "seed")
    state = await snapshot(client, shop, runtime, "c1")
    ref = theirs["holdReference"]
    for method, path, body, status, code in [
        ("GET", f"/transactions/hold/{ref}", None, 404, 9006),
        ("DELETE", f"/transactions/hold/{ref}", None, 404, 9006),
        ("POST", "/transactions/redeem", redeem(holdReference=ref), 404, 9006),
        ("POST", "/orders", order(redemption={"pointsHoldReference": ref}), 404, 9006),
        (
            "POST",
            "/transactions/refund",
            {"customerId": "c1", "refundTransactionId": "x", "reverseTransactionId": "their-order"},
            404,
            9005,
        ),
        (
            "POST",
            "/transactions/refund",
            {"customerId": "c1", "refundTransactionId": "x", "reverseTransactionId": "their-r"},
            404,
            9005,
        ),
        ("GET", "/orders/their-order/transactions", None, 404, 9002),
        ("PUT", "/transactions/their-order/activate", None, 404, 9002),
    ]:
        response = await client.request(method, V4 + path, json=body, headers=shop)
        assert (response.status_code, response.json()["code"]) == (status, code), (method, path)
    # The refused requests wrote nothing, and the other account's hold is still active.
    assert await snapshot(client, shop, runtime, "c1") == state
    assert (await call(client, other, "GET", f"/transactions/hold/{ref}"))["state"] == "active"
    # 100 + 10 and 50 (the order and its campaign) - 5 redeemed - 10 held
    assert (await balance(client, other, "c1"))["availablePointsBalance"] == 145
    # The ids are the accounts' own: this account may use the other's ids.
    await call(client, shop, "POST", "/orders", order(orderId="their-order"))
    await call(
        client, shop, "POST", "/transactions/redeem", redeem(transactionId="their-r", points=5)
    )

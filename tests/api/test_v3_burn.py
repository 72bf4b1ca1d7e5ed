"""The burn side's v3 routes (what the official Python SDK sends) on both stores: explicit
nulls, numeric strings, the unencoded query of ``transaction/list``, 200 on every success
and ``code`` + ``message`` on every error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.burn.conftest import apply_program, balance, burn_program, call

V3 = "/api/v3.0/integrations"
NOW = "2026-12-01T10:00:00.000000Z"  # the SDK's transactionTime format


@pytest.fixture
async def sdk_auth(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, str]:
    """The burn program applied; the headers spelled as the SDK spells them."""
    await apply_program(client, auth, burn_program())
    return {"APIKey": auth["apikey"], "secretKey": auth["secretkey"]}


async def v3(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    status: int = 200,
) -> dict[str, Any]:
    response = await client.request(method, V3 + path, json=body, headers=auth)
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()
    if status >= 400:
        assert isinstance(found["code"], int) and found["message"], found
    return found


async def seed(client: httpx.AsyncClient, auth: dict[str, str], player: str, points: int) -> None:
    body = {
        "playerUniqueId": player,
        "amount": None,
        "points": points,
        "transactionId": f"seed-{player}",
        "transactionTime": NOW,
        "username": "tester",
        "reason": "seed",
    }
    done = await v3(client, auth, "POST", "/transaction/manual", body)
    assert (done["playerUniqueId"], done["points"]) == (player, points)


async def available(client: httpx.AsyncClient, auth: dict[str, str], player: str) -> int:
    found = await v3(client, auth, "GET", f"/player/{player}/balance")
    points: int = found["pointsBalance"]
    return points


def hold_body(player: str, amount: Any) -> dict[str, Any]:
    return {"playerUniqueId": player, "amount": amount, "transactionTime": NOW}


def redeem_body(player: str, txn: str, **given: Any) -> dict[str, Any]:
    """What ``redeem_points`` sends: both keys, the unused one null."""
    return {
        "playerUniqueId": player,
        "transactionTime": NOW,
        "holdReference": given.get("holdReference"),
        "redeemedAmount": given.get("redeemedAmount"),
        "transactionId": txn,
    }


def order_body(player: str, order_id: str, **given: Any) -> dict[str, Any]:
    """What ``send_order`` sends, unset fields null and numbers as strings (GB3's sample)."""
    body: dict[str, Any] = {
        "playerUniqueId": player,
        "orderId": order_id,
        "orderDate": NOW,
        "totalPrice": "100",
        "totalPaid": "90.5",
        "totalDiscount": None,
        "totalShipping": None,
        "totalTax": None,
        "lineItems": [
            {
                "productId": "p1",
                "sku": "p1",
                "title": "Mug",
                "category": None,
                "collection": None,
                "tags": None,
                "weight": None,
                "vendor": None,
                "quantity": "2",
            }
        ],
        "discountCodes": [],
        "redeemedAmount": None,
        "holdReference": None,
        "extra": {},
        "guest": False,
        "source": 1,
    }
    body.update(given)
    return body


async def test_hold_with_a_numeric_string_then_redeem_it_with_the_other_key_null(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p1", 1000)
    held = await v3(client, sdk_auth, "POST", "/transaction/hold", hold_body("p1", "10.5"))
    assert (held["playerUniqueId"], held["holdAmount"], held["holdEquivalentPoints"]) == (
        "p1",
        10.5,
        105,
    )
    assert "customerId" not in held
    assert await available(client, sdk_auth, "p1") == 895
    body = redeem_body("p1", "r-1", holdReference=held["holdReference"])
    redeemed = await v3(client, sdk_auth, "POST", "/transaction/redeem", body)
    assert (redeemed["redeemEquivalentPoints"], redeemed["transactionId"]) == (105, "r-1")
    assert await v3(client, sdk_auth, "POST", "/transaction/redeem", body) == redeemed  # replay
    by_amount = redeem_body("p1", "r-2", redeemedAmount="2.5")
    assert (await v3(client, sdk_auth, "POST", "/transaction/redeem", by_amount))[
        "redeemEquivalentPoints"
    ] == 25
    totals = await balance(client, sdk_auth, "p1")
    assert (totals["totalPointsBalance"], totals["availablePointsBalance"]) == (870, 870)


@pytest.mark.parametrize(
    ("given", "status", "code"),
    [
        ({}, 400, 3000),
        ({"holdReference": "h", "redeemedAmount": 1}, 422, 3003),
        ({"redeemedAmount": "ten"}, 422, 3003),
    ],
)
async def test_redeem_needs_exactly_one_of_its_two_keys(
    client: httpx.AsyncClient,
    sdk_auth: dict[str, str],
    given: dict[str, Any],
    status: int,
    code: int,
) -> None:
    await seed(client, sdk_auth, "p2", 100)
    body = redeem_body("p2", "r-x", **given)
    refused = await v3(client, sdk_auth, "POST", "/transaction/redeem", body, status=status)
    assert refused["code"] == code
    assert await available(client, sdk_auth, "p2") == 100


async def test_an_unknown_hold_reference_is_9006_on_release_redeem_and_order(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p3", 100)
    response = await client.delete(f"{V3}/transaction/hold/no-such-hold", headers=sdk_auth)
    assert response.status_code == 404
    assert response.json()["code"] == 9006 and response.json()["message"]
    body = redeem_body("p3", "r-3", holdReference="no-such-hold")
    assert (await v3(client, sdk_auth, "POST", "/transaction/redeem", body, status=404))[
        "code"
    ] == 9006
    order = order_body("p3", "o-3", holdReference="no-such-hold")
    assert (await v3(client, sdk_auth, "POST", "/order", order, status=404))["code"] == 9006
    assert await available(client, sdk_auth, "p3") == 100


async def test_release_answers_200_without_a_body_or_content_type(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p4", 100)
    held = await v3(client, sdk_auth, "POST", "/transaction/hold", hold_body("p4", 3))
    assert await available(client, sdk_auth, "p4") == 70
    response = await client.delete(
        f"{V3}/transaction/hold/{held['holdReference']}", headers=sdk_auth
    )
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Hold released successfully"}
    assert await available(client, sdk_auth, "p4") == 100


async def test_order_with_strings_and_nulls_burns_the_hold_and_earns_then_refund_null_is_full(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p5", 1000)
    held = await v3(client, sdk_auth, "POST", "/transaction/hold", hold_body("p5", 9.5))
    order = order_body("p5", "o-5", holdReference=held["holdReference"])
    placed = await v3(client, sdk_auth, "POST", "/order", order)
    assert (placed["playerUniqueId"], placed["redeemedPoints"], placed["rewardedPoints"]) == (
        "p5",
        95,
        90,
    )
    assert [(line["productId"], line["points"]) for line in placed["lineItems"]] == [("p1", 90)]
    # 1000 - 95 burned + 90 cashback + 50 from the place_order campaign
    assert await available(client, sdk_auth, "p5") == 1045
    refund = {
        "playerUniqueId": "p5",
        "transactionId": "rf-5",
        "reverseTransactionId": "o-5",
        "transactionTime": NOW,
        "amount": None,
    }
    refunded = await v3(client, sdk_auth, "POST", "/transaction/refund", refund)
    assert (refunded["refundAmount"], refunded["pointsClawedBack"], refunded["pointsReturned"]) == (
        90.5,
        90,
        95,
    )
    assert await available(client, sdk_auth, "p5") == 1050
    again = {**refund, "transactionId": "rf-6"}
    assert (await v3(client, sdk_auth, "POST", "/transaction/refund", again, status=422))[
        "code"
    ] == 9001


@pytest.mark.parametrize(
    ("given", "field"),
    [({"redeemedAmount": "5"}, "'redeemedAmount'"), ({"discountCodes": ["X"]}, "'discountCodes'")],
)
async def test_an_order_redeeming_an_amount_or_a_coupon_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, sdk_auth: dict[str, str], given: dict[str, Any], field: str
) -> None:
    await seed(client, sdk_auth, "p6", 100)
    refused = await v3(client, sdk_auth, "POST", "/order", order_body("p6", "o-6", **given), 422)
    assert refused["code"] == 3003 and field in refused["message"]
    assert await available(client, sdk_auth, "p6") == 100
    missing = await call(client, sdk_auth, "GET", "/orders/o-6/transactions", status=404)
    assert missing["code"] == 9002
    placed = await v3(client, sdk_auth, "POST", "/order", order_body("p6", "o-6", redeemedAmount=0))
    assert (placed["redeemedPoints"], placed["rewardedPoints"]) == (0, 90)


async def test_cashback_answers_rewarded_points_and_creates_the_player(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    body = {
        "playerUniqueId": "p7",
        "amount": "20",
        "transactionTime": NOW,
        "transactionId": "cb-7",
        "merchant": None,
    }
    rewarded = await v3(client, sdk_auth, "POST", "/transaction/cashback", body)
    assert (rewarded["playerUniqueId"], rewarded["rewardedPoints"]) == ("p7", 20)
    assert isinstance(rewarded["gameballTransactionId"], int)
    assert await available(client, sdk_auth, "p7") == 20


async def test_manual_by_amount_with_points_null_debits(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p8", 100)
    body = {
        "playerUniqueId": "p8",
        "amount": "-1.5",
        "points": None,
        "transactionId": "m-8",
        "transactionTime": NOW,
        "username": "tester",
        "reason": "fix",
    }
    done = await v3(client, sdk_auth, "POST", "/transaction/manual", body)
    assert (done["points"], done["amount"]) == (-15, -1.5)
    assert await available(client, sdk_auth, "p8") == 85
    both = {**body, "transactionId": "m-9", "points": 3}
    assert (await v3(client, sdk_auth, "POST", "/transaction/manual", both, status=422))[
        "code"
    ] == 3003


async def test_list_reads_a_raw_space_as_plus_pages_by_number_and_scopes_to_a_player(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p9", 100)
    await seed(client, sdk_auth, "p10", 200)
    await v3(
        client, sdk_auth, "POST", "/transaction/redeem", redeem_body("p9", "r-9", redeemedAmount=1)
    )
    # As the SDK builds it: unencoded, a trailing '&' (httpx keeps '+' as it is in the URL).
    response = await client.get(
        f"{V3}/transaction/list?page=1&limit=50&direction=+&", headers=sdk_auth
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert [(t["playerUniqueId"], t["points"]) for t in page["transactions"]] == [
        ("p10", 200),
        ("p9", 100),
    ]
    assert (page["count"], page["page"], page["hasMore"]) == (2, 1, False)
    assert "customerId" not in page["transactions"][0]
    spaced = await v3(client, sdk_auth, "GET", "/transaction/list?direction=%20")
    assert spaced["transactions"] == page["transactions"]
    debits = await v3(client, sdk_auth, "GET", "/transaction/list?direction=-")
    assert [(t["type"], t["clientTransactionId"]) for t in debits["transactions"]] == [
        ("Redemption", "r-9")
    ]
    first = await v3(client, sdk_auth, "GET", "/transaction/list?page=1&limit=2&")
    second = await v3(client, sdk_auth, "GET", "/transaction/list?page=2&limit=2&")
    assert (first["hasMore"], second["hasMore"], second["count"]) == (True, False, 1)
    assert [t["clientTransactionId"] for t in first["transactions"] + second["transactions"]] == [
        "r-9",
        "seed-p10",
        "seed-p9",
    ]
    mine = await v3(client, sdk_auth, "GET", "/transaction/list?playerUniqueId=p9&status=active")
    assert [t["clientTransactionId"] for t in mine["transactions"]] == ["r-9", "seed-p9"]
    by_id = await v3(client, sdk_auth, "GET", "/transaction/list?transactionId=seed-p10")
    assert [t["playerUniqueId"] for t in by_id["transactions"]] == ["p10"]


async def test_list_from_and_to_take_dates_and_unencoded_offsets(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p11", 100)
    listed = await v3(client, sdk_auth, "GET", "/transaction/list")
    when = listed["transactions"][0]["transactionTime"]  # 2026-…T10:00:00.123456Z
    day, offset = when[:10], when[:-1] + "+00:00"  # the '+' reaches kudos as a space
    for query, count in [
        (f"from={day}&to={day}", 1),
        (f"from={offset}&to={offset}", 1),  # both ends count
        (f"from={when[:-1]}-01:00", 0),  # an hour after the entry
        ("to=2000-01-01", 0),
        ("from=2999-01-01 00:00:00", 0),
        ("from=0001-01-01T00:00:00+05:00&to=9999-12-31", 1),  # the calendar's ends
        ("to=9999-12-31T23:59:59.999999", 1),
    ]:
        found = await v3(client, sdk_auth, "GET", f"/transaction/list?{query}&")
        assert found["count"] == count, query


@pytest.mark.parametrize(
    "query",
    ["direction=x", "status=Blocked", "from=yesterday", "page=0", "limit=500", "page=1001"],
)
async def test_list_refuses_bad_parameters_with_3003(
    client: httpx.AsyncClient, sdk_auth: dict[str, str], query: str
) -> None:
    refused = await v3(client, sdk_auth, "GET", f"/transaction/list?{query}", status=422)
    assert refused["code"] == 3003


async def test_player_reads_answer_the_v3_shapes(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    await seed(client, sdk_auth, "p12", 100)
    await v3(client, sdk_auth, "POST", "/transaction/hold", hold_body("p12", 2))
    info = await v3(client, sdk_auth, "GET", "/player/p12")
    assert (info["playerUniqueId"], info["linkedPlayerUniqueIds"]) == ("p12", ["p12"])
    assert isinstance(info["gameballId"], int)
    found = await v3(client, sdk_auth, "GET", "/player/p12/balance")
    assert found == {
        "playerUniqueId": "p12",
        "pointsBalance": 80,
        "pointsValue": 8,
        "pendingPoints": 0,
        "pendingPointsValue": 0,
        "currency": "USD",
        "pointsName": "points",
    }
    progress = await v3(client, sdk_auth, "GET", "/player/p12/progress")
    assert (progress["playerUniqueId"], progress["current"]) == ("p12", None)
    assert progress["next"]["name"] == "Gold"
    assert [c["rewardsCampaignId"] for c in progress["rewardCampaignsProgress"]] == ["first-order"]
    for path in ("/player/nobody", "/player/nobody/balance", "/player/nobody/progress"):
        assert (await v3(client, sdk_auth, "GET", path, status=404))["code"] == 4004


@pytest.mark.parametrize(
    ("headers", "code"),
    [({"APIKey": "apikey"}, 1001), ({"APIKey": "wrong", "secretKey": "x"}, 1000)],
)
async def test_both_keys_are_required(
    client: httpx.AsyncClient,
    sdk_auth: dict[str, str],
    headers: dict[str, str],
    code: int,
) -> None:
    sent = {
        name: sdk_auth["APIKey"] if value == "apikey" else value for name, value in headers.items()
    }
    for method, path, body in [
        ("POST", "/transaction/hold", hold_body("p13", 1)),
        ("GET", "/transaction/list", None),
        ("GET", "/player/p13/balance", None),
    ]:
        refused = await v3(client, sent, method, path, body, status=401)
        assert refused["code"] == code


async def test_a_missing_or_null_player_is_3000_or_3001_named_as_in_v3(
    client: httpx.AsyncClient, sdk_auth: dict[str, str]
) -> None:
    missing = await v3(client, sdk_auth, "POST", "/transaction/hold", {"amount": 1}, status=400)
    assert (missing["code"], "'playerUniqueId'" in missing["message"]) == (3000, True)
    null = await v3(client, sdk_auth, "POST", "/transaction/hold", hold_body(None, 1), 422)
    assert (null["code"], "'playerUniqueId'" in null["message"]) == (3001, True)
    slash = await v3(client, sdk_auth, "POST", "/transaction/hold", hold_body("a/b", 1), 422)
    assert (slash["code"], "'playerUniqueId'" in slash["message"]) == (3003, True)

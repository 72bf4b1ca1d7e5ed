"""A checkout through the official Gameball Python SDK (``gb-alpha`` 3.0.0), unmodified,
against a live kudos server: the v3 burn routes (``/api/v3.0/integrations/transaction/*``,
``…/order``, ``…/player/*``) with the numbers a shop would check.

The program: a point is worth 0.1, paying 1 earns 1 point, a first order earns 50 more. The
SDK's own bugs are stepped around: no ``email=``/``mobile=`` (they crash inside the SDK),
and fresh lists for every ``orderObject`` (its defaults are shared between orders).
"""

from __future__ import annotations

import gameball
import httpx
from gameball.exceptions.gameball_exception import GameballException

from tests.burn.conftest import PROGRAM, burn_program
from tests.conftest import LiveServer
from tests.e2e.test_sdk import sdk  # noqa: F401 - the fixture

PLAYER = "sdk-shopper"


def available(player: str = PLAYER) -> int:
    found = gameball.get_player_balance(player)
    assert isinstance(found, dict), found
    points: int = found["pointsBalance"]
    return points


def test_a_checkout_through_the_sdk_holds_burns_earns_and_refunds(sdk: LiveServer) -> None:  # noqa: F811
    applied = httpx.put(sdk.url + PROGRAM, json=burn_program(), headers=sdk.headers(), timeout=10)
    assert applied.status_code == 200, applied.text

    seeded = gameball.manual_transaction(PLAYER, "seed-1", "tester", "welcome", points=1000)
    assert (seeded["playerUniqueId"], seeded["points"]) == (PLAYER, 1000)
    assert gameball.get_player_balance(PLAYER) == {
        "playerUniqueId": PLAYER,
        "pointsBalance": 1000,
        "pointsValue": 100,
        "pendingPoints": 0,
        "pendingPointsValue": 0,
        "currency": "USD",
        "pointsName": "points",
    }

    # A redeem at the till: hold $10 (100 points), then spend the hold.
    held = gameball.hold_points(PLAYER, 10)
    assert (held["holdAmount"], held["holdEquivalentPoints"]) == (10, 100)
    assert available() == 900
    redeemed = gameball.redeem_points(PLAYER, "redeem-1", hold_reference=held["holdReference"])
    assert (redeemed["transactionId"], redeemed["redeemEquivalentPoints"]) == ("redeem-1", 100)
    assert available() == 900

    # An online order paid partly with points: hold $5.50 (55 points), the order burns it.
    held = gameball.hold_points(PLAYER, "5.5")
    assert held["holdEquivalentPoints"] == 55
    order = gameball.orderObject(
        PLAYER,
        "order-1",
        None,
        total_price=100,
        total_paid="94.5",
        total_discount="5.5",
        hold_reference=held["holdReference"],
        line_items=[],
        discount_codes=[],
        extra={},
    )
    order.add_lineItem(gameball.lineItem(product_id="mug", title="Mug", quantity=2))
    order.add_lineItem(gameball.lineItem(product_id="tea", title="Tea", quantity=1))
    placed = gameball.send_order(order)
    assert (placed["playerUniqueId"], placed["redeemedPoints"], placed["rewardedPoints"]) == (
        PLAYER,
        55,
        94,
    )
    assert [line["productId"] for line in placed["lineItems"]] == ["mug", "tea"]
    assert available() == 900 - 55 + 94 + 50  # the first-order campaign's 50 too

    # A hold given up: its points come back.
    held = gameball.hold_points(PLAYER, 3)
    assert available() == 959
    assert gameball.reverse_hold(held["holdReference"]) == {
        "success": True,
        "message": "Hold released successfully",
    }
    assert available() == 989

    # Half the order comes back: half its cashback is clawed back, half its points returned.
    refunded = gameball.refund(PLAYER, "refund-1", "order-1", amount=47.25)
    assert (refunded["pointsClawedBack"], refunded["pointsReturned"]) == (47, 28)
    assert available() == 989 - 47 + 28

    rewarded = gameball.reward_points(gameball.rewardObject(PLAYER, 20, "cashback-1"))
    assert (rewarded["playerUniqueId"], rewarded["rewardedPoints"]) == (PLAYER, 20)
    fixed = gameball.manual_transaction(PLAYER, "fix-1", "tester", "goodwill back", amount=-1)
    assert fixed["points"] == -10
    assert available() == 970 + 20 - 10

    # The ledger, newest first; direction=+ reaches kudos as a space (the SDK does not encode).
    credits = gameball.list_transactions(direction="+")
    assert [
        (t["type"], t["clientTransactionId"], t["points"]) for t in credits["transactions"]
    ] == [
        ("PaymentReward", "cashback-1", 20),
        ("Cancel", "order-1", 28),
        ("PaymentReward", "order-1", 94),
        ("Reward", None, 50),  # place_order's campaign runs first
        ("ManualReward", "seed-1", 1000),
    ]
    debits = gameball.list_transactions(page=1, limit=2, direction="-")
    assert [(t["type"], t["clientTransactionId"]) for t in debits["transactions"]] == [
        ("ManualDeduction", "fix-1"),
        ("Refund", "order-1"),
    ]
    assert (debits["page"], debits["hasMore"]) == (1, True)
    rest = gameball.list_transactions(page=2, limit=2, direction="-")
    assert [(t["type"], t["clientTransactionId"]) for t in rest["transactions"]] == [
        ("Redemption", "order-1"),
        ("Redemption", "redeem-1"),
    ]
    assert rest["hasMore"] is False

    info = gameball.get_player_info(PLAYER)
    assert (info["playerUniqueId"], info["linkedPlayerUniqueIds"]) == (PLAYER, [PLAYER])
    progress = gameball.get_player_progress(PLAYER)
    tiers = httpx.get(
        f"{sdk.url}/api/v4.0/integrations/customers/{PLAYER}/tier-progress",
        headers=sdk.headers(),
        timeout=10,
    ).json()
    assert (progress["progress"], progress["next"]) == (tiers["progress"], tiers["next"])
    assert progress["next"]["name"] == "Gold" and progress["current"] is None
    first_order = progress["rewardCampaignsProgress"][0]
    assert (first_order["rewardsCampaignId"], first_order["achievedCount"]) == ("first-order", 1)

    # Errors come back (not raised) as GameballException with kudos' code.
    unknown = gameball.reverse_hold("no-such-hold")
    assert isinstance(unknown, GameballException)
    assert "(GameballException with error code 9006)" in str(unknown)
    too_much = gameball.hold_points(PLAYER, 1000)
    assert isinstance(too_much, GameballException) and "error code 9008" in str(too_much)
    assert available() == 980

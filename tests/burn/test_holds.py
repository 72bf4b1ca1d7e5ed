"""Holds: out of the available balance at once, one use, released, or run out (time injected:
the works take ``now``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from kudos import errors
from kudos.bootstrap import Runtime
from kudos.services import maintenance
from kudos.services.burn import holds, redeem
from kudos.services.burn.work import body_hash
from kudos.services.security import KeyPair
from tests.burn.conftest import (
    apply_program,
    assert_ledger_holds,
    balance,
    burn_program,
    call,
    grant,
    holds_rows,
    moment,
    shop_credentials,
)


def place_hold(runtime: Runtime, keys: KeyPair, customer: str, points: int, now: str) -> Any:
    """A hold placed at ``now`` (writer work, as the route makes it)."""
    work = holds.PlaceHold(
        context=runtime.context,
        credentials=shop_credentials(keys),
        customer_id=customer,
        request_hash=body_hash({"customerId": customer, "pointsToHold": points, "at": now}),
        points=points,
        now=now,
    )
    return runtime.writer.submit(work)


def redeem_hold(
    runtime: Runtime, keys: KeyPair, customer: str, ref: str, txn: str, now: str
) -> Any:
    work = redeem.Redeem(
        context=runtime.context,
        credentials=shop_credentials(keys),
        customer_id=customer,
        request_hash=body_hash({"customerId": customer, "holdReference": ref, "t": txn}),
        transaction_id=txn,
        hold_reference=ref,
        now=now,
    )
    return runtime.writer.submit(work)


async def test_a_hold_leaves_the_available_balance_until_released(
    client: httpx.AsyncClient, shop: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    hold = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "amountToHold": 3}
    )
    assert (hold["holdAmount"], hold["holdEquivalentPoints"]) == (3, 30)
    held = await balance(client, shop, "c1")
    assert (held["totalPointsBalance"], held["availablePointsBalance"], held["heldPoints"]) == (
        100,
        70,
        30,
    )
    ref = hold["holdReference"]
    state = await call(client, shop, "GET", f"/transactions/hold/{ref}")
    assert state == {
        "customerId": "c1",
        "holdReference": ref,
        "holdAmount": 3,
        "holdEquivalentPoints": 30,
        "state": "active",
        "dateToExpire": hold["dateToExpire"],
        "usedBy": None,
    }
    released = await call(client, shop, "DELETE", f"/transactions/hold/{ref}")
    assert released == {"success": True, "message": "Hold released successfully"}
    assert (await call(client, shop, "GET", f"/transactions/hold/{ref}"))["state"] == "released"
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 100
    # Releasing again succeeds and changes nothing.
    assert (await call(client, shop, "DELETE", f"/transactions/hold/{ref}"))["success"] is True
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 100
    assert (await assert_ledger_holds(client, shop, "c1"))["totalPointsBalance"] == 100
    # A customer keeps a bounded number of active holds.
    monkeypatch.setattr(holds, "MAX_ACTIVE_HOLDS", 2)
    await grant(client, shop, "c2", 100, "seed-2")
    body = {"customerId": "c2", "pointsToHold": 1}
    first = await call(client, shop, "POST", "/transactions/hold", body)
    await call(client, shop, "POST", "/transactions/hold", body)
    third = await client.post("/api/v4.0/integrations/transactions/hold", json=body, headers=shop)
    assert (third.status_code, third.json()["code"]) == (422, 3003)
    await call(client, shop, "DELETE", f"/transactions/hold/{first['holdReference']}")
    await call(client, shop, "POST", "/transactions/hold", body)
    assert (await balance(client, shop, "c2"))["heldPoints"] == 2


async def test_a_redeemed_hold_is_used_and_its_points_spent_once(
    client: httpx.AsyncClient, shop: dict[str, str]
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    first = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 40}
    )
    second = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 60}
    )
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 0
    body = {"customerId": "c1", "transactionId": "r1", "holdReference": first["holdReference"]}
    redeemed = await call(client, shop, "POST", "/transactions/redeem", body)
    assert (redeemed["redeemEquivalentPoints"], redeemed["redeemAmount"]) == (40, 4)
    state = await call(client, shop, "GET", f"/transactions/hold/{first['holdReference']}")
    assert (state["state"], state["usedBy"]) == ("used", "r1")
    found = await balance(client, shop, "c1")
    assert (found["totalPointsBalance"], found["availablePointsBalance"]) == (60, 0)
    # The other hold's points are still reserved: nothing else can be spent.
    other = {"customerId": "c1", "transactionId": "r2", "points": 1}
    refused = await client.post(
        "/api/v4.0/integrations/transactions/redeem", json=other, headers=shop
    )
    assert refused.json()["code"] == 9008
    body = {"customerId": "c1", "transactionId": "r3", "holdReference": second["holdReference"]}
    assert (await call(client, shop, "POST", "/transactions/redeem", body))[
        "redeemEquivalentPoints"
    ] == 60
    assert (await assert_ledger_holds(client, shop, "c1"))["totalPointsBalance"] == 0


async def test_a_hold_that_ran_out_reserves_nothing_and_cannot_be_redeemed(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime, keys: KeyPair
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    hold = await place_hold(runtime, keys, "c1", 30, moment(minutes=-11))  # holds last 10
    ref = hold["holdReference"]
    state = await call(client, shop, "GET", f"/transactions/hold/{ref}")
    assert (state["state"], state["dateToExpire"]) == ("expired", hold["dateToExpire"])
    assert state["dateToExpire"] < moment()
    found = await balance(client, shop, "c1")
    assert (found["availablePointsBalance"], found["heldPoints"]) == (100, 0)
    body = {"customerId": "c1", "transactionId": "r1", "holdReference": ref}
    late = await client.post("/api/v4.0/integrations/transactions/redeem", json=body, headers=shop)
    assert (late.status_code, late.json()["code"]) == (422, 9009)
    assert "expired" in late.json()["message"]
    # All 100 points can be held again; releasing the old hold leaves it expired.
    again = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 100}
    )
    assert again["holdEquivalentPoints"] == 100
    assert (await call(client, shop, "DELETE", f"/transactions/hold/{ref}"))["success"] is True
    assert (await call(client, shop, "GET", f"/transactions/hold/{ref}"))["state"] == "expired"
    assert (await balance(client, shop, "c1"))["availablePointsBalance"] == 0


async def test_a_one_minute_hold_is_good_for_one_minute(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, keys: KeyPair
) -> None:
    program = burn_program(redemption={"pointValue": 0.1, "minPoints": 0, "holdMinutes": 1})
    await apply_program(client, auth, program)
    await grant(client, auth, "c1", 100, "seed")
    start = moment(minutes=-5)
    just_in = await place_hold(runtime, keys, "c1", 10, start)
    too_late = await place_hold(runtime, keys, "c1", 10, start)
    assert just_in["dateToExpire"] == moment_after(start, seconds=60)
    used = await redeem_hold(
        runtime, keys, "c1", just_in["holdReference"], "r1", moment_after(start, seconds=59)
    )
    assert used["redeemEquivalentPoints"] == 10
    with pytest.raises(errors.HoldNotActive, match="expired"):
        await redeem_hold(
            runtime, keys, "c1", too_late["holdReference"], "r2", moment_after(start, seconds=60)
        )
    assert (await balance(client, auth, "c1"))["availablePointsBalance"] == 90


def moment_after(start: str, *, seconds: int) -> str:
    when = datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_holds_that_ran_out_a_month_ago_are_purged_and_the_others_kept(
    client: httpx.AsyncClient, shop: dict[str, str], runtime: Runtime, keys: KeyPair
) -> None:
    await grant(client, shop, "c1", 100, "seed")
    old = await place_hold(runtime, keys, "c1", 10, moment(days=-31))
    recent = await place_hold(runtime, keys, "c1", 10, moment(days=-29))
    active = await call(
        client, shop, "POST", "/transactions/hold", {"customerId": "c1", "pointsToHold": 10}
    )
    # The server's own hourly housekeeping may have purged it already (it runs at start).
    await runtime.writer.submit(maintenance.purge_ended_holds(now=moment()))
    assert len(await holds_rows(runtime)) == 2
    gone = await client.get(
        f"/api/v4.0/integrations/transactions/hold/{old['holdReference']}", headers=shop
    )
    assert (gone.status_code, gone.json()["code"]) == (404, 9006)
    for kept, state in ((recent, "expired"), (active, "active")):
        found = await call(client, shop, "GET", f"/transactions/hold/{kept['holdReference']}")
        assert found["state"] == state
    assert (await balance(client, shop, "c1"))["heldPoints"] == 10

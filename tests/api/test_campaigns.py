"""Programs and campaigns through the API: apply a program, send events, read rewards back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.services import loyalty, rewards
from kudos.services.accounts import named as account_named
from kudos.storage import idempotency
from tests.conftest import configure_account, events_body

EVENTS = "/api/v4.0/integrations/events"
CUSTOMERS = "/api/v4.0/integrations/customers"
PROGRAM = "/api/kudos/v1/program"


def shop_program(**overrides: Any) -> dict[str, Any]:
    program: dict[str, Any] = {
        "pointsExpiryDays": 365,
        "tiering": {"method": "points"},
        "tiers": [
            {"order": 1, "name": "Bronze", "minProgress": 0},
            {"order": 2, "name": "Silver", "minProgress": 100, "entryRewardPoints": 50},
        ],
        "campaigns": [
            {
                "id": "welcome",
                "name": "Welcome bonus",
                "trigger": {
                    "match": "any",
                    "rules": [{"event": "write_review"}, {"event": "place_order"}],
                },
                "repeat": {"maxAchievements": 1},
                "reward": {"points": 20},
            },
            {
                "id": "order-points",
                "name": "Points per order",
                "trigger": {
                    "rules": [
                        {
                            "event": "place_order",
                            "where": [{"key": "currency", "op": "equals", "value": "usd,eur"}],
                        }
                    ]
                },
                "repeat": {"maxAchievements": -1},
                "reward": {"pointsPer": {"key": "order_amount", "every": 10, "points": 1}},
            },
            {
                "id": "reviewer",
                "name": "Reviewer",
                "trigger": {"rules": [{"event": "write_review", "after": 3}]},
                "reward": {"badge": "Reviewer"},
            },
        ],
    }
    program.update(overrides)
    return program


async def apply(client: httpx.AsyncClient, auth: dict[str, str], program: dict[str, Any]) -> int:
    response = await client.put(PROGRAM, json=program, headers=auth)
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


async def send(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> None:
    response = await client.post(EVENTS, json=body, headers=auth)
    assert response.status_code == 200, response.text


async def balance(client: httpx.AsyncClient, auth: dict[str, str], customer: str) -> dict[str, Any]:
    response = await client.get(f"{CUSTOMERS}/{customer}/balance", headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def transactions(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str
) -> list[dict[str, Any]]:
    """The customer's ledger, newest first (up to 200 entries)."""
    response = await client.get(
        f"/api/v4.0/integrations/transactions?customerId={customer}&limit=200", headers=auth
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["transactions"]
    return found


def order(customer: str, amount: float, currency: str = "USD") -> dict[str, Any]:
    return {
        "customerId": customer,
        "events": {"place_order": {"order_amount": amount, "currency": currency}},
    }


async def test_without_a_program_nothing_is_rewarded(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    shown = await client.get(PROGRAM, headers=auth)
    assert shown.json()["version"] == 0
    await send(client, auth, events_body("c-0"))
    assert (await balance(client, auth, "c-0"))["totalPointsBalance"] == 0


async def test_each_apply_is_a_new_version_and_get_returns_the_current_one(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert await apply(client, auth, shop_program()) == 1
    assert await apply(client, auth, shop_program(pointsExpiryDays=30)) == 2
    shown = (await client.get(PROGRAM, headers=auth)).json()
    assert (shown["version"], shown["program"]["pointsExpiryDays"]) == (2, 30)


async def test_an_invalid_program_is_refused_whole_and_the_old_one_stays(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply(client, auth, shop_program())
    broken = shop_program()
    broken["campaigns"][1]["trigger"]["rules"][0]["where"][0]["op"] = "gte "
    broken["campaigns"][2]["reward"] = {}
    response = await client.put(PROGRAM, json=broken, headers=auth)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 3100
    assert body["problems"] == [
        'campaigns[1].trigger.rules[0].where[0].op: unknown operator "gte "',
        "campaigns[2].reward: give points, pointsPer, score or a badge",
    ]
    assert (await client.get(PROGRAM, headers=auth)).json()["version"] == 1


async def test_the_program_api_needs_the_secret_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(PROGRAM, headers={"apikey": auth["apikey"]})
    assert (response.status_code, response.json()["code"]) == (401, 1001)


async def test_points_badges_and_tiers_follow_the_events(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply(client, auth, shop_program())
    await send(client, auth, order("c-1", 155))  # welcome 20 + floor(155 / 10) = 15
    first = await balance(client, auth, "c-1")
    assert (first["totalPointsBalance"], first["totalEarnedPoints"]) == (35, 35)
    assert first["nextExpiringPointsDate"] is not None
    await send(client, auth, order("c-1", 99.9, currency="GBP"))  # no currency match
    await send(client, auth, order("c-1", 700))  # 70 → 105 earned: Silver, +50 entry reward
    assert (await balance(client, auth, "c-1"))["totalPointsBalance"] == 155
    for _ in range(3):
        await send(client, auth, {"customerId": "c-1", "events": {"write_review": {}}})
    profile = (await client.get(f"{CUSTOMERS}/c-1", headers=auth)).json()
    assert [b["badge"] for b in profile["badges"]] == ["Reviewer"]


async def test_a_campaign_capped_at_n_rewards_n_times_under_concurrency(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    capped = {
        "id": "three-orders",
        "name": "First three orders",
        "trigger": {"rules": [{"event": "place_order"}]},
        "repeat": {"maxAchievements": 3},
        "reward": {"points": 7},
    }
    await apply(client, auth, shop_program(campaigns=[shop_program()["campaigns"][0], capped]))
    responses = await asyncio.gather(
        *(client.post(EVENTS, json=order("c-2", 5), headers=auth) for _ in range(50))
    )
    assert {r.status_code for r in responses} == {200}
    assert (await balance(client, auth, "c-2"))["totalEarnedPoints"] == 20 + 3 * 7
    ledger = (
        await client.get(
            "/api/v4.0/integrations/transactions?customerId=c-2&limit=200", headers=auth
        )
    ).json()
    assert sorted(t["achievedRewardCampaignId"] for t in ledger["transactions"]) == [
        "three-orders",
        "three-orders",
        "three-orders",
        "welcome",
    ]


async def test_an_idempotent_retry_is_not_rewarded_twice(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply(client, auth, shop_program())
    headers = {**auth, "Idempotency-Key": "order-77"}
    for _ in range(3):
        response = await client.post(EVENTS, json=order("c-3", 100), headers=headers)
        assert response.status_code == 200
    assert (await balance(client, auth, "c-3"))["totalEarnedPoints"] == 30


async def test_a_request_failing_after_its_rewards_leaves_no_trace_in_the_next_ones(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer remembers reward totals between requests: a request rolled back alone
    inside its batch (savepoint) must not leave its totals behind for the next request."""
    await apply(client, auth, shop_program())
    remember = idempotency.remember

    def failing(tx: Any, account_id: int, key: str, *args: Any) -> None:
        if key == "boom":
            raise RuntimeError("fails after the campaigns ran")
        remember(tx, account_id, key, *args)

    monkeypatch.setattr(idempotency, "remember", failing)
    responses = await asyncio.gather(
        *(
            client.post(EVENTS, json=order("c-9", 100), headers={**auth, "Idempotency-Key": key})
            for key in ("k1", "boom", "k3", "boom", "k5")
        )
    )
    assert [r.status_code for r in responses] == [200, 500, 200, 500, 200]
    await send(client, auth, order("c-9", 100))
    assert (await balance(client, auth, "c-9"))["totalEarnedPoints"] == 20 + 4 * 10
    ledger = await transactions(client, auth, "c-9")
    assert len(ledger) == 5


async def test_balance_of_an_unknown_customer_is_404(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(f"{CUSTOMERS}/nobody/balance", headers=auth)
    assert (response.status_code, response.json()["code"]) == (404, 4004)


async def test_rewards_commit_with_the_events(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply(client, auth, shop_program())
    await send(client, auth, order("c-4", 50))
    rows = await runtime.reader.run(
        lambda tx: tx.all(
            "SELECT l.kind, l.points, l.campaign_id, l.campaign_version, l.balance_before,"
            " l.balance_after, e.name FROM history l JOIN events e ON e.id = l.event_id"
            " ORDER BY l.id"
        )
    )
    assert [tuple(row) for row in rows] == [
        ("Reward", 20, "welcome", 1, 0, 20, "place_order"),
        ("Reward", 5, "order-points", 1, 20, 25, "place_order"),
    ]


async def test_merged_profiles_combine_their_rewards_and_tier(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    configure_account(runtime, channel_merging="email")
    await apply(client, auth, shop_program())
    await send(client, auth, order("web-1", 400))  # 20 + 40
    for _ in range(3):
        await send(client, auth, {"customerId": "app-1", "events": {"write_review": {}}})  # 20
    linked = {**order("app-1", 10), "email": "Sam@Example.com"}
    await send(client, auth, linked)  # app-1 gets the email: +1
    await send(client, auth, {**order("web-1", 10), "email": "sam@example.com"})  # merge, +1
    merged = await balance(client, auth, "app-1")
    assert merged == {**merged, "totalPointsBalance": 82, "totalEarnedPoints": 82}
    profile = (await client.get(f"{CUSTOMERS}/web-1", headers=auth)).json()
    assert [b["badge"] for b in profile["badges"]] == ["Reviewer"]
    assert sorted(profile["linkedCustomerIds"]) == ["app-1", "web-1"]


async def test_a_merge_takes_the_rewards_of_earlier_requests_in_its_batch(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Reward rows are staged for the batch's bulk insert: a merge later in the same batch must
    move them with the profile, not leave them with the profile merged away."""
    configure_account(runtime, channel_merging="email")
    await apply(client, auth, shop_program())
    await send(client, auth, order("web-1", 10))  # the older profile: 20 + 1
    await send(client, auth, {**order("app-1", 10), "email": "sam@example.com"})  # 20 + 1
    responses = await asyncio.gather(
        client.post(EVENTS, json=order("app-1", 100), headers=auth),  # + 10
        client.post(EVENTS, json={**order("web-1", 10), "email": "sam@example.com"}, headers=auth),
    )
    assert [r.status_code for r in responses] == [200, 200]
    merged = await balance(client, auth, "web-1")
    assert (merged["totalPointsBalance"], merged["totalEarnedPoints"]) == (53, 53)
    ledger = await transactions(client, auth, "web-1")
    assert sum(entry["points"] for entry in ledger) == 53


async def test_a_read_of_the_totals_inside_a_batch_keeps_its_earlier_rewards(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Reward rows are staged for the batch's bulk write: building a webhook payload (a read
    of the totals) between two rewarded requests of the customer must not hide the first
    one's row from the second."""
    await apply(client, auth, shop_program())
    hook = {"url": "http://127.0.0.1:9/hook", "topics": ["customer.profile.updated"]}
    response = await client.post("/api/kudos/v1/webhooks", json=hook, headers=auth)
    assert response.status_code == 201, response.text
    responses = await asyncio.gather(
        client.post(EVENTS, json=order("c-1", 10), headers=auth),  # welcome 20 + 1
        client.post(EVENTS, json={**order("c-1", 10), "email": "c1@example.com"}, headers=auth),
        client.post(EVENTS, json=order("c-1", 10), headers=auth),  # + 1
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    totals = await balance(client, auth, "c-1")
    assert (totals["totalPointsBalance"], totals["totalEarnedPoints"]) == (23, 23)
    ledger = await transactions(client, auth, "c-1")
    assert sum(entry["points"] for entry in ledger) == 23


PREVIEW = "/api/v4.0/integrations/events/reward-preview"


async def test_preview_says_what_events_would_earn_and_why_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply(client, auth, shop_program())
    await send(client, auth, order("c-5", 10))  # welcome is done; 1 point
    body = {
        "customerId": "c-5",
        "events": {
            "place_order": {"order_amount": 155, "currency": "GBP"},
            "write_review": None,
            "unknown_event": {},
        },
    }
    response = await client.post(PREVIEW, json=body, headers=auth)
    assert response.status_code == 200, response.text
    preview = response.json()
    order_event, review_event, unknown = preview["events"]
    by_id = {c["campaignId"]: c for c in order_event["campaigns"]}
    assert (by_id["welcome"]["eligible"], by_id["welcome"]["reason"]) == (
        False,
        "MaxAchievementsReached",
    )
    points = by_id["order-points"]
    assert (points["eligible"], points["reason"], points["rewardPoints"]) == (
        True,
        "NoMatchingConditions",
        0,
    )
    (condition,) = points["explanation"]["rules"][0]["conditions"]
    assert condition == {
        "key": "currency",
        "op": "equals",
        "expected": "usd,eur",
        "actual": "GBP",
        "matched": False,
    }
    reviewer = {c["campaignId"]: c for c in review_event["campaigns"]}["reviewer"]
    assert (reviewer["reason"], reviewer["progress"]["wouldBePercentage"]) == (
        "ProgressOnly",
        33.33,
    )
    assert (unknown["valid"], unknown["invalidReason"]) == (False, "EventNotFound")
    assert preview["totalPoints"] == 0
    assert (await balance(client, auth, "c-5"))["totalEarnedPoints"] == 21  # unchanged


async def test_preview_never_creates_a_customer(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"customerId": "ghost", "events": {"place_order": {}}}
    response = await client.post(PREVIEW, json=body, headers=auth)
    assert (response.status_code, response.json()["code"]) == (404, 4004)
    missing = await client.post(PREVIEW, json={"customerId": "ghost"}, headers=auth)
    assert (missing.status_code, missing.json()["code"]) == (400, 3000)
    assert (await client.get(f"{CUSTOMERS}/ghost", headers=auth)).status_code == 404


async def test_points_by_hand_credit_and_debit_but_never_below_the_balance(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await send(client, auth, events_body("c-6"))  # no program: nothing earned
    url = "/api/kudos/v1/customers/c-6/points"
    credited = await client.post(url, json={"points": 40, "reason": "goodwill"}, headers=auth)
    assert credited.status_code == 200, credited.text
    assert credited.json()["pointsBalance"] == 40
    refused = await client.post(url, json={"points": -41, "reason": "too much"}, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (422, 9008)
    debited = await client.post(url, json={"points": -15, "reason": "redeemed"}, headers=auth)
    assert debited.json() == {
        "customerId": "c-6",
        "points": -15,
        "pointsBalance": 25,
        "totalEarnedPoints": 40,
    }
    assert (await balance(client, auth, "c-6"))["availablePointsBalance"] == 25
    rows = await runtime.reader.run(
        lambda tx: tx.all(
            "SELECT direction, points, remaining, balance_after FROM history"
            " WHERE kind IS NOT NULL ORDER BY id"
        )
    )
    assert [tuple(row) for row in rows] == [("+", 40, 25, 40), ("-", 15, 0, 25)]


async def test_points_by_hand_need_a_known_customer_and_a_real_amount(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = "/api/kudos/v1/customers/nobody/points"
    unknown = await client.post(url, json={"points": 5, "reason": "x"}, headers=auth)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 4004)
    await send(client, auth, events_body("c-7"))
    url = "/api/kudos/v1/customers/c-7/points"
    zero = await client.post(url, json={"points": 0, "reason": "x"}, headers=auth)
    assert (zero.status_code, zero.json()["code"]) == (422, 3003)
    no_secret = await client.post(
        url, json={"points": 5, "reason": "x"}, headers={"apikey": auth["apikey"]}
    )
    assert (no_secret.status_code, no_secret.json()["code"]) == (401, 1001)


async def test_the_read_back_endpoints_show_tiers_campaigns_activities_and_transactions(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply(client, auth, shop_program())
    await send(client, auth, order("c-8", 900))  # 20 + 90 = 110 earned: Silver (+50)
    await send(client, auth, {"customerId": "c-8", "events": {"write_review": {}}})
    tiers = (await client.get(f"{CUSTOMERS}/c-8/tier-progress", headers=auth)).json()
    assert (tiers["current"]["name"], tiers["next"], tiers["progress"]) == ("Silver", None, 160)
    progress = (await client.get(f"{CUSTOMERS}/c-8/reward-campaigns-progress", headers=auth)).json()
    by_id = {p["rewardsCampaignId"]: p for p in progress}
    assert (by_id["welcome"]["achievedCount"], by_id["welcome"]["canAchieve"]) == (1, False)
    assert (by_id["reviewer"]["completionPercentage"], by_id["reviewer"]["isUnlocked"]) == (
        33.33,
        False,
    )
    page = (await client.get(f"{CUSTOMERS}/c-8/activities?limit=2", headers=auth)).json()
    assert [a["activityType"] for a in page["activities"]] == ["TierUpgraded", "CampaignRewarded"]
    assert page["hasMore"] is True
    rest = (
        await client.get(
            f"{CUSTOMERS}/c-8/activities",
            params={"startAfter": page["activities"][-1]["activityId"]},
            headers=auth,
        )
    ).json()
    assert [a["campaignId"] for a in rest["activities"]] == ["welcome"]
    ledger = (
        await client.get("/api/v4.0/integrations/transactions?customerId=c-8", headers=auth)
    ).json()
    assert [(t["type"], t["points"], t["pointsBalanceAfter"]) for t in ledger["transactions"]] == [
        ("TierEntry", 50, 160),
        ("Reward", 90, 110),
        ("Reward", 20, 20),
    ]
    configured = (
        await client.get(
            "/api/v4.0/integrations/configurations/reward-campaigns",
            headers={"apikey": auth["apikey"]},
        )
    ).json()
    assert [c["id"] for c in configured] == ["welcome", "order-points", "reviewer"]
    tiers_config = (
        await client.get(
            "/api/v4.0/integrations/configurations/tiers", headers={"apikey": auth["apikey"]}
        )
    ).json()
    assert [t["name"] for t in tiers_config["tiers"]] == ["Bronze", "Silver"]


async def test_read_back_refuses_bad_filters(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await send(client, auth, events_body("c-9"))
    bad_type = await client.get(f"{CUSTOMERS}/c-9/activities?activityType=Nope", headers=auth)
    assert (bad_type.status_code, bad_type.json()["code"]) == (422, 3003)
    bad_limit = await client.get(
        "/api/v4.0/integrations/transactions?customerId=c-9&limit=0", headers=auth
    )
    assert (bad_limit.status_code, bad_limit.json()["code"]) == (422, 3003)
    unknown = await client.get(f"{CUSTOMERS}/nobody/tier-progress", headers=auth)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 4004)


async def test_expired_points_leave_the_balance_and_the_worker_records_them(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await apply(client, auth, shop_program(pointsExpiryDays=1))
    await send(client, auth, order("c-10", 50))  # 20 + 5, expiring in a day
    url = "/api/kudos/v1/customers/c-10/points"
    await client.post(url, json={"points": -5, "reason": "spent"}, headers=auth)
    later = iso_in(days=2)
    balance_later = await runtime.reader.run(
        lambda tx: loyalty.balance(
            tx, account_named(tx, "shop"), rewards.ProgramCache(), "c-10", now=later
        )
    )
    assert (balance_later["availablePointsBalance"], balance_later["totalEarnedPoints"]) == (
        0,
        25,
    )
    assert await runtime.writer.submit(rewards.ExpirePoints(now=later)) == 2
    assert await runtime.writer.submit(rewards.ExpirePoints(now=later)) == 0  # done once
    rows = await runtime.reader.run(
        lambda tx: tx.all(
            "SELECT kind, direction, points, balance_after FROM history"
            " WHERE kind IS NOT NULL ORDER BY id"
        )
    )
    assert [tuple(row) for row in rows][-1] == ("Expiry", "-", 20, 0)
    assert (await balance(client, auth, "c-10"))["totalPointsBalance"] == 0


def iso_in(*, days: int) -> str:
    moment = datetime.now(UTC) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_a_campaign_whose_rules_change_starts_its_progress_over(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    program = shop_program()
    await apply(client, auth, program)
    review = {"customerId": "c-9", "events": {"write_review": {"rating": 4}}}
    for _ in range(2):
        await send(client, auth, review)  # the Reviewer badge counts 2 of 3 reviews
    reviewer = program["campaigns"][2]
    assert reviewer["id"] == "reviewer"
    reviewer["trigger"] = {
        "match": "all",
        "rules": [{"event": "write_review", "after": 3}, {"event": "place_order"}],
    }
    await apply(client, auth, program)
    await send(client, auth, review)  # the old progress (one rule) does not fit: counts anew
    progress = await client.get(f"{CUSTOMERS}/c-9/reward-campaigns-progress", headers=auth)
    assert progress.status_code == 200, progress.text
    found = next(c for c in progress.json() if c["rewardsCampaignId"] == "reviewer")
    assert found["achievedCount"] == 0 and found["completionPercentage"] < 50
    await send(client, auth, review)
    await send(client, auth, review)
    await send(client, auth, order("c-9", 5))
    customer = await client.get(f"{CUSTOMERS}/c-9", headers=auth)
    assert [b["badge"] for b in customer.json()["badges"]] == ["Reviewer"]

"""The analytics API as a shop uses it: both keys, every problem of a bad query named, large
or slow queries refused whole, CSV, the loyalty figures against the ledger, and one account's
numbers never in another's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kudos.analytics import raw
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import accounts
from tests.burn.conftest import apply_program, burn_program, grant

EVENTS = "/api/v4.0/integrations/events"
QUERY = "/api/kudos/v1/analytics/query"
ANALYTICS = "/api/kudos/v1/analytics"
RECENT = {"last": "2d"}  # events are stamped now: two local days hold them, even at midnight


def trends(*series: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"kind": "trends", "series": list(series), "dateRange": RECENT, **more}


async def send(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str, **events: Any
) -> None:
    response = await client.post(
        EVENTS, json={"customerId": customer, "events": events}, headers=auth
    )
    assert response.status_code == 200, response.text


async def ask(
    client: httpx.AsyncClient, auth: dict[str, str], body: Any, *, status: int = 200
) -> dict[str, Any]:
    response = await client.post(QUERY, json=body, headers=auth)
    assert response.status_code == status, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_analytics_need_the_secret_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    alone = {"apikey": auth["apikey"]}
    response = await client.post(QUERY, json=trends({"event": "x"}), headers=alone)
    assert (response.status_code, response.json()["code"]) == (401, 1001)
    response = await client.get(f"{ANALYTICS}/summary", headers=alone)
    assert (response.status_code, response.json()["code"]) == (401, 1001)
    wrong = {**auth, "secretkey": "nope"}
    assert (await client.get(f"{ANALYTICS}/points", headers=wrong)).status_code == 401


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ([1, 2], ["(body): a JSON object with a kind"]),
        (
            {"kind": "pie"},
            ["kind: unknown kind 'pie' (one of trends, funnel, retention, lifecycle, stickiness)"],
        ),
        (
            trends({"event": "", "math": "mode"}, {"event": "a", "math": "sum"}),
            [
                "series[0].event: an event name of 1 to 100 characters",
                "series[0].math: unknown math 'mode' (one of count, uniqueCustomers,"
                " weeklyActive, monthlyActive, sum, avg, min, max, median, p90, p95, p99)",
                "series[1].property: the metadata key sum reads",
            ],
        ),
        (
            {**trends({"event": "a"}), "dateRange": {"from": "2026-13-01", "to": "x"}},
            [
                "dateRange.from: '2026-13-01' is not an ISO 8601 date or date-time",
                "dateRange.to: 'x' is not an ISO 8601 date or date-time",
            ],
        ),
        (
            trends(
                {"event": "a"},
                filters=[
                    {"key": "k", "op": "between", "value": [3, 1]},
                    {"key": "k", "op": "repeatedValue", "value": 2},
                    {"key": "k", "op": "gte", "value": {"deep": [1]}},
                ],
            ),
            [
                "filters[0].value: between needs min <= max",
                "filters[1].op: repeatedValue aggregates: not a filter",
                "filters[2].value: a string, number or boolean, or a list of them",
            ],
        ),
        (
            trends({"event": "a"}, breakdown={"property": "p", "limit": 101}),
            ["breakdown.limit: a whole number from 1 to 100"],
        ),
        (
            {"kind": "funnel", "steps": [{"event": "a"}], "window": {"value": 91, "unit": "day"}},
            ["steps: a list of 2 to 10 steps", "window: at most 90 days"],
        ),
        (
            {"kind": "retention", "periods": 61, "cohortEvent": "$nope"},
            ["cohortEvent: unknown special event '$nope'", "periods: a whole number from 1 to 60"],
        ),
        (
            {"kind": "trends", "series": [{"event": "a"}], "dateRange": {"last": "0d"}},
            ["dateRange.last: a count and a unit, such as 30d, 12w, 24h or 6m"],
        ),
    ],
)
async def test_a_bad_query_names_each_problem(
    client: httpx.AsyncClient, auth: dict[str, str], body: Any, problems: list[str]
) -> None:
    answer = await ask(client, auth, body, status=422)
    assert answer["code"] == 3030
    for problem in problems:
        assert any(found.startswith(problem) for found in answer["problems"]), answer["problems"]


@pytest.mark.parametrize(
    "body",
    [
        # 60 days of hours: 1,440 buckets
        {**trends({"event": "a"}), "interval": "hour", "dateRange": {"last": "60d"}},
        # a filter is a raw scan: at most 92 days
        {
            **trends({"event": "a"}),
            "filters": [{"key": "k", "op": "exists"}],
            "dateRange": {"last": "100d"},
        },
        {
            "kind": "funnel",
            "steps": [{"event": "a"}, {"event": "b"}],
            "dateRange": {"last": "90d"},
            "window": {"value": 5, "unit": "week"},
        },
    ],
)
async def test_a_query_too_large_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    assert (await ask(client, auth, body, status=422))["code"] == 3031


async def test_a_query_past_its_budget_stops(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await send(client, auth, "ann", view={"n": 1}, buy=None)
    monkeypatch.setattr(raw, "TIME_BUDGET_SECONDS", 0.0)
    funnel = {"kind": "funnel", "steps": [{"event": "view"}, {"event": "buy"}], "dateRange": RECENT}
    assert (await ask(client, auth, funnel, status=422))["code"] == 3032
    percentile = trends({"event": "view", "math": "p90", "property": "n"})
    assert (await ask(client, auth, percentile, status=422))["code"] == 3032
    # Rollups read a few rows: no budget to spend.
    assert (await ask(client, auth, trends({"event": "view"})))["series"][0]["total"] == 1


async def test_an_answer_as_csv(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await send(client, auth, "ann", view={"price": 5})
    await send(client, auth, "bob", view={"price": 7.5})
    body = trends(
        {"event": "view"}, {"event": "view", "math": "sum", "property": "price"}, interval="day"
    )
    response = await client.post(QUERY, json=body, headers={**auth, "accept": "text/csv"})
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "bucket,view · count,view · sum(price)"
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == 2
    assert sum(float(line.split(",")[2]) for line in lines[1:]) == 12.5


async def test_loyalty_figures_follow_the_ledger(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply_program(client, auth, burn_program())
    for customer in ("ann", "bob"):
        await send(client, auth, customer, place_order={"amount": 10})
    await send(client, auth, "ann", place_order={"amount": 3})  # first-order: won once only
    await grant(client, auth, "ann", 30, "t-1")
    await grant(client, auth, "bob", -20, "t-2")
    summary = (await client.get(f"{ANALYTICS}/summary", headers=auth)).json()
    points = summary["points"]
    assert points["issued"]["value"] == 130
    assert points["issuedBySource"] == {
        "ManualReward": {"value": 30, "previous": 0},
        "Reward": {"value": 100, "previous": 0},
    }
    assert points["otherDebits"]["value"] == 20
    assert points["outstanding"] == {"value": 110, "previous": 0}
    assert points["outstandingValue"] == {"amount": 11, "currency": "USD"}
    assert summary["members"]["enrolled"]["value"] == 2
    assert summary["members"]["new"]["value"] == 2
    assert summary["members"]["active"]["value"] == 2
    assert summary["events"]["value"] == 3
    tiers = {row["tier"]: row["customers"] for row in summary["tiers"]}
    assert sum(tiers.values()) == 2
    flows = (
        await client.get(f"{ANALYTICS}/points", params={"interval": "day"}, headers=auth)
    ).json()
    assert sum(flows["issued"]) == 130 and flows["outstanding"][-1] == 110
    assert flows["outstandingValue"][-1] == 11
    campaign = (
        await client.get(
            f"{ANALYTICS}/campaigns/first-order", params={"interval": "day"}, headers=auth
        )
    ).json()
    assert campaign["totals"] == {"achievements": 2, "points": 100, "capHits": 1}
    assert sum(campaign["participants"]) == 2


async def test_an_account_sees_only_its_own(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await send(client, auth, "ann", view={"price": 5})
    other = run_in_transaction(
        runtime.db, lambda tx: accounts.create(tx, runtime.context.keyring, "other")
    )
    theirs = {"apikey": other.api_key, "secretkey": other.secret_key}
    body = trends(
        {"event": "view"},
        {"event": "view", "math": "uniqueCustomers"},
        {"event": "view", "math": "max", "property": "price"},
    )
    mine, their = await ask(client, auth, body), await ask(client, theirs, body)
    assert [s["total"] for s in mine["series"]] == [1, 1, 5]
    assert [s["total"] for s in their["series"]] == [0, 0, None]
    summary = (await client.get(f"{ANALYTICS}/summary", headers=theirs)).json()
    assert summary["events"]["value"] == 0 and summary["members"]["enrolled"]["value"] == 0


async def test_active_customers_by_the_hour_are_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = trends({"event": "view", "math": "weeklyActive"}, interval="hour")
    answer = await ask(client, auth, body, status=422)
    assert answer["problems"] == [
        "interval: weeklyActive and monthlyActive need day, week or month"
    ]
    body["interval"] = "auto"  # two days would be hours: a rolling week ends with a day
    assert (await ask(client, auth, body))["interval"] == "day"

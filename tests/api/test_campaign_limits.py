"""Campaigns against hostile input, on both stores: numbers that overflow, programs that
cannot be loaded, and progress that would grow without bound."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.cli import main
from kudos.domain.model import Credentials, utc_now
from kudos.domain.payload import EventBatch
from kudos.rules.engine import compile_program
from kudos.rules.schema import MAX_AWARD, MAX_REPEATED_VALUES, MAX_TOTAL, load_program
from kudos.services import accounts, rewards
from kudos.services import program as program_service
from kudos.services.ingest import IngestEvents
from kudos.storage import programs
from kudos.storage import rewards as reward_rows
from kudos.storage.profiles import decode_json, encode
from kudos.storage.writer import Call
from tests.api.test_campaigns import apply, balance, iso_in, send, transactions
from tests.conftest import SERVER_KEY, configure_account

EVENTS = "/api/v4.0/integrations/events"
CUSTOMERS = "/api/v4.0/integrations/customers"
PREVIEW = "/api/v4.0/integrations/events/reward-preview"
PROGRAM = "/api/kudos/v1/program"
HUGE = 10**309  # 309 digits: past the float range


def campaign(cid: str, *conditions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "name": cid.title(),
        "trigger": {"rules": [{"event": fields.pop("event", "place_order"), "where": conditions}]},
        "repeat": {"maxAchievements": -1},
        "reward": {"points": 1},
        **fields,
    }


def per_amount(cid: str = "per-amount") -> dict[str, Any]:
    return campaign(cid, reward={"pointsPer": {"key": "amount", "every": 10, "points": 1}})


def order(customer: str, amount: Any, **metadata: Any) -> dict[str, Any]:
    return {"customerId": customer, "events": {"place_order": {"amount": amount, **metadata}}}


async def customer_events(client: httpx.AsyncClient, auth: dict[str, str], customer: str) -> int:
    """How many events the customer has stored (0 when the customer does not exist)."""
    response = await client.get(
        f"{CUSTOMERS}/{customer}/events", params={"limit": 1000}, headers=auth
    )
    if response.status_code == 404:
        return 0
    assert response.status_code == 200, response.text
    return len(response.json()["events"])


async def read(client: httpx.AsyncClient, auth: dict[str, str], path: str) -> Any:
    response = await client.get(path, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


# --- numbers that overflow ------------------------------------------------------------------


async def test_an_absurd_amount_earns_a_bounded_reward_and_the_event_is_stored(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await apply(client, auth, {"campaigns": [per_amount()]})
    await send(client, auth, order("c-1", 1e20))
    await send(client, auth, order("c-1", 1.7e308))
    totals = await balance(client, auth, "c-1")
    assert totals["totalEarnedPoints"] == totals["totalPointsBalance"] == 2 * MAX_AWARD
    assert await customer_events(client, auth, "c-1") == 2


async def test_a_309_digit_number_is_stored_previewed_and_meets_no_numeric_condition(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    program = {
        "campaigns": [
            campaign("gte", {"key": "amount", "op": "gte", "value": 100}),
            campaign("equals", {"key": "amount", "op": "equals", "value": 150}),
            campaign("sum", {"key": "amount", "op": "accumulativeTotal", "value": 100}),
            per_amount(),
        ]
    }
    await apply(client, auth, program)
    await send(client, auth, order("c-2", HUGE))
    await send(client, auth, order("c-2", -HUGE))
    assert await customer_events(client, auth, "c-2") == 2
    assert (await balance(client, auth, "c-2"))["totalEarnedPoints"] == 0
    response = await client.post(PREVIEW, json=order("c-2", HUGE), headers=auth)
    assert response.status_code == 200, response.text
    (event,) = response.json()["events"]
    assert event["totalPoints"] == 0
    assert {c["reason"] for c in event["campaigns"]} == {"NoMatchingConditions", "Rewarded"}
    progress = await read(client, auth, f"{CUSTOMERS}/c-2/reward-campaigns-progress")
    assert [p["completionPercentage"] for p in progress] == [0.0, 0.0, 0.0, 0.0]


async def test_running_sums_and_spend_stay_finite_and_the_customer_keeps_working(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    program = {
        "tiering": {"method": "spend", "event": "place_order", "key": "amount"},
        "tiers": [
            {"order": 1, "name": "Bronze", "minProgress": 0},
            {"order": 2, "name": "Gold", "minProgress": MAX_TOTAL},
        ],
        "campaigns": [
            campaign(
                "spend-1000",
                {"key": "amount", "op": "accumulativeTotal", "value": 1000},
                repeat={"maxAchievements": 5},
            )
        ],
    }
    await apply(client, auth, program)
    for amount in (1.7e308, 1.7e308, 10, -1.7e308, 1.7e308):
        await send(client, auth, order("c-3", amount))
    tiers = await read(client, auth, f"{CUSTOMERS}/c-3/tier-progress")
    assert (tiers["progress"], tiers["current"]["name"]) == (float(MAX_TOTAL), "Gold")
    (found,) = await read(client, auth, f"{CUSTOMERS}/c-3/reward-campaigns-progress")
    assert (found["achievedCount"], found["completionPercentage"]) == (5, 100.0)
    preview = await client.post(PREVIEW, json=order("c-3", 1.7e308), headers=auth)
    assert preview.status_code == 200, preview.text
    assert (await balance(client, auth, "c-3"))["totalEarnedPoints"] == 5
    assert await customer_events(client, auth, "c-3") == 5


async def test_a_credit_never_takes_a_customer_past_the_ceiling(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await send(client, auth, {"customerId": "c-4", "events": {"sign_up": {}}})  # no program
    profile = await read(client, auth, f"{CUSTOMERS}/c-4")
    account = run_in_transaction(runtime.db, lambda tx: accounts.named(tx, "shop"))
    near = reward_rows.CustomerTotals(
        account.id, profile["gameballId"], points_balance=MAX_TOTAL - 5, points_earned=MAX_TOTAL - 5
    )
    run_in_transaction(runtime.db, lambda tx: reward_rows.save_totals(tx, near, utc_now()))
    await apply(client, auth, {"campaigns": [campaign("ten", reward={"points": 10, "score": 1})]})
    await send(client, auth, order("c-4", 1))  # 10 earned, 5 fit
    await send(client, auth, order("c-4", 1))  # none fit: the activity alone
    totals = await balance(client, auth, "c-4")
    assert totals["totalPointsBalance"] == totals["totalEarnedPoints"] == MAX_TOTAL
    ledger = await transactions(client, auth, "c-4")
    assert [(t["points"], t["pointsBalanceAfter"]) for t in ledger] == [(5, MAX_TOTAL)]
    activities = await read(client, auth, f"{CUSTOMERS}/c-4/activities")
    assert [a["points"] for a in activities["activities"]] == [0, 5]
    url = "/api/kudos/v1/customers/c-4/points"
    refused = await client.post(url, json={"points": 1, "reason": "more"}, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (422, 3003)
    debited = await client.post(url, json={"points": -1, "reason": "spent"}, headers=auth)
    assert debited.status_code == 200, debited.text


# --- programs that cannot be stored or loaded -----------------------------------------------

# A body the API's JSON decoder already refuses (3003, 3016) never reaches the program check;
# ``test_applying_refuses_what_no_store_could_read_back`` runs that check on the same values.
UNSTORABLE = {
    "infinity": ('{"pointsExpiryDays": 1e400}', 3003),
    "nan": ('{"tiers": [{"order": 1, "name": "B", "minProgress": NaN}]}', 3016),
    "expiry past any date": ('{"pointsExpiryDays": 3000000}', 3100),
    "NUL in a name": (
        '{"campaigns": [{"id": "a", "name": "a\\u0000b", "reward": {"points": 1},'
        ' "trigger": {"rules": [{"event": "e"}]}}]}',
        3003,
    ),
    "lone surrogate": ('{"tiers": [{"order": 1, "name": "\\ud800", "minProgress": 0}]}', 3016),
    "309-digit value": (
        '{"campaigns": [{"id": "a", "name": "A", "reward": {"points": 1}, "trigger": {"rules":'
        ' [{"event": "e", "where": [{"key": "k", "op": "gte", "value": 1' + "0" * 309 + "}]}]}}]}",
        3100,
    ),
    "schedule without a UTC date": (
        '{"campaigns": [{"id": "a", "name": "A", "reward": {"points": 1}, "trigger": {"rules":'
        ' [{"event": "e"}]}, "schedule": {"end": "9999-12-31T23:00:00-05:00"}}]}',
        3100,
    ),
}


@pytest.mark.parametrize(("body", "code"), UNSTORABLE.values(), ids=UNSTORABLE.keys())
async def test_a_program_that_could_not_be_stored_or_loaded_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], body: str, code: int
) -> None:
    await apply(client, auth, {"campaigns": [per_amount()]})
    headers = {**auth, "content-type": "application/json"}
    response = await client.put(PROGRAM, content=body.encode(), headers=headers)
    assert (response.status_code, response.json()["code"]) == (
        422 if code != 3016 else 400,
        code,
    ), response.text
    shown = await read(client, auth, PROGRAM)
    assert (shown["version"], shown["program"]["campaigns"][0]["id"]) == (1, "per-amount")


def named_campaign(name: str) -> dict[str, Any]:
    return {
        "id": "a",
        "name": name,
        "trigger": {"rules": [{"event": "e"}]},
        "reward": {"points": 1},
    }


@pytest.mark.parametrize(
    "document",
    [
        {"pointsExpiryDays": math.inf},
        {"tiers": [{"order": 1, "name": "B", "minProgress": math.nan}]},
        {"campaigns": [named_campaign("a\x00b")]},
        {"campaigns": [named_campaign("\ud800")]},
        {"tiering": {"method": "points", "ev\x00ent": "login"}},
        {"campaigns": [{**named_campaign("A"), "reward": {"points": 10**400}}]},
    ],
    ids=["infinity", "nan", "NUL", "lone surrogate", "NUL in a key", "huge integer"],
)
def test_applying_refuses_what_no_store_could_read_back(
    runtime: Runtime, keys: object, document: dict[str, Any]
) -> None:
    def apply_document(tx: Any) -> None:
        program_service.apply_program(tx, accounts.named(tx, "shop"), document)

    with pytest.raises(errors.ProgramInvalid) as refused:
        run_in_transaction(runtime.db, apply_document)
    assert all(": " in problem for problem in refused.value.problems)
    json.dumps(refused.value.problems, ensure_ascii=False).encode()  # the answer can be sent
    account = run_in_transaction(runtime.db, lambda tx: accounts.named(tx, "shop"))
    assert run_in_transaction(runtime.db, lambda tx: programs.current(tx, account.id)) is None


CLI_UNSTORABLE = {
    "yaml-inf.yaml": "pointsExpiryDays: .inf\n",
    "json-1e400.json": '{"tiers": [{"order": 1, "name": "B", "minProgress": 1e400}]}',
    "yaml-nul.yaml": 'tiers: [{order: 1, name: "a\\0b", minProgress: 0}]\n',
    "expiry.yaml": "pointsExpiryDays: 3000000\n",
    "yaml-alias-cycle.yaml": "campaigns: &a [*a]\n",  # endless through its alias
}


@pytest.mark.parametrize(("name", "text"), CLI_UNSTORABLE.items(), ids=CLI_UNSTORABLE.keys())
def test_the_cli_refuses_the_same_programs(
    database_url: str, tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    runner = CliRunner()
    env = {"KUDOS_SERVER_KEY": SERVER_KEY}
    for command in (["migrate"], ["accounts", "create", "shop"]):
        done = runner.invoke(main, [*command, "--db", database_url], env=env)
        assert done.exit_code == 0, done.output
    checked = runner.invoke(main, ["program", "check", str(path)], env=env)
    assert checked.exit_code == 1 and "the program is invalid" in checked.output
    applied = runner.invoke(
        main, ["program", "apply", str(path), "--account", "shop", "--db", database_url], env=env
    )
    assert applied.exit_code == 1 and "the program is invalid" in applied.output
    shown = runner.invoke(main, ["program", "show", "--account", "shop", "--db", database_url])
    assert json.loads(shown.output)["version"] == 0


async def test_a_program_whose_stored_form_would_not_read_back_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await apply(client, auth, {"campaigns": [per_amount()]})
    insert = programs.insert

    def lossy(tx: Any, account_id: int, version: int, document: Any, now: str) -> None:
        insert(tx, account_id, version, {**document, "campaigns": []}, now)  # a store that loses

    monkeypatch.setattr(programs, "insert", lossy)
    response = await client.put(PROGRAM, json={"campaigns": [per_amount("other")]}, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 3100)
    assert (await read(client, auth, PROGRAM))["version"] == 1


BROKEN = {  # what an earlier version stored and this one refuses
    "pointsExpiryDays": 3_000_000,
    "tiering": {"method": "eventCount", "event": "login"},
    "tiers": [{"order": 1, "name": "B", "minProgress": 0}],
    "campaigns": [campaign("orders", reward={"points": 5})],
}


def store_program(runtime: Runtime, account_name: str, document: Any) -> None:
    """Write a program straight to the store, as an earlier version could have."""

    def insert(tx: Any) -> None:
        account = accounts.named(tx, account_name)
        version = programs.current_version(tx, account.id) + 1
        programs.insert(tx, account.id, version, document, utc_now())

    run_in_transaction(runtime.db, insert)


async def test_a_program_that_cannot_be_loaded_fails_only_the_requests_it_concerns(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store_program(runtime, "shop", BROKEN)
    for _ in range(3):
        await send(client, auth, {"customerId": "c-5", "events": {"write_review": {}}})
    for named in ("place_order", "login"):
        refused = await client.post(
            EVENTS, json={"customerId": "c-5", "events": {named: {}}}, headers=auth
        )
        assert (refused.status_code, refused.json()["code"]) == (500, 5001)
    assert await customer_events(client, auth, "c-5") == 3
    for path in (
        f"{CUSTOMERS}/c-5/tier-progress",
        f"{CUSTOMERS}/c-5/reward-campaigns-progress",
        "/api/v4.0/integrations/configurations/reward-campaigns",
        "/api/v4.0/integrations/configurations/tiers",
    ):
        answer = await client.get(path, headers=auth)
        assert (answer.status_code, answer.json()["code"]) == (500, 5001), path
    preview = await client.post(PREVIEW, json=order("c-5", 10), headers=auth)
    assert (preview.status_code, preview.json()["code"]) == (500, 5001)
    assert (await balance(client, auth, "c-5"))["totalPointsBalance"] == 0
    logged = [r for r in caplog.records if "cannot be loaded" in r.getMessage()]
    assert len(logged) == 1 and "pointsExpiryDays" in logged[0].getMessage()
    await apply(client, auth, {"campaigns": [campaign("orders", reward={"points": 5})]})
    await send(client, auth, order("c-5", 10))
    assert (await balance(client, auth, "c-5"))["totalPointsBalance"] == 5


async def test_when_the_names_a_broken_program_concerns_are_unknown_every_event_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    store_program(runtime, "shop", {"campaigns": [{"id": "x", "trigger": "place_order"}]})
    refused = await client.post(
        EVENTS, json={"customerId": "c-6", "events": {"write_review": {}}}, headers=auth
    )
    assert (refused.status_code, refused.json()["code"]) == (500, 5001)
    assert await customer_events(client, auth, "c-6") == 0


async def test_one_accounts_broken_program_never_fails_another_accounts_requests(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    other_keys = run_in_transaction(
        runtime.db, lambda tx: accounts.create(tx, runtime.context.keyring, "other")
    )
    other = {"apikey": other_keys.api_key, "secretkey": other_keys.secret_key}
    for name in ("shop", "other"):
        configure_account(runtime, name, rate_limit="off")
    await apply(client, other, {"campaigns": [campaign("orders", reward={"points": 5})]})
    store_program(runtime, "shop", BROKEN)
    requests = []
    for i in range(150):
        requests.append((other, order(f"o-{i % 30}", 10), 200))
        concerned = i % 2 == 0
        events: dict[str, Any] = {"place_order": {}} if concerned else {"write_review": {}}
        requests.append(
            (auth, {"customerId": f"s-{i % 30}", "events": events}, 500 if concerned else 200)
        )
    responses = await asyncio.gather(
        *(client.post(EVENTS, json=body, headers=headers) for headers, body, _ in requests)
    )
    assert [r.status_code for r in responses] == [status for _, _, status in requests]
    assert {r.json()["code"] for r in responses if r.status_code == 500} == {5001}
    stored = [await customer_events(client, other, f"o-{i}") for i in range(30)]
    assert sum(stored) == 150
    assert (
        sum([(await balance(client, other, f"o-{i}"))["totalEarnedPoints"] for i in range(30)])
        == 750
    )
    assert sum([await customer_events(client, auth, f"s-{i}") for i in range(30)]) == 75


# --- progress that stays bounded ------------------------------------------------------------

VALUES_PROGRAM = {
    "campaigns": [
        campaign("same-3", {"key": "sku", "op": "repeatedValue", "value": 3}),
        campaign("five-kinds", {"key": "sku", "op": "differentValues", "value": 5}),
        {  # never achieved (its second rule never counts): its values pile up
            **campaign("held"),
            "trigger": {
                "match": "all",
                "rules": [
                    {
                        "event": "place_order",
                        "where": [{"key": "sku", "op": "repeatedValue", "value": 2}],
                    },
                    {"event": "never_sent"},
                ],
            },
        },
    ]
}


def progress_bytes(runtime: Runtime) -> int:
    """The size of the JSON of the one customer's stored progress."""
    (row,) = run_in_transaction(
        runtime.db, lambda tx: tx.all("SELECT progress FROM customer_rewards")
    )
    return len(encode(decode_json(row[0])))


async def test_ten_thousand_distinct_values_leave_the_progress_row_bounded(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    configure_account(runtime, rate_limit="off")
    await apply(client, auth, VALUES_PROGRAM)
    await send(client, auth, order("c-7", 1, sku="first"))
    profile = await read(client, auth, f"{CUSTOMERS}/c-7")
    account = run_in_transaction(runtime.db, lambda tx: accounts.named(tx, "shop"))
    compiled = run_in_transaction(runtime.db, lambda tx: rewards.load_compiled(tx, account.id))
    assert compiled is not None
    long_tail = "-" + "x" * 1000
    events = [
        (0, "place_order", {"sku": f"sku-{i}{long_tail}" if i % 50 else "favourite"})
        for i in range(10_000)
    ]

    def evaluate(tx: Any) -> None:
        rewards.apply_campaigns(
            tx,
            compiled,
            account_id=account.id,
            profile_id=profile["gameballId"],
            customer_id="c-7",
            events=events,
            now=utc_now(),
        )

    run_in_transaction(runtime.db, evaluate)
    size = progress_bytes(runtime)
    assert size < (2 * MAX_REPEATED_VALUES + 5) * 40
    progress = await read(client, auth, f"{CUSTOMERS}/c-7/reward-campaigns-progress")
    achieved = {p["rewardsCampaignId"]: p["achievedCount"] for p in progress}
    assert achieved == {"same-3": 200 // 3, "five-kinds": 10_001 // 5, "held": 0}
    for i in range(300):  # through the API too: the row does not grow
        await send(client, auth, order("c-7", 1, sku=f"api-{i}{long_tail}"))
    assert progress_bytes(runtime) <= size + 100


async def test_progress_written_by_an_earlier_version_still_loads_and_is_repaired(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    await send(client, auth, {"customerId": "c-8", "events": {"sign_up": {}}})
    profile = await read(client, auth, f"{CUSTOMERS}/c-8")
    account = run_in_transaction(runtime.db, lambda tx: accounts.named(tx, "shop"))
    many = {f"v{i}": 1 for i in range(5000)} | {"y" * 2**19: 2}  # a 512 KiB value
    old = reward_rows.CustomerTotals(
        account.id,
        profile["gameballId"],
        spend=math.inf,
        progress={
            "sum": [0, None, 0, [1, {"0": None}, {}]],  # overflowed, stored as null
            "same-3": [0, None, 0, [5000, {}, {"0": many}]],
        },
    )
    run_in_transaction(runtime.db, lambda tx: reward_rows.save_totals(tx, old, utc_now()))
    program = {
        "tiering": {"method": "spend", "event": "place_order", "key": "amount"},
        "tiers": [{"order": 1, "name": "Bronze", "minProgress": 0}],
        "campaigns": [
            campaign("sum", {"key": "amount", "op": "accumulativeTotal", "value": 100}),
            VALUES_PROGRAM["campaigns"][0],
        ],
    }
    await apply(client, auth, program)
    tiers = await read(client, auth, f"{CUSTOMERS}/c-8/tier-progress")
    assert tiers["progress"] == float(MAX_TOTAL)
    progress = await read(client, auth, f"{CUSTOMERS}/c-8/reward-campaigns-progress")
    assert [p["completionPercentage"] for p in progress] == [0.0, 66.67]
    await send(client, auth, order("c-8", 150, sku="Y" * 2**19))
    achieved = {
        p["rewardsCampaignId"]: p["achievedCount"]
        for p in await read(client, auth, f"{CUSTOMERS}/c-8/reward-campaigns-progress")
    }
    assert achieved == {"sum": 1, "same-3": 1}
    assert progress_bytes(runtime) < 6000


async def test_the_old_limits_program_is_refused_with_the_limits_it_passes(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    conditions = [{"key": f"k{i}", "op": "exists"} for i in range(10)]
    rules = [{"event": "place_order", "where": conditions} for _ in range(10)]
    program = {"campaigns": [{**campaign(f"c{i}"), "trigger": {"rules": rules}} for i in range(40)]}
    response = await client.put(PROGRAM, json=program, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 3100)
    assert response.json()["problems"] == [
        "campaigns: at most 300 rules in all (400)",
        "campaigns: at most 1000 conditions in all (4000)",
    ]
    compile_program(load_program({"campaigns": program["campaigns"][:10]}), 1)  # within them


async def test_points_expire_whatever_the_stored_program_holds(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Expiry is one piece of work for every account: a stored program this version cannot
    load (here with tiers it cannot read) must not fail it."""
    tiers = [{"order": 1, "name": "Bronze", "minProgress": 0}]
    program = {"pointsExpiryDays": 1, "tiers": tiers, "campaigns": [campaign("ten")]}
    await apply(client, auth, program)
    hook = {"url": "http://127.0.0.1:9/hook", "topics": ["customer.profile.updated"]}
    created = await client.post("/api/kudos/v1/webhooks", json=hook, headers=auth)
    assert created.status_code == 201, created.text
    await send(client, auth, order("c-10", 1))  # 1 point expiring in a day, tier Bronze
    store_program(runtime, "shop", {**program, "tiers": [{"order": "first"}, "Bronze"]})
    assert await runtime.writer.submit(rewards.ExpirePoints(now=iso_in(days=2))) == 1
    assert (await balance(client, auth, "c-10"))["totalPointsBalance"] == 0


async def test_writes_that_need_a_program_that_cannot_be_loaded_are_refused_alone(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """A manual credit and a merge of profiles recompute the tier: with the program in force
    unreadable they are refused (5001) and change nothing."""
    configure_account(runtime, channel_merging="email")
    await send(client, auth, {"customerId": "web-1", "events": {"write_review": {}}})
    await send(client, auth, {"customerId": "app-1", "events": {"write_review": {}}})
    store_program(runtime, "shop", BROKEN)
    url = "/api/kudos/v1/customers/web-1/points"
    credited = await client.post(url, json={"points": 5, "reason": "goodwill"}, headers=auth)
    assert (credited.status_code, credited.json()["code"]) == (500, 5001)
    linking = {"customerId": "web-1", "email": "sam@example.com", "events": {"write_review": {}}}
    await send(client, auth, linking)  # no merge yet: one profile has the email
    merging = {**linking, "customerId": "app-1"}
    refused = await client.post(EVENTS, json=merging, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (500, 5001)
    assert await customer_events(client, auth, "app-1") == 1
    web, app = [await read(client, auth, f"{CUSTOMERS}/{c}") for c in ("web-1", "app-1")]
    assert web["gameballId"] != app["gameballId"]
    assert (await balance(client, auth, "web-1"))["totalPointsBalance"] == 0


async def test_an_account_applies_at_most_ten_programs_a_minute(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    """Checking and compiling the largest program costs tens of milliseconds: a tenant
    cannot make the server do it without end."""
    runtime.context.clock = lambda: 6_000.0  # one minute's window for the whole test
    for n in range(10):
        await apply(client, auth, {"campaigns": [per_amount(f"c{n}")]})
    refused = await client.put(PROGRAM, json={"campaigns": [per_amount("late")]}, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (429, 2003)
    assert int(refused.headers["retry-after"]) >= 1
    assert (await read(client, auth, PROGRAM))["version"] == 10  # nothing stored
    runtime.context.clock = lambda: 6_060.0  # the next minute
    assert await apply(client, auth, {"campaigns": [per_amount("next")]}) == 11


async def test_an_account_keeps_its_last_hundred_program_versions(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(program_service, "APPLY_WINDOWS", ())  # no rate for this test
    monkeypatch.setattr(program_service, "KEPT_VERSIONS", 3)
    for n in range(5):
        await apply(client, auth, {"campaigns": [per_amount(f"c{n}")]})

    def versions(tx: Any) -> list[int]:
        account = accounts.named(tx, "shop")
        rows = tx.all("SELECT version FROM programs WHERE account_id = ?", (account.id,))
        return sorted(row[0] for row in rows)

    assert run_in_transaction(runtime.db, versions) == [3, 4, 5]
    assert (await read(client, auth, PROGRAM))["program"]["campaigns"][0]["id"] == "c4"


async def test_a_program_is_checked_and_compiled_off_the_event_loop(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    prepared = program_service.prepared

    def spy(document: Any) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)  # on a thread that runs an event loop
        except RuntimeError:
            seen.append(False)
        return prepared(document)

    monkeypatch.setattr(program_service, "prepared", spy)
    monkeypatch.setattr(program_service, "load_program", _not_on_the_loop(load_program))
    monkeypatch.setattr(rewards, "load_program", _not_on_the_loop(load_program))
    await apply(client, auth, {"campaigns": [per_amount()]})
    assert seen == [False]
    send_body = {"customerId": "off-loop", "events": {"place_order": {"amount": 30}}}
    await send(client, auth, send_body)  # the writer finds the program compiled already
    assert (await balance(client, auth, "off-loop"))["totalPointsBalance"] == 3


def _not_on_the_loop(load: Any) -> Any:
    def checked(document: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return load(document)
        raise AssertionError("a program was validated on the event loop")

    return checked


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # max_page_count fills it
async def test_a_program_version_that_rolled_back_is_never_run(
    client: httpx.AsyncClient, auth: dict[str, str], keys: Any, runtime: Runtime
) -> None:
    """A batch reads the program it applied itself, then rolls back (here the disk is full):
    the next program applied takes the same version number, and must be the one that runs
    (the cache knows programs by version and time applied, not by version alone)."""

    def reward(points: int) -> dict[str, Any]:
        return {"campaigns": [campaign("orders", reward={"points": points})]}

    await apply(client, auth, reward(1))
    body = {"customerId": "c1", "events": {"place_order": {}}}
    await send(client, auth, body)
    credentials = Credentials(api_key=keys.api_key, secret_key=keys.secret_key)
    context = runtime.context
    applied = program_service.ApplyProgram(
        context=context, credentials=credentials, program=program_service.check_program(reward(7))
    )
    ingested = IngestEvents(  # with an email: the batch's prefetch does not read the program
        context=context,
        batch=EventBatch("c1", (("place_order", {}),), email="c1@example.com"),
        credentials=credentials,
    )

    def fill_the_disk(tx: Any) -> None:
        pages = tx.one("PRAGMA page_count")[0]
        tx.execute(f"PRAGMA max_page_count = {pages}")
        try:
            tx.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
            tx.execute("INSERT INTO filler VALUES (zeroblob(10000000))")
        finally:
            tx.execute("PRAGMA max_page_count = 1073741823")

    outcomes = await asyncio.gather(
        runtime.writer.submit(applied),
        runtime.writer.submit(ingested),
        runtime.writer.submit(Call(fill_the_disk)),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, errors.StorageFull) for outcome in outcomes)
    assert await apply(client, auth, reward(100)) == 2  # the number the rolled-back one had
    await send(client, auth, body)
    assert (await balance(client, auth, "c1"))["totalEarnedPoints"] == 1 + 100


async def test_a_merge_past_the_balance_ceiling_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    """Cutting the merged balance to the ceiling would leave more credits than balance, and
    their expiry would take it below zero: the merge is refused instead."""
    configure_account(runtime, channel_merging="email")
    share = (MAX_TOTAL // 10) * 6  # each profile holds 60% of the ceiling (written directly)
    account = run_in_transaction(runtime.db, lambda tx: accounts.named(tx, "shop"))
    for customer in ("web-1", "app-1"):
        await send(client, auth, {"customerId": customer, "events": {"sign_up": {}}})
        found = await client.get(f"{CUSTOMERS}/{customer}", headers=auth)
        profile_id = found.json()["gameballId"]

        def credit(tx: Any, profile_id: int = profile_id) -> None:
            totals = reward_rows.totals(tx, account.id, profile_id)
            entry = reward_rows.Entry("Manual", kind="Manual", reason="near the ceiling")
            rewards._record(tx, totals, entry, share, utc_now())
            reward_rows.save_totals(tx, totals, utc_now())

        run_in_transaction(runtime.db, credit)
    await send(
        client, auth, {"customerId": "web-1", "email": "sam@example.com", "events": {"a": {}}}
    )
    merging = {"customerId": "app-1", "email": "sam@example.com", "events": {"sign_up": {}}}
    refused = await client.post(EVENTS, json=merging, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (422, 3003)
    for customer in ("web-1", "app-1"):
        assert (await balance(client, auth, customer))["totalPointsBalance"] == share
        linked = (await client.get(f"{CUSTOMERS}/{customer}", headers=auth)).json()
        assert linked["linkedCustomerIds"] == [customer]

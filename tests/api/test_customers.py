"""Customer read-back: profile, upsert, the raw event history and the event catalog."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import events_body

EVENTS = "/api/v4.0/integrations/events"
CUSTOMERS = "/api/v4.0/integrations/customers"


async def send(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, object]) -> None:
    response = await client.post(EVENTS, json=body, headers=auth)
    assert response.status_code == 200, response.text


async def test_profile_is_created_on_first_event_in_gameball_shape(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await send(client, auth, events_body("c-1", email="Jane@Example.com", mobile="+20 100 123"))
    response = await client.get(f"{CUSTOMERS}/c-1", headers={"apikey": auth["apikey"]})
    assert response.status_code == 200
    profile = response.json()
    assert profile["customerId"] == "c-1"
    assert isinstance(profile["gameballId"], int)
    assert profile["customerAttributes"]["email"] == "Jane@Example.com"
    assert profile["customerAttributes"]["mobile"] == "+20 100 123"
    assert profile["createdAt"].endswith("Z")
    assert profile["linkedCustomerIds"] == ["c-1"]


async def test_unknown_customer_is_404_4004(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get(f"{CUSTOMERS}/nobody", headers=auth)
    assert response.status_code == 404
    assert response.json()["code"] == 4004


async def test_upsert_creates_then_merges_attributes(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await client.post(
        CUSTOMERS,
        json={
            "customerId": "u-1",
            "customerAttributes": {
                "displayName": "Jane",
                "country": "EG",
                "custom": {"a": 1, "b": 2},
            },
        },
        headers=auth,
    )
    assert first.status_code == 200
    second = await client.post(
        CUSTOMERS,
        json={
            "customerId": "u-1",
            "email": "j@x.io",
            "customerAttributes": {"city": "Cairo", "custom": {"b": 3}},
        },
        headers=auth,
    )
    assert second.json() == first.json()
    attributes = (await client.get(f"{CUSTOMERS}/u-1", headers=auth)).json()["customerAttributes"]
    assert attributes["displayName"] == "Jane"
    assert attributes["country"] == "EG"
    assert attributes["city"] == "Cairo"
    assert attributes["custom"] == {"a": 1, "b": 3}
    assert attributes["email"] == "j@x.io"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, 3000),
        ({"customerId": None}, 422, 3001),
        ({"customerId": ""}, 422, 3003),
        ({"customerId": "x", "customerAttributes": "no"}, 422, 3003),
    ],
)
async def test_upsert_rejects_bad_bodies(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, object], status: int, code: int
) -> None:
    response = await client.post(CUSTOMERS, json=body, headers=auth)
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{nope", 400, 3016),
        # Bytes that are not UTF-8 are not JSON text: 3016, as on Send Events.
        (b'{"customerId": "a\xed\xa0\x80"}', 400, 3016),
    ],
)
async def test_upsert_refuses_malformed_json(
    client: httpx.AsyncClient, auth: dict[str, str], raw: bytes, status: int, code: int
) -> None:
    response = await client.post(
        CUSTOMERS, content=raw, headers={**auth, "content-type": "application/json"}
    )
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert (await client.get(f"{CUSTOMERS}/a", headers=auth)).status_code == 404


async def test_event_history_pages_newest_first(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for n in range(5):
        await send(client, auth, {"customerId": "h-1", "events": {f"e{n}": {"n": n}}})
    url = f"{CUSTOMERS}/h-1/events"
    page1 = (await client.get(url, params={"limit": 2}, headers=auth)).json()
    assert [e["name"] for e in page1["events"]] == ["e4", "e3"]
    assert page1["hasMore"] is True
    after = page1["events"][-1]["eventId"]
    page2 = (await client.get(url, params={"limit": 2, "startAfter": after}, headers=auth)).json()
    assert [e["name"] for e in page2["events"]] == ["e2", "e1"]
    page3 = (
        await client.get(
            url, params={"limit": 2, "startAfter": page2["events"][-1]["eventId"]}, headers=auth
        )
    ).json()
    assert [e["name"] for e in page3["events"]] == ["e0"]
    assert page3["hasMore"] is False


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"startAfter": "x"}]
)
async def test_event_history_rejects_bad_paging(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, object]
) -> None:
    await send(client, auth, events_body("h-2"))
    response = await client.get(f"{CUSTOMERS}/h-2/events", params=params, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 3003)


async def test_catalog_lists_names_keys_types_and_counts(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await send(client, auth, {"customerId": "k-1", "events": {"order": {"amount": 10, "tag": "a"}}})
    await send(
        client, auth, {"customerId": "k-2", "events": {"order": {"amount": "ten", "gift": True}}}
    )
    await send(client, auth, {"customerId": "k-2", "events": {"login": None}})
    response = await client.get("/api/kudos/v1/events/catalog", headers=auth)
    assert response.status_code == 200
    events = {e["name"]: e for e in response.json()["events"]}
    assert set(events) == {"order", "login"}
    assert events["order"]["count"] == 2
    keys = {k["key"]: (k["type"], k["count"]) for k in events["order"]["keys"]}
    assert keys == {"amount": ("mixed", 2), "tag": ("string", 1), "gift": ("boolean", 1)}
    assert events["login"]["keys"] == []
    assert events["order"]["firstSeen"] <= events["order"]["lastSeen"]


async def test_catalog_needs_the_secret_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.get("/api/kudos/v1/events/catalog", headers={"apikey": auth["apikey"]})
    assert (response.status_code, response.json()["code"]) == (401, 1001)


async def test_accounts_never_see_each_others_customers(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: object
) -> None:
    from kudos.bootstrap import Runtime, run_in_transaction
    from kudos.services import accounts

    assert isinstance(runtime, Runtime)
    keyring = runtime.context.keyring
    other = run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "other"))
    await send(client, auth, events_body("private"))
    response = await client.get(f"{CUSTOMERS}/private", headers={"apikey": other.api_key})
    assert response.status_code == 404


async def test_unknown_routes_use_the_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v4.0/integrations/nothing")
    assert (response.status_code, response.json()["code"]) == (404, 4004)

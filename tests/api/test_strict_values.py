"""Values kudos takes as they are or not at all (manual points, custom attributes), and the
limits on keys per event and per request, on both stores."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.domain.payload import MAX_METADATA_KEYS, MAX_REQUEST_KEYS, MAX_REQUEST_VALUES
from tests.api.test_body_rules import table_counts

V4 = "/api/v4.0/integrations"
V2_EVENT = "/api/v2.0/integrations/event"
POINTS = "/api/kudos/v1/customers/p-1/points"


async def profile(client: httpx.AsyncClient, auth: dict[str, str], customer_id: str) -> Any:
    response = await client.get(f"{V4}/customers/{customer_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("points", [True, "5", 5.0, [5], {"n": 5}])
async def test_manual_points_take_a_json_integer_only(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str], points: Any
) -> None:
    created = await client.post(
        f"{V4}/events", json={"customerId": "p-1", "events": {"a": {}}}, headers=auth
    )
    assert created.status_code == 200
    before = table_counts(runtime)
    response = await client.post(POINTS, json={"points": points, "reason": "r"}, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 3003), response.text
    assert table_counts(runtime) == before
    credited = await client.post(POINTS, json={"points": 5, "reason": "r"}, headers=auth)
    assert (credited.status_code, credited.json()["pointsBalance"]) == (200, 5)


@pytest.mark.parametrize("custom", ["str", 5, ["a"], True])
async def test_custom_attributes_must_be_an_object_on_both_routes(
    client: httpx.AsyncClient, runtime: Runtime, auth: dict[str, str], custom: Any
) -> None:
    first = {"customerId": "c-1", "customerAttributes": {"custom": {"a": 1}}}
    assert (await client.post(f"{V4}/customers", json=first, headers=auth)).status_code == 200
    before = table_counts(runtime)
    upsert = {"customerId": "c-1", "customerAttributes": {"custom": custom}}
    refused = await client.post(f"{V4}/customers", json=upsert, headers=auth)
    assert (refused.status_code, refused.json()["code"]) == (422, 3003)
    v2 = {"playerUniqueId": "c-1", "events": {"a": {}}, "playerAttributes": {"custom": custom}}
    legacy = await client.post(V2_EVENT, json=v2, headers=auth)
    assert (legacy.status_code, legacy.json()["code"]) == (422, 7)
    assert table_counts(runtime) == before
    assert (await profile(client, auth, "c-1"))["customerAttributes"]["custom"] == {"a": 1}


async def test_custom_attributes_merge_key_by_key_and_null_leaves_them(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = [
        (f"{V4}/customers", {"customerId": "m-1", "customerAttributes": {"custom": {"a": 1}}}),
        (
            V2_EVENT,
            {
                "playerUniqueId": "m-1",
                "events": {"a": {}},
                "playerAttributes": {"custom": {"b": 2}},
            },
        ),
        (f"{V4}/customers", {"customerId": "m-1", "customerAttributes": {"custom": None}}),
        (
            V2_EVENT,
            {"playerUniqueId": "m-1", "events": {"a": {}}, "playerAttributes": {"city": "Giza"}},
        ),
    ]
    for path, body in sent:
        assert (await client.post(path, json=body, headers=auth)).status_code == 200
    attributes = (await profile(client, auth, "m-1"))["customerAttributes"]
    assert (attributes["custom"], attributes["city"]) == ({"a": 1, "b": 2}, "Giza")


def _nested(values: int) -> dict[str, Any]:
    """Events whose keys and list items add up to ``values``: 100 keys, each a list."""
    per_key = values // 100 - 1
    metadata = {f"k{n}": list(range(per_key)) for n in range(100)}
    return {"customerId": "many", "events": {"e": metadata}}


def _events(events: int, keys: int) -> dict[str, Any]:
    metadata = {f"k{n}": 0 for n in range(keys)}
    return {"customerId": "many", "events": {f"e{n}": metadata for n in range(events)}}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (_events(1, MAX_METADATA_KEYS), True),
        (_events(1, MAX_METADATA_KEYS + 1), False),
        (_events(MAX_REQUEST_KEYS // 250, 250), True),  # the most top-level keys
        (_events(MAX_REQUEST_KEYS // 250 + 1, 250), False),
        (_nested(MAX_REQUEST_VALUES), True),  # the most values a request may hold
        (
            {"customerId": "many", "events": {"a": {"list": list(range(MAX_REQUEST_VALUES))}}},
            False,  # one key and 10,000 items: one value too many
        ),
        (_events(1, 80_000), False),
    ],
    ids=[
        "255-keys",
        "256-keys",
        "1000-request-keys",
        "1250-request-keys",
        "10000-values",
        "10001-values",
        "80000-keys",
    ],
)
async def test_keys_per_event_and_values_per_request_are_limited(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    body: dict[str, Any],
    accepted: bool,
) -> None:
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) <= 1024 * 1024
    before = table_counts(runtime)
    for path in (f"{V4}/events", f"{V4}/events/reward-preview"):
        response = await client.post(
            path, content=raw, headers={**auth, "content-type": "application/json"}
        )
        if accepted:
            assert response.status_code in (200, 404), response.text  # preview: no customer
        else:
            assert (response.status_code, response.json()["code"]) == (422, 3003)
            assert "at most" in response.json()["message"] or "more than" in response.text
    if not accepted:
        assert table_counts(runtime) == before


async def test_player_attributes_count_towards_the_request_s_values(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {
        "playerUniqueId": "attrs",
        "events": {"a": {"list": list(range(MAX_REQUEST_VALUES - 1))}},
        "playerAttributes": {"custom": {"x": 1}},
    }
    response = await client.post(V2_EVENT, json=body, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 7)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/kudos/v1/webhooks", {"url": "https://hooks.example.com/", "topics": ["x"] * 99_000}),
        (
            f"{V4}/events/reward-preview",
            {"customerId": "c", "events": {f"e{n}": 1 for n in range(60_000)}},
        ),
    ],
    ids=["webhook-topics", "preview-events"],
)
async def test_a_huge_list_is_refused_by_its_size_not_item_by_item(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    """Refused item by item, 99,000 bad topics held the event loop ~0.75 s for one 422."""
    response = await client.post(path, json=body, headers=auth)
    assert (response.status_code, response.json()["code"]) == (422, 3003)
    assert "at most" in response.json()["message"], response.text

"""A customer's event history is read in pages bounded in bytes as well as in events, whatever
the events weigh and however many customerIds the profile merged."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import customers
from kudos.storage.db import MAX_IN_LIST

EVENTS = "/api/v4.0/integrations/events"
CUSTOMERS = "/api/v4.0/integrations/customers"


def weight(metadata: dict[str, Any]) -> int:
    """Bytes of metadata as compact JSON (what the stores measure is never less)."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


async def send_events(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str, sizes: list[int]
) -> None:
    """One event per size, named by its position, ``sizes[i]`` characters of padding each,
    as few requests as the 1 MiB body limit and the 100 events per request allow."""
    events: dict[str, Any] = {}
    for n, size in enumerate(sizes):
        events[f"e{n:03d}"] = {"n": n, "pad": "x" * size}
        if len(events) == 100 or sum(len(m["pad"]) for m in events.values()) > 700_000:
            await _post(client, auth, customer_id, events)
            events = {}
    if events:
        await _post(client, auth, customer_id, events)


async def _post(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str, events: dict[str, Any]
) -> None:
    response = await client.post(
        EVENTS, json={"customerId": customer_id, "events": events}, headers=auth
    )
    assert response.status_code == 200, response.text


async def pages(
    client: httpx.AsyncClient, auth: dict[str, str], customer_id: str, limit: int = 1000
) -> list[list[dict[str, Any]]]:
    """Every page of the history, following ``startAfter``."""
    found: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await client.get(
            f"{CUSTOMERS}/{customer_id}/events", params=params, headers=auth
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["events"], "a page always holds one event"
        found.append(page["events"])
        if not page["hasMore"]:
            return found
        params["startAfter"] = page["events"][-1]["eventId"]


def assert_every_event_once_newest_first(
    found: list[list[dict[str, Any]]], count: int
) -> list[dict[str, Any]]:
    events = [event for page in found for event in page]
    ids = [event["eventId"] for event in events]
    assert ids == sorted(set(ids), reverse=True)
    assert sorted(event["metadata"]["n"] for event in events) == list(range(count))
    return events


async def test_pages_stop_at_their_metadata_budget_and_read_every_event_once(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 events of about half the budget each (1 MiB against 2 MiB, scaled down 128 times)."""
    budget = customers.MAX_EVENTS_PAGE_BYTES // 128
    monkeypatch.setattr(customers, "MAX_EVENTS_PAGE_BYTES", budget)
    rng = random.Random(150)
    sizes = [rng.randrange(budget // 4, budget // 2) for _ in range(150)]
    await send_events(client, auth, "heavy", sizes)
    found = await pages(client, auth, "heavy")
    events = assert_every_event_once_newest_first(found, 150)
    assert len(found) > 30  # the budget, not the limit of 1000, ended the pages
    for page, following in itertools.pairwise(found):
        total = sum(weight(e["metadata"]) for e in page)
        assert total <= budget
        # Stopped only because the next event would not fit (PostgreSQL's measure is its
        # own JSON text, a few bytes more than compact JSON).
        assert total + weight(following[0]["metadata"]) > budget - 64 * (len(page) + 1)
    assert sum(weight(e["metadata"]) for e in found[-1]) <= budget
    assert len(events) == 150


async def test_events_of_nearly_a_mebibyte_come_two_to_a_page(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert customers.MAX_EVENTS_PAGE_BYTES == 2 * 1024 * 1024
    await send_events(client, auth, "huge", [900_000] * 5)
    found = await pages(client, auth, "huge")
    assert [len(page) for page in found] == [2, 2, 1]
    assert_every_event_once_newest_first(found, 5)


async def test_an_event_larger_than_the_budget_comes_alone(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customers, "MAX_EVENTS_PAGE_BYTES", 1000)
    await send_events(client, auth, "mixed", [10, 10, 5000, 10, 10])
    found = await pages(client, auth, "mixed")
    assert [[e["metadata"]["n"] for e in page] for page in found] == [[4, 3], [2], [1, 0]]


async def test_small_events_page_by_the_limit(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await send_events(client, auth, "light", [1] * 250)
    found = await pages(client, auth, "light", limit=100)
    assert [len(page) for page in found] == [100, 100, 50]
    assert_every_event_once_newest_first(found, 250)


@pytest.mark.parametrize("linked", [MAX_IN_LIST + 1, 70_000], ids=["past-the-list", "70000"])
async def test_a_profile_with_any_number_of_customer_ids_reads_its_events(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, linked: int
) -> None:
    """More customerIds than a statement may bind (PostgreSQL takes 65,535 parameters)."""
    await send_events(client, auth, "main", [1, 1])
    profile = (await client.get(f"{CUSTOMERS}/main", headers=auth)).json()["gameballId"]

    def link(tx: Any) -> None:
        row = tx.one("SELECT account_id, created_at FROM customer_ids WHERE customer_id = 'main'")
        tx.many(
            "INSERT INTO customer_ids (account_id, customer_id, profile_id, created_at)"
            " VALUES (?, ?, ?, ?)",
            [(row[0], f"alias-{n}", profile, row[1]) for n in range(linked)],
        )

    run_in_transaction(runtime.db, link)
    await _post(client, auth, f"alias-{linked - 1}", {"e002": {"n": 2}})
    await _post(client, auth, "alias-0", {"e003": {"n": 3}})
    found = await pages(client, auth, "main", limit=3)
    assert [[e["customerId"] for e in page] for page in found] == [
        ["alias-0", f"alias-{linked - 1}", "main"],
        ["main"],
    ]
    assert_every_event_once_newest_first(found, 4)

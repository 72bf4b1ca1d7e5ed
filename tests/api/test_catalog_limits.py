"""The event catalog and the daily counts: they count what was stored, exactly once, stay
within their caps, and are read one bounded page at a time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import catalog as catalog_service
from kudos.services.ingest import IngestEvents, IngestHooks
from kudos.storage import events as event_rows
from kudos.storage.db import Tx

EVENTS = "/api/v4.0/integrations/events"
CATALOG = "/api/kudos/v1/events/catalog"
BODY = {"customerId": "c-1", "events": {"order": {"amount": 10, "tag": "a"}, "login": None}}


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post(EVENTS, json=body, headers=headers)


async def catalog_pages(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every page of the catalog, following ``nextAfter``."""
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {**params, **({} if after is None else {"after": after})}
        response = await client.get(CATALOG, params=query, headers=auth)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        after = pages[-1]["nextAfter"]
        if after is None:
            return pages


async def catalog(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    """Name → entry, over every page."""
    pages = await catalog_pages(client, auth, limit=200)
    return {entry["name"]: entry for page in pages for entry in page["events"]}


def key_counts(entry: dict[str, Any]) -> dict[str, int]:
    return {key["key"]: key["count"] for key in entry["keys"]}


def daily_counts(runtime: Runtime) -> dict[str, int]:
    """``event_daily`` summed per name (nothing in the API reads it yet)."""
    rows = run_in_transaction(
        runtime.db, lambda tx: tx.all("SELECT name, sum(count) FROM event_daily GROUP BY name")
    )
    return {name: int(total) for name, total in rows}


def stored_events(runtime: Runtime) -> int:
    row = run_in_transaction(runtime.db, lambda tx: tx.one("SELECT count(*) FROM events"))
    assert row is not None
    return int(row[0])


class TestCountsFollowWhatIsStored:
    @pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "in-one-batch"])
    async def test_five_sends_with_one_idempotency_key_count_once(
        self, client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime, together: bool
    ) -> None:
        headers = {**auth, "Idempotency-Key": "order-1"}
        if together:
            responses = await asyncio.gather(*(send(client, headers, BODY) for _ in range(5)))
        else:
            responses = [await send(client, headers, BODY) for _ in range(5)]
        assert [r.status_code for r in responses] == [200] * 5
        assert stored_events(runtime) == 2
        entries = await catalog(client, auth)
        assert {name: e["count"] for name, e in entries.items()} == {"order": 1, "login": 1}
        assert key_counts(entries["order"]) == {"amount": 1, "tag": 1}
        assert daily_counts(runtime) == {"order": 1, "login": 1}

    async def test_a_request_rolled_back_alone_in_its_batch_counts_nothing(
        self,
        client: httpx.AsyncClient,
        auth: dict[str, str],
        runtime: Runtime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        announce = IngestEvents._announce

        def fail_for_boom(self: IngestEvents, tx: Tx, *args: Any) -> None:
            announce(self, tx, *args)  # its events are staged by now
            if self.batch.customer_id == "boom":
                raise RuntimeError("a bug in one request")

        monkeypatch.setattr(IngestEvents, "_announce", fail_for_boom)
        bodies = [BODY, {**BODY, "customerId": "boom"}, {**BODY, "customerId": "c-2"}]
        responses = await asyncio.gather(*(send(client, auth, body) for body in bodies))
        assert [r.status_code for r in responses] == [200, 500, 200]
        assert responses[1].json()["code"] == 5000
        assert stored_events(runtime) == 4
        entries = await catalog(client, auth)
        assert {name: e["count"] for name, e in entries.items()} == {"order": 2, "login": 2}
        assert key_counts(entries["order"]) == {"amount": 2, "tag": 2}
        assert daily_counts(runtime) == {"order": 2, "login": 2}

    async def test_a_retried_batch_counts_once(
        self,
        client: httpx.AsyncClient,
        auth: dict[str, str],
        runtime: Runtime,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        class Conflict(Exception):
            """Stands for a deadlock or serialization failure: the writer retries the batch."""

        flush = IngestHooks.flush
        failures = [Conflict()]

        def conflict_once(self: IngestHooks, tx: Tx) -> None:
            flush(self, tx)  # the counts are written, then the transaction rolls back
            if failures:
                raise failures.pop()

        monkeypatch.setattr(
            runtime.db, "retryable_errors", (*runtime.db.retryable_errors, Conflict)
        )
        monkeypatch.setattr(IngestHooks, "flush", conflict_once)
        responses = await asyncio.gather(*(send(client, auth, BODY) for _ in range(3)))
        assert [r.status_code for r in responses] == [200] * 3
        assert not failures
        assert stored_events(runtime) == 6
        entries = await catalog(client, auth)
        assert {name: e["count"] for name, e in entries.items()} == {"order": 3, "login": 3}
        assert daily_counts(runtime) == {"order": 3, "login": 3}


class TestCaps:
    async def test_names_past_the_cap_are_stored_but_not_recorded(
        self, client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
    ) -> None:
        cap = event_rows.MAX_CATALOG_NAMES
        assert cap == 1000
        names = [f"n{n:04d}" for n in range(cap + 5)]
        for start in range(0, len(names), 100):  # 100 events per request at most
            chunk = names[start : start + 100]
            body = {"customerId": "c-1", "events": {name: {"k": 1} for name in chunk}}
            assert (await send(client, auth, body)).status_code == 200
        assert stored_events(runtime) == cap + 5
        pages = await catalog_pages(client, auth, limit=200)
        recorded = [entry["name"] for page in pages for entry in page["events"]]
        assert recorded == names[:cap]
        assert all(page["truncated"] for page in pages)
        # Recorded names still count; new ones still are not recorded, their events stored.
        again = {"customerId": "c-2", "events": {"n0000": {"k": 2, "new": 1}, "late": {"k": 1}}}
        assert (await send(client, auth, again)).status_code == 200
        entries = await catalog(client, auth)
        assert "late" not in entries
        assert entries["n0000"]["count"] == 2
        assert key_counts(entries["n0000"]) == {"k": 2, "new": 1}
        assert stored_events(runtime) == cap + 7
        assert daily_counts(runtime)["late"] == 1  # the daily counts count every event

    async def test_keys_past_the_cap_are_not_recorded(
        self, client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
    ) -> None:
        cap = event_rows.MAX_CATALOG_KEYS
        assert cap == 255
        keys = [f"k{n:03d}" for n in range(cap + 45)]
        for start in range(0, len(keys), 100):
            body = {"customerId": "c-1", "events": {"wide": dict.fromkeys(keys[start:][:100], 1)}}
            assert (await send(client, auth, body)).status_code == 200
        body = {"customerId": "c-1", "events": {"wide": {"k000": "text", "k999": 1}}}
        assert (await send(client, auth, body)).status_code == 200
        (page,) = await catalog_pages(client, auth)
        (entry,) = page["events"]
        assert [key["key"] for key in entry["keys"]] == keys[:cap]
        assert entry["keysTruncated"] is True
        assert entry["keys"][0] == {**entry["keys"][0], "type": "mixed", "count": 2}
        assert page["truncated"] is False
        stored = run_in_transaction(
            runtime.db, lambda tx: tx.all("SELECT key FROM event_keys ORDER BY key")
        )
        assert [key for (key,) in stored] == keys[:cap]

    async def test_a_catalog_within_its_caps_says_so(
        self, client: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        assert (await send(client, auth, BODY)).status_code == 200
        (page,) = await catalog_pages(client, auth)
        assert page["truncated"] is False
        assert page["nextAfter"] is None
        assert [e["keysTruncated"] for e in page["events"]] == [False, False]


class TestPaging:
    async def test_pages_hold_names_in_name_order_each_once(
        self, client: httpx.AsyncClient, auth: dict[str, str]
    ) -> None:
        names = ["b", "a", "d", "c", "g", "f", "e"]
        events = {name: {f"{name}-key": 1, "shared": name} for name in names}
        response = await send(client, auth, {"customerId": "c-1", "events": events})
        assert response.status_code == 200
        pages = await catalog_pages(client, auth, limit=3)
        assert [[e["name"] for e in page["events"]] for page in pages] == [
            ["a", "b", "c"],
            ["d", "e", "f"],
            ["g"],
        ]
        assert [page["nextAfter"] for page in pages] == ["c", "f", None]
        entry = pages[1]["events"][0]
        assert [key["key"] for key in entry["keys"]] == ["d-key", "shared"]

    async def test_a_page_stops_at_its_byte_budget(
        self, client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert catalog_service.MAX_CATALOG_PAGE_BYTES == 1024 * 1024
        budget = 6000
        monkeypatch.setattr(catalog_service, "MAX_CATALOG_PAGE_BYTES", budget)
        monkeypatch.setattr(catalog_service, "KEYS_PER_QUERY", 40)  # several key queries per page
        names = [f"name-{n:02d}" for n in range(30)]
        for start in range(0, 30, 10):
            events = {name: {f"key-{k:02d}": k for k in range(12)} for name in names[start:][:10]}
            response = await send(client, auth, {"customerId": "c", "events": events})
            assert response.status_code == 200
        pages = await catalog_pages(client, auth, limit=200)
        assert len(pages) > 3
        for page in pages:
            assert page["events"]
            assert len(json.dumps(page["events"], separators=(",", ":"))) <= budget
        assert [e["name"] for page in pages for e in page["events"]] == names
        assert all(len(e["keys"]) == 12 for page in pages for e in page["events"])

    async def test_one_name_larger_than_the_budget_still_makes_a_page(
        self, client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(catalog_service, "MAX_CATALOG_PAGE_BYTES", 10)
        assert (await send(client, auth, BODY)).status_code == 200
        pages = await catalog_pages(client, auth)
        assert [[e["name"] for e in page["events"]] for page in pages] == [["login"], ["order"]]

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 201},
            {"limit": "x"},
            {"after": ""},
            {"after": "x" * 101},
            {"after": "a\x00b"},
        ],
        ids=["zero", "over-200", "not-a-number", "empty-after", "long-after", "nul-after"],
    )
    async def test_bad_paging_parameters_are_3003(
        self, client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, Any]
    ) -> None:
        response = await client.get(CATALOG, params=params, headers=auth)
        assert (response.status_code, response.json()["code"]) == (422, 3003)

"""A SQLite store that fills up for real (``PRAGMA max_page_count`` on the writer's
connection): the request that does not fit gets 5004 (507, Retry-After) and leaves nothing
behind; once there is room again the next request succeeds, every request acknowledged
before is still there, and the file passes ``PRAGMA quick_check``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kudos.bootstrap import Runtime
from kudos.storage.db import Tx
from kudos.storage.writer import STORAGE_FULL_RETRY_SECONDS, Call
from tests.conftest import configure_account, events_body

EVENTS = "/api/v4.0/integrations/events"
ROOM_PAGES = 8  # what is left once the store is capped: a few requests' worth
MAX_REQUESTS = 200


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only (PostgreSQL's disk full is faked in ``test_storage_full.py``)."""
    return f"sqlite:///{tmp_path}/kudos.db"


def big_body(customer_id: str) -> dict[str, Any]:
    return events_body(customer_id, events={"write_review": {"review": "x" * 3000}, "visit": {}})


async def cap_pages(runtime: Runtime, limit: Callable[[int], int]) -> int:
    """Cap the file at ``limit(its size in pages)``, on the writer's own connection (the
    setting is per connection); return the cap it had."""

    def cap(tx: Tx) -> int:
        before = int(tx.all("PRAGMA max_page_count")[0][0])
        pages = int(tx.all("PRAGMA page_count")[0][0])
        tx.all(f"PRAGMA max_page_count = {limit(pages)}")
        return before

    result: int = await runtime.writer.submit(Call(cap))
    return result


def read_store(runtime: Runtime, sql: str) -> list[Any]:
    path = runtime.db.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_a_full_sqlite_store_answers_5004_and_takes_requests_again_once_there_is_room(
    client: httpx.AsyncClient, auth: dict[str, str], runtime: Runtime
) -> None:
    configure_account(runtime, rate_limit="off")  # the loop below may outrun 100 requests/s
    assert (await client.post(EVENTS, json=big_body("first"), headers=auth)).status_code == 200
    uncapped = await cap_pages(runtime, lambda pages: pages + ROOM_PAGES)
    acknowledged = ["first"]
    for n in range(MAX_REQUESTS):
        response = await client.post(EVENTS, json=big_body(f"c-{n}"), headers=auth)
        if response.status_code != 200:
            break
        acknowledged.append(f"c-{n}")
    refused = f"c-{n}"
    assert response.status_code == 507, response.text
    assert response.json()["code"] == 5004
    assert response.headers["Retry-After"] == str(STORAGE_FULL_RETRY_SECONDS)
    assert len(acknowledged) > 1, "the cap left no room at all"
    events = await asyncio.to_thread(read_store, runtime, "SELECT customer_id FROM events")
    assert refused not in {row[0] for row in events}  # nothing half-written
    profile = await client.get(f"/api/v4.0/integrations/customers/{refused}", headers=auth)
    assert profile.status_code == 404
    # Still full: the writer kept its connection (SQLite had rolled back on its own).
    assert (await client.post(EVENTS, json=big_body(refused), headers=auth)).status_code == 507

    await cap_pages(runtime, lambda _: uncapped)  # space is back
    again = await client.post(EVENTS, json=big_body(refused), headers=auth)
    assert again.status_code == 200, again.text
    rows = await asyncio.to_thread(
        read_store, runtime, "SELECT customer_id, count(*) FROM events GROUP BY customer_id"
    )
    assert dict(rows) == dict.fromkeys([*acknowledged, refused], 2)
    assert await asyncio.to_thread(read_store, runtime, "PRAGMA quick_check") == [("ok",)]

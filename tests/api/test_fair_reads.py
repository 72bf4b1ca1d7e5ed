"""Reads that one account cannot monopolise, and the key cache that says whose a read is."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.services import accounts, customers
from kudos.services import keys as key_cache
from kudos.services.keys import KnownKeys
from kudos.services.security import KeyPair
from kudos.storage.db import Tx

SAFETY_SECONDS = 30  # only so that a broken build fails instead of hanging


def other_account(runtime: Runtime) -> KeyPair:
    keyring = runtime.context.keyring
    return run_in_transaction(runtime.db, lambda tx: accounts.create(tx, keyring, "other"))


async def test_one_account_flooding_slow_reads_never_delays_another_s(runtime: Runtime) -> None:
    reader = runtime.reader
    release = threading.Event()
    running = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow(_: Tx) -> str:
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        release.wait(SAFETY_SECONDS)
        with lock:
            running["now"] -= 1
        return "a"

    flood = [asyncio.ensure_future(reader.run(slow, account=1)) for _ in range(10)]
    await asyncio.sleep(0)
    b = await asyncio.wait_for(reader.run(lambda tx: "b", account=2), SAFETY_SECONDS)
    anonymous = await asyncio.wait_for(reader.run(lambda tx: "?"), SAFETY_SECONDS)
    assert (b, anonymous) == ("b", "?")
    assert not any(read.done() for read in flood)  # A is still stuck, and B went ahead
    release.set()
    assert await asyncio.gather(*flood) == ["a"] * 10
    assert running["most"] == reader.per_account  # A held only its share of the threads
    assert reader.groups == 0  # nothing of A (or B) outlives its last read


async def test_a_cancelled_waiting_read_gives_its_turn_back(runtime: Runtime) -> None:
    reader = runtime.reader
    release = threading.Event()
    holders = [
        asyncio.ensure_future(reader.run(lambda tx: release.wait(SAFETY_SECONDS), account=1))
        for _ in range(reader.per_account)
    ]
    waiting = asyncio.ensure_future(reader.run(lambda tx: "late", account=1))
    await asyncio.sleep(0.01)
    waiting.cancel()
    release.set()
    await asyncio.gather(*holders)
    after = await asyncio.wait_for(reader.run(lambda tx: "next", account=1), SAFETY_SECONDS)
    assert after == "next"
    assert reader.groups == 0


async def test_api_reads_queue_by_account(
    client: httpx.AsyncClient,
    runtime: Runtime,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Account "shop" floods a slow read route; account "other" is answered meanwhile."""
    other = other_account(runtime)
    release = threading.Event()
    real = customers.get_customer

    def get_customer(tx: Tx, account: Any, customer_id: str) -> dict[str, Any]:
        if account.name == "shop":
            release.wait(SAFETY_SECONDS)
        return real(tx, account, customer_id)

    monkeypatch.setattr(customers, "get_customer", get_customer)
    path = "/api/v4.0/integrations/customers/nobody"
    flood = [asyncio.ensure_future(client.get(path, headers=auth)) for _ in range(6)]
    await asyncio.sleep(0.05)
    answer = await asyncio.wait_for(
        client.get(path, headers={"apikey": other.api_key}), SAFETY_SECONDS
    )
    assert answer.status_code == 404  # answered (no such customer) while "shop" waits
    assert not any(read.done() for read in flood)
    release.set()
    assert {r.status_code for r in await asyncio.gather(*flood)} == {404}


class CountingReader:
    """A reader stand-in that counts lookups and runs them at once."""

    def __init__(self, runtime: Runtime) -> None:
        self.reader = runtime.reader
        self.lookups = 0

    async def run(self, fn: Any, *args: Any, account: int | None = None) -> Any:
        assert account is None  # key lookups run in the anonymous group
        self.lookups += 1
        await asyncio.sleep(0)  # let concurrent callers pile up behind one lookup
        return await self.reader.run(fn, *args)


def known_keys(runtime: Runtime, now: list[float]) -> tuple[KnownKeys, CountingReader]:
    counting = CountingReader(runtime)
    cache = KnownKeys(counting, runtime.context.keyring, clock=lambda: now[0])  # type: ignore[arg-type]
    return cache, counting


async def test_the_key_cache_looks_each_key_up_once_and_remembers_strangers_briefly(
    runtime: Runtime, keys: KeyPair
) -> None:
    now = [1000.0]
    cache, counting = known_keys(runtime, now)
    found = await asyncio.gather(*(cache.account_id(keys.api_key) for _ in range(20)))
    assert len(set(found)) == 1 and counting.lookups == 1
    for _ in range(2):
        with pytest.raises(errors.AuthError):
            await cache.account_id("stranger")
    assert counting.lookups == 2  # the second refusal needed no lookup
    now[0] += key_cache.UNKNOWN_SECONDS + 1
    with pytest.raises(errors.AuthError):
        await cache.account_id("stranger")
    assert counting.lookups == 3
    with pytest.raises(errors.AuthError):
        await cache.account_id(None)


async def test_a_stale_key_is_answered_at_once_and_refreshed_behind(
    runtime: Runtime, keys: KeyPair
) -> None:
    now = [1000.0]
    cache, counting = known_keys(runtime, now)
    account_id = await cache.account_id(keys.api_key)
    now[0] += key_cache.KNOWN_SECONDS + 1
    assert cache.cached(keys.api_key) == account_id  # no wait, while a lookup refreshes it
    assert cache.cached(keys.api_key) == account_id  # one refresh at a time
    for _ in range(SAFETY_SECONDS * 100):
        if counting.lookups == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the refresh stores what it found
    assert cache.cached(keys.api_key) == account_id
    await asyncio.sleep(0.05)
    assert counting.lookups == 2  # refreshed: no further lookup


async def test_the_key_cache_is_bounded(
    runtime: Runtime, keys: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_cache, "MAX_KEYS", 3)
    cache, _ = known_keys(runtime, [1000.0])
    for n in range(10):
        with pytest.raises(errors.AuthError):
            await cache.account_id(f"stranger-{n}")
    await cache.account_id(keys.api_key)
    assert cache.remembered == (1, 3)

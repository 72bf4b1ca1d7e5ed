"""Fair slots, on their own: the global and per-account bounds, and who gets a freed slot."""

from __future__ import annotations

import asyncio

import pytest

from kudos.webhooks.slots import FairSlots


async def settle() -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def waiter(slots: FairSlots, account: int, order: list[int]) -> None:
    await slots.acquire(account)
    order.append(account)


async def test_an_account_never_holds_more_than_its_share() -> None:
    slots = FairSlots(total=4, per_account=2)
    order: list[int] = []
    tasks = [asyncio.create_task(waiter(slots, 1, order)) for _ in range(4)]
    await settle()
    assert order == [1, 1] and slots.in_flight[1] == 2  # two slots stay free for others
    other = asyncio.create_task(waiter(slots, 2, order))
    await settle()
    assert order == [1, 1, 2]
    slots.release(1)
    await settle()
    assert order == [1, 1, 2, 1]
    await cancel(*tasks, other)


async def test_a_freed_slot_goes_to_the_waiting_account_with_the_fewest_in_flight() -> None:
    slots = FairSlots(total=3, per_account=3)
    order: list[int] = []
    for _ in range(3):
        await slots.acquire(1)  # account 1 holds every slot
    backlog = [asyncio.create_task(waiter(slots, 1, order)) for _ in range(5)]
    await settle()
    late = asyncio.create_task(waiter(slots, 2, order))  # arrives after the backlog
    await settle()
    assert order == []
    slots.release(1)
    await settle()
    assert order == [2]  # not account 1's older waiters
    slots.release(1)
    await settle()
    assert order == [2, 1]
    await cancel(*backlog, late)


async def test_a_cancelled_waiter_gives_up_its_place_and_never_leaks_a_slot() -> None:
    slots = FairSlots(total=1, per_account=1)
    await slots.acquire(1)
    order: list[int] = []
    gone = asyncio.create_task(waiter(slots, 2, order))
    await settle()
    slots.release(1)  # granted to the waiter …
    gone.cancel()  # … which is cancelled before it runs: the slot must come back
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert slots.in_flight == {}
    await asyncio.wait_for(slots.acquire(3), 1)
    queued = asyncio.create_task(waiter(slots, 4, order))
    await settle()
    queued.cancel()  # cancelled while waiting: removed from the queue
    with pytest.raises(asyncio.CancelledError):
        await queued
    slots.release(3)
    assert slots.in_flight == {} and order == []

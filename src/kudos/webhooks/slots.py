"""Fair slots: a worker's attempts in flight, shared between accounts.

At most ``total`` attempts run at once, and at most ``per_account`` of one account. When a
slot frees and several accounts wait, it goes to the waiting account with the fewest
attempts in flight (the oldest waiter of that account), so an account with many slow
endpoints cannot keep the others waiting: another account's message waits for one slot to
free at most, not for the busy account's backlog.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque


class FairSlots:
    def __init__(self, *, total: int, per_account: int) -> None:
        self.total = total
        self.per_account = per_account
        self.in_flight: Counter[int] = Counter()  # per account
        self._used = 0
        self._waiting: dict[int, deque[asyncio.Future[None]]] = {}

    async def acquire(self, account: int) -> None:
        """Wait for a slot for ``account``; ``release`` it once the attempt ends."""
        if account not in self._waiting and self._free_for(account):
            self._grant(account)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(account, deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(account)  # granted as it was cancelled: pass it on
            else:
                self._forget(account, waiter)
            raise

    def release(self, account: int) -> None:
        """Free a slot of ``account``; a waiter takes it (the fairest first)."""
        self._used -= 1
        self.in_flight[account] -= 1
        if not self.in_flight[account]:
            del self.in_flight[account]
        self._wake()

    def _free_for(self, account: int) -> bool:
        return self._used < self.total and self.in_flight[account] < self.per_account

    def _grant(self, account: int) -> None:
        self._used += 1
        self.in_flight[account] += 1

    def _wake(self) -> None:
        """Hand free slots to waiting accounts, fewest attempts in flight first."""
        while self._used < self.total:
            ready = [a for a in self._waiting if self.in_flight[a] < self.per_account]
            if not ready:
                return
            account = min(ready, key=lambda a: self.in_flight[a])
            queue = self._waiting[account]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[account]
            if waiter.done():  # cancelled, its task not yet told
                continue
            self._grant(account)
            waiter.set_result(None)

    def _forget(self, account: int, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(account)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._waiting[account]

"""Read connections off the event loop: a small thread pool, one connection per thread, shared
fairly between accounts.

Each read names the account it is for (``None``: not known yet, such as looking up an API
key; those share one group). At most ``per_account`` reads of one group run at once; the
group's other reads wait in its own queue, first come first served, while other groups' reads
go ahead. So one account's slow reads hold at most that many threads, and every other account
still finds one free. A group's state exists only while it has reads running or waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kudos.storage.db import Database, Tx

T = TypeVar("T")
ANONYMOUS = "anonymous"
"""The group of reads whose account is not known (they run before it is)."""


class _Group:
    """One account's reads: how many run, and who waits for a turn (each a future)."""

    __slots__ = ("running", "waiting")

    def __init__(self) -> None:
        self.running = 0
        self.waiting: deque[asyncio.Future[None]] = deque()


class Reader:
    """Runs ``fn(tx, *args)`` in a worker thread with that thread's own read connection."""

    def __init__(self, db: Database, *, threads: int = 4, per_account: int = 0) -> None:
        self.db = db
        # 0: half of the threads, so one account never holds them all (unless there is one).
        self.per_account = per_account or max(1, threads // 2)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kudos-read")
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._groups: dict[int | str, _Group] = {}

    @property
    def groups(self) -> int:
        """Accounts (and the anonymous group) with reads running or waiting."""
        return len(self._groups)

    async def run(self, fn: Callable[..., T], *args: Any, account: int | None = None) -> T:
        """``fn(tx, *args)`` on a read thread, once ``account`` has a free turn."""
        key: int | str = ANONYMOUS if account is None else account
        await self._turn(key)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._call, fn, args)
        finally:
            self._pass_on(key)

    async def _turn(self, key: int | str) -> None:
        """Wait until the group may start one more read (its count then includes it)."""
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        if group.running < self.per_account:
            group.running += 1
            return
        turn = asyncio.get_running_loop().create_future()
        group.waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # the turn came as it was cancelled
                self._pass_on(key)
            elif turn in group.waiting:
                group.waiting.remove(turn)
            raise

    def _pass_on(self, key: int | str) -> None:
        """A read of the group ended: its turn goes to the next waiting one, if any."""
        group = self._groups[key]
        while group.waiting:
            turn = group.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        group.running -= 1
        if group.running == 0:
            del self._groups[key]

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        tx: Tx | None = getattr(self._local, "tx", None)
        if tx is None:
            tx = Tx(self.db, self.db.connect(writer=False))
            self._local.tx = tx
            with self._lock:
                self._opened.append(tx.conn)
        tx.memo.clear()
        try:
            return fn(tx, *args)
        except self.db.connection_errors:
            self._local.tx = None  # broken connection: the next call opens a new one
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()

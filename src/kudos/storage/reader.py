"""Read connections off the event loop: a small thread pool, one connection per thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kudos.storage.db import Database, Tx

T = TypeVar("T")


class Reader:
    """Runs ``fn(tx, *args)`` in a worker thread with that thread's own read connection."""

    def __init__(self, db: Database, *, threads: int = 4) -> None:
        self.db = db
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kudos-read")
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args)

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

"""The group-commit writer: one thread per process gathers queued work into one transaction.

Each request is a ``Work`` item. The writer takes every item queued (up to ``max_batch``),
opens one transaction, authenticates and locks for all of them, applies each inside its own
savepoint (a failing item rolls back alone), lets the hooks flush what the batch aggregated,
and commits. Only then are the callers' futures resolved: a success means it is on disk.
A full queue refuses new work at once (``Unavailable``, 503 with Retry-After) instead of
growing memory. Transient conflicts between processes (deadlocks, serialization failures)
retry the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from kudos import errors
from kudos.storage.db import Database, Tx

log = logging.getLogger("kudos.writer")

MAX_ATTEMPTS = 3


class Work(Protocol):
    """One unit of work: a request's use case, run by the writer."""

    def prepare(self, tx: Tx) -> None:
        """Authenticate and check; raise a ``KudosError`` to refuse without writing."""

    def lock_keys(self) -> Iterable[str]:
        """Keys to serialize on across processes (customer, identifier, idempotency key)."""

    def apply(self, tx: Tx) -> Any:
        """Write, inside the item's savepoint; the return value is the caller's result."""


class BatchHooks(Protocol):
    """Aggregation across a batch (catalog counters, rollups): one write per batch."""

    def begin(self) -> None: ...
    def item_applied(self, work: Any) -> None: ...
    def flush(self, tx: Tx) -> None: ...


class _Item:
    __slots__ = ("future", "loop", "outcome", "work")

    def __init__(self, work: Work, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop):
        self.work = work
        self.future = future
        self.loop = loop
        self.outcome: Any = None


class Writer:
    """Owns the write connection; ``submit`` from any event loop, results after COMMIT."""

    def __init__(
        self, db: Database, hooks: BatchHooks, *, max_batch: int = 512, max_queue: int = 20_000
    ) -> None:
        self.db = db
        self.hooks = hooks
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._queue: deque[_Item | None] = deque()
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._tx: Tx | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kudos-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish everything queued, then stop the thread and close the connection."""
        if self._thread is None:
            return
        with self._wake:
            self._queue.append(None)
            self._wake.notify()
        self._thread.join()
        self._thread = None

    async def submit(self, work: Work) -> Any:
        """Queue ``work``; return its result once committed, or raise its ``KudosError``."""
        if len(self._queue) >= self.max_queue or self._thread is None:
            raise errors.Unavailable(retry_after=1)
        loop = asyncio.get_running_loop()
        item = _Item(work, loop.create_future(), loop)
        with self._wake:
            self._queue.append(item)
            self._wake.notify()
        return await item.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                batch: list[_Item] = []
                while self._queue and len(batch) < self.max_batch:
                    item = self._queue.popleft()
                    if item is None:
                        stopping = True
                        batch.extend(i for i in self._queue if i is not None)
                        self._queue.clear()
                        break
                    batch.append(item)
            if batch:
                self._process(batch)
        if self._tx is not None:
            self._tx.conn.close()

    def _process(self, batch: list[_Item]) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self._attempt(batch)
                break
            except self.db.retryable_errors as exc:
                self._reset_after_failure()
                log.warning("batch of %d conflicted (%s), attempt %d", len(batch), exc, attempt)
                if attempt == MAX_ATTEMPTS:
                    self._fail(batch, errors.Unavailable(retry_after=1))
            except Exception:
                log.exception("batch of %d failed; answering 503", len(batch))
                self._reset_after_failure()
                self._fail(batch, errors.Unavailable(retry_after=1))
                break
        self._deliver(batch)

    def _connection(self) -> Tx:
        if self._tx is None:
            self._tx = Tx(self.db, self.db.connect(writer=True))
        return self._tx

    def _attempt(self, batch: list[_Item]) -> None:
        tx = self._connection()
        tx.begin()
        self.hooks.begin()
        ready = [item for item in batch if self._prepare(tx, item)]
        self.db.lock(tx, [key for item in ready for key in item.work.lock_keys()])
        for item in ready:
            self._apply(tx, item)
        self.hooks.flush(tx)
        tx.commit()

    def _prepare(self, tx: Tx, item: _Item) -> bool:
        try:
            item.work.prepare(tx)
        except errors.KudosError as exc:
            item.outcome = exc
            return False
        return True

    def _apply(self, tx: Tx, item: _Item) -> None:
        tx.execute("SAVEPOINT item")
        try:
            item.outcome = item.work.apply(tx)
        except errors.KudosError as exc:
            tx.execute("ROLLBACK TO SAVEPOINT item")
            item.outcome = exc
            return
        except self.db.retryable_errors:
            raise
        except Exception:
            log.exception("request failed inside its batch; rolled back alone")
            tx.execute("ROLLBACK TO SAVEPOINT item")
            item.outcome = errors.InternalError()
            return
        tx.execute("RELEASE SAVEPOINT item")
        self.hooks.item_applied(item.work)

    def _reset_after_failure(self) -> None:
        if self._tx is None:
            return
        try:
            self._tx.rollback()
        except Exception:  # the connection itself is gone: reconnect on the next batch
            log.warning("writer connection lost; reconnecting")
            try:
                self._tx.conn.close()
            finally:
                self._tx = None

    @staticmethod
    def _fail(batch: list[_Item], error: errors.KudosError) -> None:
        for item in batch:
            item.outcome = error

    @staticmethod
    def _deliver(batch: list[_Item]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        for item in batch:
            by_loop.setdefault(item.loop, []).append(item)
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:  # that event loop is closed: nobody is waiting any more
                pass


def _resolve(items: list[_Item]) -> None:
    for item in items:
        if item.future.done():
            continue
        if isinstance(item.outcome, BaseException):
            item.future.set_exception(item.outcome)
        else:
            item.future.set_result(item.outcome)

"""Group commit: one writer per process gathers queued work into one transaction.

Each request is a ``Work`` item. The writer takes every item queued (up to ``max_batch``),
opens one transaction, authenticates and locks for all of them, applies them, lets the hooks
flush what the batch aggregated, and commits. A request's failure stays its own, whatever
raised it: when the batch fails, it is redone with a savepoint per request, so a failure
inside a request's ``apply`` rolls back alone; when even that fails (outside any one
request's savepoint: ``prepare``, ``lock_keys``, the hooks, the batch's bulk writes), each
request runs in a transaction of its own, so the one that fails gets its error and its
neighbours commit. Only after COMMIT are the callers' futures resolved: a success means it is
on disk. A full queue refuses new work at once (``Unavailable``, 503 with Retry-After) instead
of growing memory. Transient conflicts between processes (deadlocks, serialization failures)
retry the batch. A store with no space left is nobody's request's fault: the batch answers
``StorageFull`` (507 with Retry-After), nothing of it written. Before a batch, the writer lets
the store shrink its write-ahead log if that passed its limit (``Database.log_over_limit``).

The batch procedure (``_batch``) is written once, as a generator that yields the steps which
wait on the database (BEGIN, COMMIT, ROLLBACK, the log's upkeep); two drivers run it:

- ``ThreadWriter`` (PostgreSQL) runs everything in its own thread: every statement there is a
  network round trip, which must not block the event loop.
- ``LoopWriter`` (SQLite) runs the statements on the event loop, where they are short CPU work
  on local pages, and only what waits on the disk in a thread: the fsync that makes commits
  durable (batches are answered after it, while the loop goes on with the next batch), BEGIN
  when another process (or a checkpoint) holds the write lock, and the WAL's reset when it
  reached its limit. Running SQLite's statements in a second
  thread instead costs two GIL hand-offs per statement; measured, that cut throughput by a
  third.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from kudos import errors
from kudos.storage.db import Database, Tx

log = logging.getLogger("kudos.writer")

MAX_ATTEMPTS = 4
# Fair batches (``Writer._take_batch``): the cost one share (an account) may take per batch
# while others wait (a plain request costs about 10: ``api.ingest.work_cost``), and how far
# into the queue, in batches, a batch looks for the waiting shares.
SHARE_QUANTUM = 200
SHARE_SCAN = 4
LINGER_TURNS = 16
LINGER_STILL_TURNS = 3
# A full store waits for an operator to free space: clients are told to come back after this.
STORAGE_FULL_RETRY_SECONDS = 60
# What a client is told when the fsync after its (visible) COMMIT found no space left.
UNSYNCED_FULL_MESSAGE = (
    "Insufficient storage: the database ran out of space while making this request durable;"
    " it may or may not be recorded. Retry later with the same Idempotency-Key."
)

Step = Callable[[], None]
# The batch procedure yields ("upkeep" | "begin" | "commit" | "rollback", step) and returns
# True once a transaction of it committed.
Steps = Generator[tuple[str, Step], None, None]
BatchSteps = Generator[tuple[str, Step], None, bool]


class _CannotBegin(Exception):
    """No transaction could be opened (connection or BEGIN failed): the store's failure, which
    no request of the batch caused."""


class Work(Protocol):
    """One unit of work: a request's use case, run by the writer."""

    def prepare(self, tx: Tx) -> None:
        """Authenticate and check; raise a ``KudosError`` to refuse without writing.

        It may run again for the same request when its batch is retried.
        """

    def lock_keys(self) -> Iterable[str]:
        """Keys to serialize on across processes (customer, identifier, idempotency key)."""

    def apply(self, tx: Tx) -> Any:
        """Write; the return value is the caller's result. It may run again (the first run
        rolled back) when its batch is retried."""


class Call:
    """A function of the transaction as work: nothing to authenticate, no lock keys (row
    locks, e.g. ``FOR UPDATE SKIP LOCKED``, serialize what it touches)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Tx], Any]) -> None:
        self.fn = fn

    def prepare(self, tx: Tx) -> None:
        pass

    def lock_keys(self) -> list[str]:
        return []

    def apply(self, tx: Tx) -> Any:
        return self.fn(tx)


class BatchHooks(Protocol):
    """Aggregation across a batch (catalog counters, rollups): one write per batch."""

    def begin(self) -> None: ...
    def prefetch(self, tx: Tx, works: list[Any]) -> None: ...
    def item_applied(self, work: Any) -> None: ...
    def flush(self, tx: Tx) -> None: ...


class NoHooks:
    """Hooks for a writer that runs no ingestion (the webhook worker's)."""

    def begin(self) -> None:
        pass

    def prefetch(self, tx: Tx, works: list[Any]) -> None:
        pass

    def item_applied(self, work: Any) -> None:
        pass

    def flush(self, tx: Tx) -> None:
        pass


class _Item:
    __slots__ = ("cost", "future", "loop", "outcome", "share", "work")

    def __init__(
        self,
        work: Work,
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        share: object,
        cost: int,
    ) -> None:
        self.work = work
        self.future = future
        self.loop = loop
        self.share = share
        self.cost = cost
        self.outcome: Any = None


class Writer:
    """The queue and the batch procedure; subclasses decide where the procedure runs."""

    def __init__(
        self, db: Database, hooks: BatchHooks, *, max_batch: int = 512, max_queue: int = 20_000
    ) -> None:
        self.db = db
        self.hooks = hooks
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._queue: deque[_Item] = deque()
        self._tx: Tx | None = None
        self._running = False
        # Shares that took more than their quantum in a contended batch: what they owe.
        self._owed: dict[object, int] = {}

    def start(self) -> None:
        """Start taking work (call from the event loop that will submit)."""
        self._running = True

    async def stop(self) -> None:
        """Finish everything queued, then stop and close the connection."""
        self._running = False

    async def submit(self, work: Work, *, share: object = None, cost: int = 1) -> Any:
        """Queue ``work``; return its result once committed, or raise its ``KudosError``.

        ``share`` says whose work it is (an account) and ``cost`` about how much work (see
        ``_take_batch``); work that gives neither shares one share, at cost 1 each."""
        if not self._running or len(self._queue) >= self.max_queue:
            raise errors.Unavailable(retry_after=1)
        loop = asyncio.get_running_loop()
        item = _Item(work, loop.create_future(), loop, share, cost)
        self._enqueue(item)
        return await item.future

    def _enqueue(self, item: _Item) -> None:
        raise NotImplementedError

    def _take_batch(self) -> list[_Item]:
        """The next batch: the queue in order, unless several shares (accounts) wait. Then each
        takes work up to ``SHARE_QUANTUM`` of cost per batch, less what it owes from earlier
        batches (deficit round robin): a share whose work passed its quantum waits out the
        excess while the others' work goes ahead, so one tenant's heavy requests cannot make
        every batch long (its first item always goes once it owes nothing)."""
        queue = self._queue
        window = list(itertools.islice(queue, self.max_batch * SHARE_SCAN))
        if len({item.share for item in window}) <= 1:
            self._owed.clear()
            return [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
        left = {item.share: SHARE_QUANTUM - self._owed.get(item.share, 0) for item in window}
        batch: list[_Item] = []
        for item in window:
            if len(batch) == self.max_batch:
                break
            if left[item.share] > 0:
                left[item.share] -= item.cost
                batch.append(item)
        self._owed = {share: -balance for share, balance in left.items() if balance < 0}
        if not batch:  # every waiting share owes: the oldest work goes, so the queue moves
            first = window[0]
            batch.append(first)
            self._owed[first.share] += first.cost
        taken = {id(item) for item in batch}
        kept = [item for item in window if id(item) not in taken]
        for _ in range(len(window)):
            queue.popleft()
        queue.extendleft(reversed(kept))
        return batch

    def _connection(self) -> Tx:
        if self._tx is None:
            self._tx = Tx(self.db, self.db.connect(writer=True))
        return self._tx

    def _close(self) -> None:
        if self._tx is not None:
            self._tx.conn.close()
            self._tx = None

    # --- the batch procedure ------------------------------------------------------------

    def _batch(self, batch: list[_Item]) -> BatchSteps:
        """Run one batch to its end, yielding the steps that wait on the database.

        All requests in one transaction; if that fails, again with a savepoint per request; if
        that fails too, each request alone (``_each_alone``). A retryable conflict retries the
        same way, a full store refuses the batch."""
        yield from self._upkeep()
        isolated = False
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                yield from self._transaction(batch, isolated=isolated)
                return True
            except self.db.retryable_errors as exc:
                yield "rollback", self._reset_after_failure
                log.warning("batch of %d conflicted (%s), attempt %d", len(batch), exc, attempt)
            except Exception as exc:
                yield "rollback", self._reset_after_failure
                if self.db.is_storage_full(exc):
                    self._fail(batch, self._storage_full(exc))
                    return False
                if isolated and not isinstance(exc, _CannotBegin):
                    log.warning("batch of %d failed outside its requests (%r)", len(batch), exc)
                    committed: bool = yield from self._each_alone(batch)
                    return committed
                if isolated:
                    log.error("no transaction for a batch of %d (%s)", len(batch), exc)
                    break
                # Somebody's request failed (or the connection dropped: the retry reconnects):
                # redo the batch with a savepoint per request.
                isolated = True
        self._fail(batch, errors.Unavailable(retry_after=1))
        return False

    def _upkeep(self) -> Steps:
        """Let the store shrink its write-ahead log first, if that passed its limit."""
        if not self.db.log_over_limit():
            return
        try:
            yield "upkeep", self.db.reset_log
        except Exception:  # the batch can still run; the next one tries again
            log.exception("the write-ahead log's upkeep failed")

    def _transaction(self, items: list[_Item], *, isolated: bool) -> Steps:
        """Open a transaction, run ``items`` in it and commit; raise whatever failed."""
        tx = yield from self._open()
        self._apply_all(tx, items, isolated=isolated)
        yield "commit", tx.commit

    def _open(self) -> Generator[tuple[str, Step], None, Tx]:
        try:
            tx = self._connection()
            if not tx.try_begin():
                yield "begin", tx.begin
        except Exception as exc:
            raise _CannotBegin(str(exc)) from exc
        return tx

    def _each_alone(self, batch: list[_Item]) -> BatchSteps:
        """Each request in a transaction of its own (prepare, lock, prefetch, apply, flush,
        commit): the fallback for a batch that failed outside any one request's savepoint,
        so the failure stays with the request that causes it. It runs only once the batch
        failed twice: the common path pays nothing for it."""
        committed = False
        for index, item in enumerate(batch):
            shared = yield from self._alone(item)
            if shared is not None:  # the store's failure, not this request's: the rest share it
                self._fail(batch[index:], shared)
                break
            committed = committed or not isinstance(item.outcome, errors.KudosError)
        return committed

    def _alone(self, item: _Item) -> Generator[tuple[str, Step], None, errors.KudosError | None]:
        """Run one request in its own transaction and set its outcome. Returns the error the
        rest of the batch must share when the failure is the store's (no space left, no
        transaction to be had), ``None`` otherwise."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                yield from self._transaction([item], isolated=False)
                return None
            except self.db.retryable_errors as exc:
                yield "rollback", self._reset_after_failure
                log.warning("request conflicted (%s), attempt %d", exc, attempt)
            except Exception as exc:
                yield "rollback", self._reset_after_failure
                if self.db.is_storage_full(exc):
                    return self._storage_full(exc)
                if isinstance(exc, _CannotBegin):
                    log.error("no transaction for a request (%s); answering 503", exc)
                    return errors.Unavailable(retry_after=1)
                item.outcome = self._own_failure(exc)
                return None
        item.outcome = errors.Unavailable(retry_after=1)
        return None

    def _own_failure(self, exc: Exception) -> errors.KudosError:
        """What a request that failed in its own transaction is answered."""
        if isinstance(exc, errors.KudosError):
            return exc
        if isinstance(exc, self.db.connection_errors):
            log.warning("connection lost during a request (%s); answering 503", exc)
            return errors.Unavailable(retry_after=1)
        log.error("request failed in its own transaction; rolled back alone", exc_info=exc)
        return errors.InternalError()

    @staticmethod
    def _storage_full(exc: BaseException) -> errors.StorageFull:
        log.error("the database has no space left (%s); answering 507", exc)
        return errors.StorageFull(retry_after=STORAGE_FULL_RETRY_SECONDS)

    def _apply_all(self, tx: Tx, batch: list[_Item], *, isolated: bool) -> None:
        self.hooks.begin()
        ready = [item for item in batch if self._prepare(tx, item)]
        if self.db.concurrent_writers:
            self.db.lock(tx, [key for item in ready for key in item.work.lock_keys()])
        self.hooks.prefetch(tx, [item.work for item in ready])
        if isolated:
            for item in ready:
                self._apply_isolated(tx, item)
        else:
            for item in ready:
                item.outcome = item.work.apply(tx)
            tx.flush_staged()
            for item in ready:
                self.hooks.item_applied(item.work)
        self.hooks.flush(tx)

    @staticmethod
    def _prepare(tx: Tx, item: _Item) -> bool:
        try:
            item.work.prepare(tx)
        except errors.KudosError as exc:
            item.outcome = exc
            return False
        return True

    def _apply_isolated(self, tx: Tx, item: _Item) -> None:
        tx.savepoint()
        try:
            item.outcome = item.work.apply(tx)
            tx.flush_staged()
        except errors.KudosError as exc:
            self._roll_back_item(tx)
            item.outcome = exc
            return
        except self.db.retryable_errors:
            raise
        except Exception as exc:
            if self.db.is_storage_full(exc):
                raise  # the store's failure (SQLite may have rolled the whole batch back)
            log.exception("request failed inside its batch; rolled back alone")
            self._roll_back_item(tx)
            item.outcome = errors.InternalError()
            return
        tx.release_savepoint()
        self.hooks.item_applied(item.work)

    @staticmethod
    def _roll_back_item(tx: Tx) -> None:
        tx.rollback_to_savepoint()

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


def _resolve(items: list[_Item]) -> None:
    for item in items:
        if item.future.done():
            continue
        if isinstance(item.outcome, BaseException):
            item.future.set_exception(item.outcome)
        else:
            item.future.set_result(item.outcome)


class LoopWriter(Writer):
    """Runs batches on the event loop; only the steps that wait on the disk use a thread.

    Where the store allows it (SQLite with ``synchronous=FULL``), COMMIT itself does not wait
    for the disk: it runs on the loop, and a thread then makes the WAL durable (``db.sync``,
    an fsync) while the loop already applies the next batch. Requests are answered only after
    the fsync that covers their commit; one fsync covers every batch committed before it.
    """

    def __init__(self, db: Database, hooks: BatchHooks, **limits: int) -> None:
        super().__init__(db, hooks, **limits)
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kudos-disk")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._deferred_sync = False
        self._unsynced: list[list[_Item]] = []
        self._syncing: asyncio.Future[None] | None = None

    def start(self) -> None:
        super().start()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kudos-writer")

    async def stop(self) -> None:
        await super().stop()
        if self._task is not None and self._wake is not None:
            self._wake.set()
            await self._task
            self._task = None
        while self._syncing is not None:
            with contextlib.suppress(Exception):  # _synced reports a failure to the callers
                await self._syncing
            # A future already done returns at once, before its done-callback (which clears
            # _syncing) has run: yield to the loop, or this would spin forever.
            await asyncio.sleep(0)
        self._close()
        self._io.shutdown(wait=True)

    def _connection(self) -> Tx:
        fresh = self._tx is None
        tx = super()._connection()
        if fresh:
            self._deferred_sync = self.db.defer_sync(tx.conn)
        return tx

    def _enqueue(self, item: _Item) -> None:
        self._queue.append(item)
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while self._running or self._queue:
            if not self._queue:
                await self._wake.wait()
                self._wake.clear()
                continue
            await self._linger()
            batch = self._take_batch()
            if await self._drive(self._batch(batch)) and self._deferred_sync:
                self._unsynced.append(batch)
                self._start_sync()
            else:
                _resolve(batch)

    async def _linger(self) -> None:
        """Let requests whose bytes already arrived reach the queue before taking a batch: a
        bigger batch costs less per request (one commit, one insert statement). Yields loop
        turns while the queue still grows, at most ``LINGER_TURNS``; never sleeps."""
        still = 0
        for _ in range(LINGER_TURNS):
            queued = len(self._queue)
            await asyncio.sleep(0)
            still = still + 1 if len(self._queue) == queued else 0
            if still >= LINGER_STILL_TURNS or len(self._queue) >= self.max_batch:
                return

    async def _drive(self, steps: BatchSteps) -> bool:
        loop = asyncio.get_running_loop()
        try:
            kind, step = next(steps)
            while True:
                try:
                    if kind == "commit" and self._deferred_sync:
                        step()  # writes the WAL, no fsync: short enough for the loop
                    else:
                        await loop.run_in_executor(self._io, step)
                except Exception as exc:
                    kind, step = steps.throw(exc)
                else:
                    kind, step = next(steps)
        except StopIteration as done:
            committed: bool = done.value
            return committed

    def _start_sync(self) -> None:
        if self._syncing is not None or not self._unsynced:
            return
        batches, self._unsynced = self._unsynced, []
        self._syncing = asyncio.get_running_loop().run_in_executor(self._io, self.db.sync)
        self._syncing.add_done_callback(lambda done: self._synced(batches, done))

    def _synced(self, batches: list[list[_Item]], done: asyncio.Future[None]) -> None:
        self._syncing = None
        failure = done.exception()
        error = None if failure is None else self._unsynced_error(failure)
        for batch in batches:
            if error is not None:
                self._fail(batch, error)
            _resolve(batch)
        self._start_sync()

    def _unsynced_error(self, failure: BaseException) -> errors.KudosError:
        """The answer to batches whose COMMIT (visible to readers) no fsync made durable."""
        log.critical("fsync failed; committed batches not acknowledged", exc_info=failure)
        if self.db.is_storage_full(failure):
            return errors.StorageFull(UNSYNCED_FULL_MESSAGE, retry_after=STORAGE_FULL_RETRY_SECONDS)
        return errors.Unavailable(retry_after=1)


class ThreadWriter(Writer):
    """Runs batches in a thread of its own, and hands results back to the callers' loops."""

    def __init__(self, db: Database, hooks: BatchHooks, **limits: int) -> None:
        super().__init__(db, hooks, **limits)
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        self._thread = threading.Thread(target=self._run, name="kudos-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        await super().stop()
        if self._thread is not None:
            with self._wake:
                self._wake.notify()
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _enqueue(self, item: _Item) -> None:
        with self._wake:
            self._queue.append(item)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and self._running:
                    self._wake.wait()
                if not self._queue:
                    break
                batch = self._take_batch()
            _run_steps(self._batch(batch))
            self._deliver(batch)
        self._close()

    @staticmethod
    def _deliver(batch: list[_Item]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        for item in batch:
            by_loop.setdefault(item.loop, []).append(item)
        for loop, items in by_loop.items():
            # A closed event loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, items)


def _run_steps(steps: BatchSteps) -> bool:
    """Run a batch procedure to its end in this thread; True if it committed."""
    try:
        _, step = next(steps)
        while True:
            try:
                step()
            except Exception as exc:
                _, step = steps.throw(exc)
            else:
                _, step = next(steps)
    except StopIteration as done:
        committed: bool = done.value
        return committed


def build_writer(db: Database, hooks: BatchHooks, *, max_batch: int, max_queue: int) -> Writer:
    """The writer that suits the store: on the loop for SQLite, in a thread for PostgreSQL."""
    driver = ThreadWriter if db.concurrent_writers else LoopWriter
    return driver(db, hooks, max_batch=max_batch, max_queue=max_queue)

"""Fake writer work and hooks for the writer tests: rows in a scratch table, and failures
placed wherever the batch procedure runs code of a request or of the hooks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.storage.db import Tx
from kudos.storage.writer import NoHooks, ThreadWriter, Writer

# A statement that fails when run (no such column): a bad row staged for a bulk write.
BAD_STAGED = "INSERT INTO scratch (no_such_column) VALUES (?)"


class CountingHooks(NoHooks):
    """Counts the batches that reached their flush (each is one committed transaction)."""

    def __init__(self) -> None:
        self.batches = 0

    def flush(self, tx: Tx) -> None:
        self.batches += 1


class Insert:
    """Writes one row to a scratch table; optionally fails afterwards, fails in ``prepare``
    or ``lock_keys`` (``fail_in``), stages a row that cannot be written (``fail_in="stage"``),
    or waits for a signal."""

    def __init__(
        self,
        value: str,
        *,
        fail_with: Exception | None = None,
        fail_in: str | None = None,
        hold: threading.Event | None = None,
        started: threading.Event | None = None,
    ) -> None:
        self.value = value
        self.fail_with = fail_with
        self.fail_in = fail_in
        self.hold = hold
        self.started = started

    def prepare(self, tx: Tx) -> None:
        if self.value == "refused":
            raise errors.AuthError()
        if self.fail_in == "prepare":
            raise RuntimeError("prepare broke")

    def lock_keys(self) -> list[str]:
        if self.fail_in == "lock_keys":
            raise RuntimeError("lock_keys broke")
        return [self.value]

    def apply(self, tx: Tx) -> str:
        if self.started is not None:
            self.started.set()
        if self.hold is not None:
            self.hold.wait(timeout=10)
        tx.execute("INSERT INTO scratch (value) VALUES (?)", (self.value,))
        if self.fail_in == "stage":
            tx.stage(BAD_STAGED, [(self.value,)])
        if self.fail_with is not None:
            raise self.fail_with
        return self.value


class FaultyHooks(CountingHooks):
    """Hooks that fail whenever the batch they handle holds the request ``guilty``: in
    ``prefetch`` (a bug, or a ``KudosError`` such as a program that cannot be loaded), in
    ``flush``, or with a row staged in ``flush`` that the commit cannot write."""

    def __init__(self, place: str, guilty: str) -> None:
        super().__init__()
        self.place = place
        self.guilty = guilty
        self._applied: list[Any] = []

    def begin(self) -> None:
        self._applied = []

    def prefetch(self, tx: Tx, works: list[Any]) -> None:
        if not any(work.value == self.guilty for work in works):
            return
        if self.place == "prefetch":
            raise RuntimeError("prefetch broke")
        if self.place == "prefetch-kudos":
            raise errors.ProgramUnavailable()

    def item_applied(self, work: Any) -> None:
        self._applied.append(work)

    def flush(self, tx: Tx) -> None:
        if any(work.value == self.guilty for work in self._applied):
            if self.place == "flush":
                raise RuntimeError("flush broke")
            if self.place == "flush-staged":
                tx.stage(BAD_STAGED, [(self.guilty,)])
        super().flush(tx)


async def stored(runtime: Runtime) -> list[str]:
    """What the scratch table holds, read off the event loop (the runtime's own writer shares
    this loop and may be waiting on it for the write lock)."""
    rows = await asyncio.to_thread(
        run_in_transaction,
        runtime.db,
        lambda tx: tx.all("SELECT value FROM scratch ORDER BY value"),
    )
    return [row[0] for row in rows]


@asynccontextmanager
async def held(writer: Writer) -> AsyncIterator[None]:
    """Keep a thread writer busy inside a batch until the block ends."""
    if not isinstance(writer, ThreadWriter):
        yield
        return
    hold, started = threading.Event(), threading.Event()
    blocker = asyncio.create_task(writer.submit(Insert("0-blocker", hold=hold, started=started)))
    await asyncio.to_thread(started.wait, 10)
    try:
        yield
    finally:
        hold.set()
        assert await blocker == "0-blocker"


def with_blocker(writer: Writer, values: list[str]) -> list[str]:
    """``values`` as the scratch table holds them after a test that used ``held``."""
    return ["0-blocker", *values] if isinstance(writer, ThreadWriter) else values

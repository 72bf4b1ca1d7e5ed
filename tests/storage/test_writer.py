"""The group-commit writer: batching, per-request savepoints, bounded queue."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.storage.db import Tx
from kudos.storage.writer import Writer


class CountingHooks:
    def __init__(self) -> None:
        self.batches = 0
        self.applied: list[Any] = []

    def begin(self) -> None:
        self.batches += 1

    def item_applied(self, work: Any) -> None:
        self.applied.append(work)

    def flush(self, tx: Tx) -> None:
        pass


class Insert:
    """Writes one row to a scratch table; optionally fails afterwards."""

    def __init__(self, value: str, *, fail_with: Exception | None = None,
                 hold: threading.Event | None = None, started: threading.Event | None = None) -> None:
        self.value = value
        self.fail_with = fail_with
        self.hold = hold
        self.started = started

    def prepare(self, tx: Tx) -> None:
        if self.value == "refused":
            raise errors.AuthError()

    def lock_keys(self) -> list[str]:
        return [self.value]

    def apply(self, tx: Tx) -> str:
        if self.started is not None:
            self.started.set()
        if self.hold is not None:
            self.hold.wait(timeout=10)
        tx.execute("INSERT INTO scratch (value) VALUES (?)", (self.value,))
        if self.fail_with is not None:
            raise self.fail_with
        return self.value


@pytest.fixture
def scratch(runtime: Runtime) -> Runtime:
    run_in_transaction(runtime.db, lambda tx: tx.execute("CREATE TABLE scratch (value TEXT)"))
    return runtime


def stored(runtime: Runtime) -> list[str]:
    rows = run_in_transaction(runtime.db, lambda tx: tx.all("SELECT value FROM scratch ORDER BY value"))
    return [row[0] for row in rows]


async def test_a_failing_request_rolls_back_alone_inside_its_batch(scratch: Runtime) -> None:
    hooks = CountingHooks()
    writer = Writer(scratch.db, hooks)
    writer.start()
    try:
        hold, started = threading.Event(), threading.Event()
        blocker = asyncio.create_task(writer.submit(Insert("a-first", hold=hold, started=started)))
        await asyncio.to_thread(started.wait, 10)
        # While the writer is held inside the first batch, these queue up as the next batch.
        batch = [
            asyncio.create_task(writer.submit(Insert("b-good"))),
            asyncio.create_task(writer.submit(Insert("c-broken", fail_with=RuntimeError("boom")))),
            asyncio.create_task(writer.submit(Insert("d-invalid", fail_with=errors.InvalidValue()))),
            asyncio.create_task(writer.submit(Insert("refused"))),
            asyncio.create_task(writer.submit(Insert("e-good"))),
        ]
        await asyncio.sleep(0)
        hold.set()
        assert await blocker == "a-first"
        results = await asyncio.gather(*batch, return_exceptions=True)
    finally:
        writer.stop()
    assert results[0] == "b-good" and results[4] == "e-good"
    assert isinstance(results[1], errors.InternalError)
    assert isinstance(results[2], errors.InvalidValue)
    assert isinstance(results[3], errors.AuthError)
    assert hooks.batches == 2  # the five queued requests shared one transaction
    assert stored(scratch) == ["a-first", "b-good", "e-good"]


async def test_a_full_queue_answers_unavailable_at_once(scratch: Runtime) -> None:
    writer = Writer(scratch.db, CountingHooks(), max_queue=1)
    writer.start()
    try:
        hold, started = threading.Event(), threading.Event()
        running = asyncio.create_task(writer.submit(Insert("running", hold=hold, started=started)))
        await asyncio.to_thread(started.wait, 10)
        queued = asyncio.create_task(writer.submit(Insert("queued")))
        await asyncio.sleep(0)
        with pytest.raises(errors.Unavailable) as refused:
            await writer.submit(Insert("refused-overload"))
        assert refused.value.retry_after == 1
        hold.set()
        assert await running == "running"
        assert await queued == "queued"
    finally:
        writer.stop()
    assert stored(scratch) == ["queued", "running"]


async def test_stop_finishes_queued_work_before_closing(scratch: Runtime) -> None:
    writer = Writer(scratch.db, CountingHooks())
    writer.start()
    tasks = [asyncio.create_task(writer.submit(Insert(f"v{n}"))) for n in range(20)]
    await asyncio.sleep(0)
    await asyncio.to_thread(writer.stop)
    assert sorted(await asyncio.gather(*tasks)) == sorted(f"v{n}" for n in range(20))
    assert len(stored(scratch)) == 20

"""The group-commit writer: batching, per-request rollback, bounded queue, draining stop.

Both drivers run the same batch procedure. ``LoopWriter`` only runs when the test yields to
the event loop, so work queued between two awaits forms one batch; ``ThreadWriter`` runs at
once, so the tests first hold it inside a batch (``held``) while the next batch queues up.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.storage.writer import LoopWriter, ThreadWriter, Writer
from tests.storage.writing import CountingHooks, Insert, held, stored


async def test_a_failing_request_rolls_back_alone_inside_its_batch(
    scratch: Runtime, writer_class: type[Writer]
) -> None:
    hooks = CountingHooks()
    writer = writer_class(scratch.db, hooks)
    writer.start()
    try:
        async with held(writer):
            batch = [
                asyncio.create_task(writer.submit(Insert("b-good"))),
                asyncio.create_task(
                    writer.submit(Insert("c-broken", fail_with=RuntimeError("boom")))
                ),
                asyncio.create_task(
                    writer.submit(Insert("d-invalid", fail_with=errors.InvalidValue()))
                ),
                asyncio.create_task(writer.submit(Insert("refused"))),
                asyncio.create_task(writer.submit(Insert("e-good"))),
            ]
            await asyncio.sleep(0)
        results = await asyncio.gather(*batch, return_exceptions=True)
    finally:
        await writer.stop()
    assert results[0] == "b-good" and results[4] == "e-good"
    assert isinstance(results[1], errors.InternalError)
    assert isinstance(results[2], errors.InvalidValue)
    assert isinstance(results[3], errors.AuthError)
    # The five requests shared one committed transaction (after the blocker's, if any).
    assert hooks.batches == (2 if writer_class is ThreadWriter else 1)
    expected = ["b-good", "e-good"]
    assert await stored(scratch) == (
        ["0-blocker", *expected] if writer_class is ThreadWriter else expected
    )


async def test_a_full_queue_answers_unavailable_at_once(
    scratch: Runtime, writer_class: type[Writer]
) -> None:
    writer = writer_class(scratch.db, CountingHooks(), max_queue=2)
    writer.start()
    try:
        async with held(writer):
            queued = [asyncio.create_task(writer.submit(Insert(f"q{n}"))) for n in range(2)]
            await asyncio.sleep(0)
            with pytest.raises(errors.Unavailable) as refused:
                await writer.submit(Insert("over"))
            assert refused.value.retry_after == 1
        assert await asyncio.gather(*queued) == ["q0", "q1"]
    finally:
        await writer.stop()
    assert "over" not in await stored(scratch)


async def test_stop_finishes_queued_work_then_refuses_more(
    scratch: Runtime, writer_class: type[Writer]
) -> None:
    writer = writer_class(scratch.db, CountingHooks())
    writer.start()
    tasks = [asyncio.create_task(writer.submit(Insert(f"v{n:02}"))) for n in range(20)]
    await asyncio.sleep(0)
    await writer.stop()
    assert await asyncio.gather(*tasks) == [f"v{n:02}" for n in range(20)]
    assert await stored(scratch) == [f"v{n:02}" for n in range(20)]
    with pytest.raises(errors.Unavailable):
        await writer.submit(Insert("too-late"))


async def test_a_second_server_on_the_same_sqlite_file_is_refused(tmp_path: Any) -> None:
    from kudos.storage.sqlite import SQLiteDatabase

    first, second = (SQLiteDatabase(f"sqlite:///{tmp_path}/one.db") for _ in range(2))
    first.start_serving()
    try:
        with pytest.raises(RuntimeError, match="already serving"):
            second.start_serving()
    finally:
        first.stop_serving()
    second.start_serving()  # free again once the first one stopped
    second.stop_serving()


async def test_sqlite_answers_only_after_the_fsync_that_covers_the_commit(tmp_path: Any) -> None:
    from kudos.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(f"sqlite:///{tmp_path}/durable.db")
    run_in_transaction(db, lambda tx: tx.execute("CREATE TABLE scratch (value TEXT)"))
    syncing, release = threading.Event(), threading.Event()
    real_sync = db.sync

    def slow_sync() -> None:
        syncing.set()
        release.wait(timeout=10)
        real_sync()

    db.sync = slow_sync  # type: ignore[method-assign]
    writer = LoopWriter(db, CountingHooks())
    writer.start()
    try:
        answer = asyncio.create_task(writer.submit(Insert("durable")))
        await asyncio.to_thread(syncing.wait, 10)
        # Committed (another connection sees it), but not acknowledged before the fsync ends.
        assert run_in_transaction(db, lambda tx: tx.all("SELECT value FROM scratch")) == [
            ("durable",)
        ]
        for _ in range(20):  # plenty of loop turns for a premature answer to show
            await asyncio.sleep(0)
        assert not answer.done()
        release.set()
        assert await answer == "durable"
    finally:
        release.set()
        await writer.stop()


def test_stop_returns_when_the_last_fsync_is_done_but_its_callback_has_not_run(
    tmp_path: Any,
) -> None:
    """A done future returns at once when awaited, before its done-callbacks run: stop() must
    yield to the loop, or it spins forever (seen once as a hung test teardown)."""
    from kudos.storage.sqlite import SQLiteDatabase

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        writer = LoopWriter(SQLiteDatabase(f"sqlite:///{tmp_path}/stop.db"), CountingHooks())
        writer.start()
        syncing: asyncio.Future[None] = loop.create_future()
        syncing.add_done_callback(lambda _: setattr(writer, "_syncing", None))
        writer._syncing = syncing
        running = writer._task
        assert running is not None

        async def last_batch() -> None:
            await running
            # The fsync ends just before stop() resumes: the future is done when stop() looks
            # at it, and its callback is queued behind stop()'s own wake-up.
            loop.call_soon(syncing.set_result, None)

        writer._task = asyncio.ensure_future(last_batch())
        await writer.stop()

    # In a thread of its own: if stop() spins, it never yields, and nothing could time it out.
    thread = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "LoopWriter.stop() did not return"

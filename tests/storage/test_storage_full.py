"""A store with no space left answers 5004 (507, Retry-After), writes nothing of the batch,
and the writer takes work again once there is space. Disk full is the store's failure, not a
request's: whichever request happened to need the next page is no more guilty than its
neighbours (and on SQLite the error may come at COMMIT, where no request is running), so the
whole batch is refused rather than each request retried alone against a full disk.

The store's own out-of-space error is faked here on both stores (psycopg's ``DiskFull``,
SQLite's ``SQLITE_FULL``); ``test_sqlite_full.py`` fills a real SQLite file.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg import errors as pg_errors

from kudos import errors
from kudos.bootstrap import Runtime, run_in_transaction
from kudos.storage.db import Database, Tx
from kudos.storage.postgres import PostgresDatabase
from kudos.storage.sqlite import SQLiteDatabase
from kudos.storage.writer import STORAGE_FULL_RETRY_SECONDS, LoopWriter, Writer
from tests.storage.writing import CountingHooks, Insert, held, stored, with_blocker


def out_of_space(db: Database) -> Exception:
    """The error the store's driver raises when the disk is full."""
    if db.dialect == "postgres":
        return pg_errors.DiskFull("could not extend file: No space left on device")
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = sqlite3.SQLITE_FULL  # as the sqlite3 module sets it
    return exc


class FillsTheStore(Insert):
    """Writes its row, then finds the store full."""

    def apply(self, tx: Tx) -> str:
        super().apply(tx)
        raise out_of_space(tx.db)


async def submit_batch(writer: Writer, works: list[Insert]) -> list[Any]:
    async with held(writer):
        tasks = [asyncio.create_task(writer.submit(work)) for work in works]
        await asyncio.sleep(0)
    return await asyncio.gather(*tasks, return_exceptions=True)


def assert_storage_full(result: Any) -> None:
    assert isinstance(result, errors.StorageFull), result
    assert result.code == 5004 and result.status == 507
    assert result.headers() == {"Retry-After": str(STORAGE_FULL_RETRY_SECONDS)}


@pytest.mark.parametrize(
    "works",
    [
        pytest.param(lambda: [Insert("a"), FillsTheStore("b"), Insert("c")], id="first-pass"),
        pytest.param(
            lambda: [Insert("a", fail_with=RuntimeError("bug")), Insert("b"), FillsTheStore("c")],
            id="savepoint-pass",
        ),
    ],
)
async def test_a_full_store_refuses_the_batch_and_the_writer_goes_on(
    scratch: Runtime, writer_class: type[Writer], works: Any
) -> None:
    writer = writer_class(scratch.db, CountingHooks())
    writer.start()
    try:
        for result in await submit_batch(writer, works()):
            assert_storage_full(result)
        assert await stored(scratch) == with_blocker(writer, [])  # nothing of the batch
        assert await writer.submit(Insert("d-after")) == "d-after"  # space is back
    finally:
        await writer.stop()
    assert await stored(scratch) == with_blocker(writer, ["d-after"])


async def test_when_requests_run_alone_a_full_store_refuses_the_rest(
    scratch: Runtime, writer_class: type[Writer]
) -> None:
    """Each request alone (after a failure outside the requests): those before the full
    store committed, the rest are refused with 5004 rather than tried against it."""
    writer = writer_class(scratch.db, CountingHooks())
    writer.start()
    try:
        works = [Insert("a", fail_in="prepare"), Insert("b"), FillsTheStore("c"), Insert("d")]
        results = await submit_batch(writer, works)
    finally:
        await writer.stop()
    assert isinstance(results[0], errors.InternalError) and results[1] == "b"
    assert_storage_full(results[2])
    assert_storage_full(results[3])
    assert await stored(scratch) == with_blocker(writer, ["b"])


async def test_an_fsync_without_space_answers_5004_and_says_the_outcome_is_unknown(
    tmp_path: Path,
) -> None:
    db = SQLiteDatabase(f"sqlite:///{tmp_path}/full.db")
    run_in_transaction(db, lambda tx: tx.execute("CREATE TABLE scratch (value TEXT)"))
    failing = threading.Event()

    def sync() -> None:
        if failing.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")

    db.sync = sync  # type: ignore[method-assign]
    writer = LoopWriter(db, CountingHooks())
    writer.start()
    try:
        failing.set()
        with pytest.raises(errors.StorageFull) as refused:
            await writer.submit(Insert("unsynced"))
        assert "may or may not be recorded" in refused.value.message
        failing.clear()
        assert await writer.submit(Insert("synced")) == "synced"
    finally:
        await writer.stop()


def test_each_store_knows_its_own_out_of_space_errors(tmp_path: Path) -> None:
    sqlite_db = SQLiteDatabase(f"sqlite:///{tmp_path}/any.db")
    postgres_db = PostgresDatabase("postgresql://nobody@127.0.0.1:1/none")
    enospc = OSError(errno.ENOSPC, "No space left on device")
    for db in (sqlite_db, postgres_db):
        assert db.is_storage_full(out_of_space(db))
        assert db.is_storage_full(enospc)
        assert not db.is_storage_full(OSError(errno.EIO, "I/O error"))
        assert not db.is_storage_full(RuntimeError("database or disk is full"))
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert not sqlite_db.is_storage_full(locked)
    assert not postgres_db.is_storage_full(pg_errors.DeadlockDetected())

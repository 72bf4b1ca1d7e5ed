"""The SQLite WAL stays bounded while the server writes.

Under sustained writes nothing ever let SQLite restart its log (a PASSIVE checkpoint is always
behind a busy writer), so it grew without end. Now the checkpointer resets it (copies it back
and truncates it) once it holds half its limit, and the writer itself, before a batch, when
it reached the limit: the file never passes the limit by more than one batch's writes. A
reader that keeps an old snapshot can delay a reset, never stop the writer.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kudos.bootstrap import Runtime, run_in_transaction
from kudos.config import Settings
from kudos.storage import sqlite as sqlite_adapter
from kudos.storage.db import Tx
from kudos.storage.writer import Call

LIMIT = 1024 * 1024  # the smallest KUDOS_SQLITE_WAL_MAX_BYTES allowed
ROW_BYTES = 64 * 1024
# One batch here writes one row: its overflow pages and a b-tree page or two, each a WAL
# frame (a 4 KiB page and a 24-byte header): about 80 KiB.
BATCH_WAL_BYTES = 128 * 1024
BOUND = LIMIT + BATCH_WAL_BYTES


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: PostgreSQL has no WAL file of ours to bound."""
    return f"sqlite:///{tmp_path}/kudos.db"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"sqlite_wal_max_bytes": LIMIT})


@pytest.fixture
def blobs(runtime: Runtime) -> Runtime:
    run_in_transaction(runtime.db, lambda tx: tx.execute("CREATE TABLE blobs (data BLOB)"))
    return runtime


def wal_path(runtime: Runtime) -> Path:
    return Path(runtime.db.url.removeprefix("sqlite:///") + "-wal")


def insert_blob(tx: Tx) -> None:
    tx.execute("INSERT INTO blobs (data) VALUES (?)", (os.urandom(ROW_BYTES),))


async def write(runtime: Runtime, total_bytes: int) -> list[int]:
    """Write ``total_bytes`` of rows through the server's writer, a batch at a time; the WAL's
    size after each batch."""
    sizes = []
    for _ in range(total_bytes // ROW_BYTES):
        await runtime.writer.submit(Call(insert_blob))
        sizes.append(wal_path(runtime).stat().st_size)
    return sizes


def stored_bytes(runtime: Runtime) -> int:
    row = run_in_transaction(runtime.db, lambda tx: tx.one("SELECT sum(length(data)) FROM blobs"))
    return int(row[0]) if row and row[0] else 0


async def test_sustained_writes_keep_the_wal_under_its_limit_and_lose_nothing(
    blobs: Runtime,
) -> None:
    sizes = await write(blobs, 4 * LIMIT)
    assert max(sizes) > LIMIT // 2, "the load never reached the reset size: the test is moot"
    assert max(sizes) <= BOUND, f"WAL reached {max(sizes)} bytes"
    assert stored_bytes(blobs) == 4 * LIMIT


@pytest.fixture
def slow_checkpointer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpointer that never looks at the WAL's size: only the writer resets the log."""
    monkeypatch.setattr(sqlite_adapter, "WAL_POLL_SECONDS", 3600.0)


async def test_a_writer_faster_than_the_checkpointer_resets_the_wal_itself(
    slow_checkpointer: None, blobs: Runtime
) -> None:
    sizes = await write(blobs, 4 * LIMIT)
    assert max(sizes) <= BOUND, f"WAL reached {max(sizes)} bytes"
    assert min(sizes[len(sizes) // 2 :]) < LIMIT // 2  # it was reset while writing
    assert stored_bytes(blobs) == 4 * LIMIT


@pytest.fixture
def old_snapshot(blobs: Runtime) -> Iterator[sqlite3.Connection]:
    """A reader inside a transaction that read the WAL: no reset can complete meanwhile."""
    reader = sqlite3.connect(blobs.db.url.removeprefix("sqlite:///"), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM blobs").fetchone()
    yield reader
    reader.close()


async def test_a_reader_on_an_old_snapshot_delays_the_reset_but_never_stops_the_writer(
    blobs: Runtime, old_snapshot: sqlite3.Connection
) -> None:
    attempts: list[int] = []
    reset_log = blobs.db.reset_log

    def counted_reset_log() -> None:
        attempts.append(blobs.db.wal_size())  # type: ignore[attr-defined]
        reset_log()

    blobs.db.reset_log = counted_reset_log  # type: ignore[method-assign]
    held = await write(blobs, 3 * LIMIT)
    assert max(held) > BOUND  # the log could not be reset while the reader held it
    # The writer tried again only each time the log grew by another limit's worth, not
    # before each of its 48 batches (each try waits for the reader a little).
    assert 1 <= len(attempts) <= 3
    assert stored_bytes(blobs) == 3 * LIMIT
    old_snapshot.execute("COMMIT")
    after = await write(blobs, 2 * LIMIT)
    assert min(after) < LIMIT // 2  # reset once the reader let go

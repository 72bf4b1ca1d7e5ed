"""SQLite adapter: WAL, ``synchronous=FULL`` by default, ``BEGIN IMMEDIATE`` for the writer."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import IO, Any, ClassVar

from kudos.storage.db import Database, Tx

log = logging.getLogger("kudos.sqlite")

BUSY_WAIT_SECONDS = 30.0
# Checkpoints compete with the writer's WAL fsyncs for the disk: measured with `make bench`,
# one every 5 s gave a higher rate and a lower p99 than one every second (or every 0.2 s).
CHECKPOINT_SECONDS = 5.0
WRITER_CACHE_KIB = 64 * 1024


class SQLiteDatabase(Database):
    dialect = "sqlite"
    template_fields: ClassVar[dict[str, str]] = {
        "now": "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        "timestamp": "TEXT",
        "skip_locked": "",  # one writer: nothing to skip
    }

    def __init__(
        self, url: str, *, synchronous: str = "FULL", checkpoint_seconds: float = CHECKPOINT_SECONDS
    ) -> None:
        super().__init__(url)
        path = url.removeprefix("sqlite:").removeprefix("//")
        # sqlite:///relative.db → "/relative.db" after the scheme: three slashes mean relative,
        # four mean absolute (sqlite:////abs/path.db), as in SQLAlchemy.
        self.path = path[1:] if path.startswith("/") else path
        self.synchronous = synchronous
        self.checkpoint_seconds = checkpoint_seconds
        self._checkpointer: _Checkpointer | None = None
        self._claim: IO[str] | None = None
        self._wal_fd: int | None = None

    def start_serving(self) -> None:
        """One server per file (its writer remembers what it wrote); checkpoint the WAL from a
        background thread, off the writer's commit path."""
        if self.path == ":memory:" or self._checkpointer is not None:
            return
        self._claim = open(f"{self.path}.serving", "a")  # noqa: SIM115 - held while serving
        try:
            fcntl.flock(self._claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._claim.close()
            self._claim = None
            raise RuntimeError(f"another kudos server is already serving {self.path}") from None
        self._checkpointer = _Checkpointer(self)
        self._checkpointer.start()

    def stop_serving(self) -> None:
        self._close_wal()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._claim is not None:
            self._claim.close()  # closing releases the lock
            self._claim = None

    def connect(self, *, writer: bool) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=30.0,
            cached_statements=512,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        if writer:
            # The writer never lets SQLite sleep inside a call: ``try_begin`` fails at once and
            # ``begin`` (in a thread) waits out another process's lock itself. Checkpoints run
            # in the background (``start_serving``), not inside the writer's commits.
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            if self._checkpointer is not None:
                conn.execute("PRAGMA wal_autocheckpoint=0")
        else:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA query_only=ON")
        return conn

    def begin_sql(self) -> str:
        return "BEGIN IMMEDIATE"

    def try_begin(self, conn: Any) -> bool:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                return False
            raise
        return True

    def defer_sync(self, conn: Any) -> bool:
        """With ``synchronous=FULL``, let the writer's COMMIT skip its fsync (``synchronous=OFF``
        on that connection only) and do the fsync in ``sync``: the same durability, but the
        writer need not wait for the disk before it starts the next batch. Checkpoints keep
        their own fsyncs (the checkpointer's connection stays FULL)."""
        if self.synchronous != "FULL" or self.path == ":memory:":
            return False
        conn.execute("PRAGMA synchronous=OFF")
        return True

    def sync(self) -> None:
        """fsync the WAL file: every frame written so far, so every commit so far."""
        if self._wal_fd is None or os.fstat(self._wal_fd).st_nlink == 0:
            self._close_wal()
            self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            _fsync_directory(self.path)  # the WAL file's own directory entry
        os.fsync(self._wal_fd)

    def _close_wal(self) -> None:
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None

    def next_ids(self, tx: Tx, table: str, count: int) -> list[int]:
        """The single writer counts on from the highest id, once per transaction."""
        key = ("next-id", table)
        start: int | None = tx.memo.get(key)
        if start is None:
            row = tx.one(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
            start = int(row[0]) if row else 1
        tx.memo[key] = start + count
        return list(range(start, start + count))

    def begin(self, conn: Any) -> None:
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while not self.try_begin(conn):
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError("database is locked by another process")
            time.sleep(0.002)


def _fsync_directory(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class _Checkpointer:
    """Copies the WAL back into the database file every few seconds (PASSIVE: never blocks
    the writer), and truncates it on stop."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._conn = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=1000")
        self._conn.execute("PRAGMA synchronous=FULL")  # checkpoints fsync the database file
        self._every = db.checkpoint_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kudos-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            log.warning("final WAL checkpoint skipped: the database is busy")
        self._conn.close()

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                log.exception("WAL checkpoint failed; retrying in %s s", self._every)

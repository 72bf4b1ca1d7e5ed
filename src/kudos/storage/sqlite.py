"""SQLite adapter: WAL, ``synchronous=FULL`` by default, ``BEGIN IMMEDIATE`` for the writer.

The WAL is kept bounded while serving. SQLite restarts it from its beginning only when a
writer begins a transaction with every frame already copied back and no reader using it,
which never happens under sustained load: the writer appends while a PASSIVE checkpoint
copies, so the copy is always behind and the file grew by ~30 MiB/s without end. So the
checkpointer thread, which polls the file's size, resets the log once it passes half of
``wal_max_bytes``: a PASSIVE checkpoint copies the bulk while the writer goes on, then a
TRUNCATE checkpoint holds the write lock for the few frames left, waits (briefly) for readers
still on the log, and truncates the file to nothing; the next commit starts it again. And if
the log reaches ``wal_max_bytes`` all the same (a burst faster than the checkpointer), the
writer does the reset itself before its next batch (``reset_log``), so the file never passes
the limit by more than one batch. The truncate keeps the file's inode, so ``sync``'s open
descriptor stays valid.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, ClassVar

from kudos import errors
from kudos.storage.db import Database, Tx

log = logging.getLogger("kudos.sqlite")

BUSY_WAIT_SECONDS = 30.0
# Checkpoints compete with the writer's WAL fsyncs for the disk: measured with `make bench`,
# one every 5 s gave a higher rate and a lower p99 than one every second (or every 0.2 s).
CHECKPOINT_SECONDS = 5.0
WRITER_CACHE_KIB = 64 * 1024
WAL_MAX_BYTES = 64 * 1024 * 1024
# How often the checkpointer looks at the WAL's size (one stat call).
WAL_POLL_SECONDS = 0.05
# The checkpointer resets the WAL once it holds this share of its limit, early enough that
# the writer seldom reaches the limit itself (where it waits for the reset).
WAL_RESET_SHARE = 0.5
# How long a resetting checkpoint waits for the writer's batch and for readers still on the
# log; it holds the write lock while it waits for readers, so the writer waits as long.
RESET_BUSY_MS = 250


class SQLiteDatabase(Database):
    dialect = "sqlite"
    template_fields: ClassVar[dict[str, str]] = {
        "now": "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        "timestamp": "TEXT",
        "skip_locked": "",  # one writer: nothing to skip
        "metadata_bytes": "length(CAST(metadata AS BLOB))",  # bytes, not characters
        "metadata_text": "metadata",
        # An event's time for a long scan: the text as stored (it sorts as time does; those
        # whose arithmetic matters are converted by ``Database.micros``, most never are).
        "event_time": "received_at",
        "least": "min",  # SQLite's two-argument min() and max() are scalar functions
        "greatest": "max",
    }

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        wal_max_bytes: int = WAL_MAX_BYTES,
    ) -> None:
        super().__init__(url)
        path = url.removeprefix("sqlite:").removeprefix("//")
        # sqlite:///relative.db → "/relative.db" after the scheme: three slashes mean relative,
        # four mean absolute (sqlite:////abs/path.db), as in SQLAlchemy.
        self.path = path[1:] if path.startswith("/") else path
        self.synchronous = synchronous
        self.checkpoint_seconds = checkpoint_seconds
        self.wal_max_bytes = wal_max_bytes
        self._wal_path = f"{self.path}-wal"
        # The size at which the writer waits for a reset: the limit, or more while readers
        # keep a reset from completing (see ``reset_log``).
        self._wal_gate = wal_max_bytes
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
            # Whenever SQLite itself restarts the log, it cuts the file back to the limit.
            conn.execute(f"PRAGMA journal_size_limit={self.wal_max_bytes}")
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

    def rollback(self, conn: Any) -> None:
        """ROLLBACK, unless SQLite rolled the transaction back itself (it may on SQLITE_FULL,
        SQLITE_IOERR or SQLITE_NOMEM): the connection is sound, and the writer keeps it (and
        what it remembers) rather than reconnect as if it were lost."""
        if conn.in_transaction:
            conn.execute("ROLLBACK")

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

    def wal_size(self) -> int:
        """The ``-wal`` file's size in bytes (0 when there is none)."""
        try:
            return os.stat(self._wal_path).st_size
        except OSError:
            return 0

    def log_over_limit(self) -> bool:
        if self._checkpointer is None:  # not serving: SQLite's own autocheckpoint runs
            return False
        size = self.wal_size()
        if size <= self.wal_max_bytes:
            self._wal_gate = self.wal_max_bytes
        return size > self._wal_gate

    def reset_log(self) -> None:
        """Reset the WAL now (in the writer's disk thread, between batches). If readers keep
        it (or the checkpoint fails), the writer goes on and waits again only once the log
        grew by another limit's worth: a long read slows writes down, never stops them."""
        if self._checkpointer is None or self._checkpointer.reset():
            return
        self._wal_gate = self.wal_size() + self.wal_max_bytes
        log.warning(
            "the WAL could not be reset (readers still use it); next try past %d bytes",
            self._wal_gate,
        )

    def is_storage_full(self, exc: BaseException) -> bool:
        """``SQLITE_FULL`` (a write found the disk full, or the file at ``max_page_count``),
        or ``ENOSPC`` from the WAL's fsync."""
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", 0)
            return code & 0xFF == sqlite3.SQLITE_FULL
        return super().is_storage_full(exc)

    @contextmanager
    def time_budget(self, tx: Tx, seconds: float) -> Iterator[None]:
        """SQLite's progress handler interrupts a statement once the budget is spent."""
        deadline = time.monotonic() + seconds
        tx.conn.set_progress_handler(lambda: time.monotonic() > deadline, 20_000)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise errors.QueryTimeout() from None
            raise
        finally:
            tx.conn.set_progress_handler(None, 0)

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
    """Copies the WAL back into the database file (PASSIVE: never blocks the writer) every few
    seconds, resets it once it passes ``WAL_RESET_SHARE`` of its limit, and truncates it on
    stop. Its connection is ``synchronous=FULL``: checkpoints fsync the database file before
    the log can be reused."""

    def __init__(self, db: SQLiteDatabase) -> None:
        self._db = db
        self._conn = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout={RESET_BUSY_MS}")
        self._conn.execute("PRAGMA synchronous=FULL")  # checkpoints fsync the database file
        self._every = db.checkpoint_seconds
        self._reset_at = int(db.wal_max_bytes * WAL_RESET_SHARE)
        self._lock = threading.Lock()  # the connection: this thread's and the writer's reset
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kudos-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        with self._lock:
            if not self._checkpoint("TRUNCATE"):
                log.warning("final WAL checkpoint skipped: the database is busy")
            self._conn.close()

    def reset(self) -> bool:
        """Copy the whole WAL back and truncate it, unless it is already below the reset
        size; ``False`` if readers kept it (or the checkpoint failed)."""
        with self._lock:
            size = self._db.wal_size()
            if size <= self._reset_at:
                return True
            started = time.monotonic()
            self._checkpoint("PASSIVE")  # the bulk of the copy, while the writer goes on
            # Once more for what the writer appended meanwhile, so little is left to copy
            # while holding the write lock (measured with make bench's SQLite load: p99
            # 34-49 ms with one pass, 21-25 ms with two; more passes, more fsyncs, did worse).
            self._checkpoint("PASSIVE")
            copied = time.monotonic()
            done = self._checkpoint("TRUNCATE")  # the rest, holding the write lock
            log.debug(
                "WAL reset (%s) at %d bytes: copied in %.0f ms, then held writers %.0f ms",
                "done" if done else "readers still on it",
                size,
                (copied - started) * 1000,
                (time.monotonic() - copied) * 1000,
            )
            return done

    def _run(self) -> None:
        due = time.monotonic() + self._every
        while not self._stopping.wait(WAL_POLL_SECONDS):
            over = self._db.wal_size() > self._reset_at
            if not over and time.monotonic() < due:
                continue
            if over:
                done = self.reset()
            else:
                with self._lock:
                    done = self._checkpoint("PASSIVE")
            if not done:  # readers hold the log, or the disk is full: not again at once
                self._stopping.wait(self._every)
            due = time.monotonic() + self._every

    def _checkpoint(self, mode: str) -> bool:
        """One checkpoint (hold ``_lock``); ``False`` if it could not complete."""
        try:
            row = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint (%s) failed: %s", mode, exc)
            return False
        return row is not None and row[0] == 0

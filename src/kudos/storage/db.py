"""The database port: connections, transactions and the per-dialect SQL differences.

Repositories write SQL once, with ``?`` placeholders and ``{name}`` template fields; each
adapter (``sqlite.py``, ``postgres.py``) translates it. Connections are plain DB-API
connections in autocommit mode, and transactions are opened explicitly with ``Tx.begin``.
"""

from __future__ import annotations

import abc
import errno
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any, ClassVar, Protocol, TypeVar

from kudos.domain.model import iso_at

Row = tuple[Any, ...]
_minutes: dict[str, float] = {}
T = TypeVar("T")

# Values per IN list (``Database.select_in``); both stores allow more bound parameters.
MAX_IN_LIST = 512
# Facts a single writer keeps in memory, by shelf: how many of each it keeps at most
# (customerId → profile id: about 100 bytes each; a customer's reward row: about 0.7 KB with
# a 20-campaign program; an event catalog name or key known to exist, storage.events: up to
# about 0.5 KB with the longest key; a customer's last active day per event name, analytics:
# about 0.2 KB).
SHELVES = {
    "facts": 200_000,
    "rewards": 50_000,
    "catalog": 50_000,
    "activity": 100_000,
    "seen": 100_000,
}
# Shelves of facts no other process can make false once they are committed (an activity row
# that exists), kept after COMMIT even where several processes write.
MONOTONE_SHELVES = frozenset({"seen"})
MAX_REMEMBERED = SHELVES["facts"]


class Cursor(Protocol):
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def close(self) -> None: ...


class Database(abc.ABC):
    """One store: how to connect, and how its SQL differs from the shared text."""

    dialect: str
    template_fields: ClassVar[dict[str, str]] = {}
    # True where several processes may write at once, so writers must take ``lock`` keys.
    concurrent_writers = False
    # Which copy of a hot counter row this process adds to (analytics' ``shard`` columns):
    # 0 with a single writer; PostgreSQL spreads its processes over a few.
    shard = 0
    retryable_errors: tuple[type[BaseException], ...] = ()
    connection_errors: tuple[type[BaseException], ...] = ()
    migrations_package = "kudos.storage.migrations"

    def __init__(self, url: str) -> None:
        self.url = url
        self._sql_cache: dict[str, str] = {}

    @abc.abstractmethod
    def connect(self, *, writer: bool) -> Connection:
        """Open a connection in autocommit mode (the writer's gets write settings)."""

    @abc.abstractmethod
    def begin_sql(self) -> str:
        """The statement that opens a write transaction."""

    def begin(self, conn: Any) -> None:
        """Open a write transaction, waiting for other writers if need be."""
        conn.execute(self.begin_sql())

    def try_begin(self, conn: Any) -> bool:
        """Open a write transaction only if that needs no waiting; ``False`` otherwise."""
        return False

    def rollback(self, conn: Any) -> None:
        """Roll back the open transaction; raises if the connection is gone."""
        conn.execute("ROLLBACK")

    def defer_sync(self, conn: Any) -> bool:
        """Make COMMIT on ``conn`` return before its data is on disk, if this store can; the
        caller must then call ``sync`` before it reports anything committed as durable."""
        return False

    def sync(self) -> None:  # noqa: B027 - optional hook: no-op where COMMIT is durable
        """Make every transaction committed so far durable (see ``defer_sync``)."""

    def is_storage_full(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the store has no space left (disk or quota full): the
        store's failure, never a request's (``errors.StorageFull``)."""
        return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)

    def log_over_limit(self) -> bool:
        """Whether the store's write-ahead log passed its size limit, so that the writer must
        let ``reset_log`` shrink it before its next batch (SQLite; never elsewhere). Cheap:
        the writer asks before every batch, on its event loop."""
        return False

    def reset_log(self) -> None:  # noqa: B027 - optional hook: no-op without a local log
        """Copy the write-ahead log back into the database and restart it; blocks, so the
        writer calls it in a thread, between batches. Never raises (failures are logged)."""

    def placeholder_sql(self, sql: str) -> str:
        """Rewrite ``?`` placeholders for the driver (identity on SQLite)."""
        return sql

    def sql(self, text: str) -> str:
        """Translate shared SQL text into this dialect's, cached by text."""
        cached = self._sql_cache.get(text)
        if cached is None:
            cached = self.placeholder_sql(text.format(**self.template_fields))
            self._sql_cache[text] = cached
        return cached

    def start_serving(self) -> None:  # noqa: B027 - optional hook: no-op by default
        """Claim the store for a server and start its upkeep (SQLite: one server per file,
        WAL checkpoints); call before the writer connects."""

    def stop_serving(self) -> None:  # noqa: B027 - optional hook: no-op by default
        """Stop the upkeep and release the claim; call after the last connection closed."""

    def setup_statements(self) -> list[str]:
        """Statements that must run before the first migration (PostgreSQL: the schema)."""
        return []

    def lock(self, tx: Tx, keys: Sequence[str]) -> None:  # noqa: B027 - optional hook: no-op by default
        """Serialize concurrent transactions on these keys (a no-op with one writer)."""

    @abc.abstractmethod
    def next_ids(self, tx: Tx, table: str, count: int) -> list[int]:
        """Reserve ``count`` ids of ``table`` for rows this transaction inserts with explicit
        ids (so they are known before the batch's bulk insert)."""

    def executemany(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def select_in(
        self, tx: Tx, sql: str, params: Sequence[Any], values: Sequence[Any]
    ) -> list[Row]:
        """The rows of ``sql``, whose ``IN ({marks})`` asks for ``values``, after ``params``.
        Here in chunks of at most ``MAX_IN_LIST`` marks, each padded to a power of two
        (repeating its last value), so the statement has one of a few shapes and the driver's
        cache of prepared statements stays small."""
        found: list[Row] = []
        for start in range(0, len(values), MAX_IN_LIST):
            chunk = list(values[start : start + MAX_IN_LIST])
            chunk += chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
            marks = ", ".join("?" * len(chunk))
            found.extend(tx.all(sql.replace("{marks}", marks), (*params, *chunk)))
        return found

    # --- analytics' reads (kudos.analytics) ---------------------------------------------------

    def time_value(self, seconds: float) -> Any:
        """A UTC instant as this store keeps times (ISO text; PostgreSQL: a datetime)."""
        return iso_at(seconds)

    def seconds(self, value: Any) -> float:
        """A stored time (``time_value``'s form) as Unix seconds; cached by its minute."""
        text = str(value)
        base = _minutes.get(text[:16])
        if base is None:
            if len(_minutes) >= 65536:
                _minutes.clear()
            moment = datetime.fromisoformat(text[:16]).replace(tzinfo=UTC)
            base = _minutes[text[:16]] = moment.timestamp()
        return base + float(text[17:-1] or 0)

    def event_time(self, seconds: float) -> Any:
        """A Unix time in the form ``{event_time}`` selects (comparable with it)."""
        return self.time_value(seconds)

    def micros(self, value: Any) -> int:
        """An ``{event_time}`` as whole microseconds since 1970."""
        text = str(value)
        return round(self.seconds(text[:19] + "Z")) * 1_000_000 + int(text[20:26] or 0)

    def stream(self, tx: Tx, sql: str, params: Sequence[Any] = ()) -> Iterator[Row]:
        """The rows of a long read, fetched as they are iterated (not all at once)."""
        yield from tx.execute(sql, params)

    @contextmanager
    def time_budget(self, tx: Tx, seconds: float) -> Iterator[None]:
        """Stop any statement of ``tx`` that runs past ``seconds`` (``QueryTimeout``)."""
        yield

    def migration_scripts(self) -> list[tuple[int, str, str]]:
        """``(version, name, sql)`` for every migration file of this dialect, in order."""
        folder = resources.files(self.migrations_package).joinpath(self.dialect)
        scripts = []
        for entry in folder.iterdir():
            match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
            if match:
                scripts.append((int(match[1]), match[2], entry.read_text()))
        return sorted(scripts)

    def pending_migrations(self) -> list[int]:
        """Versions not applied yet (all of them on an empty database)."""
        conn = self.connect(writer=False)
        try:
            try:
                rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
            except Exception:  # no table yet: nothing applied
                rows = []
            done = {row[0] for row in rows}
        finally:
            conn.close()
        return [version for version, _, _ in self.migration_scripts() if version not in done]

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        conn = self.connect(writer=True)
        try:
            return apply_migrations(self, Tx(self, conn))
        finally:
            conn.close()

    def describe(self) -> str:
        """The URL without credentials, for logs."""
        return re.sub(r"//[^@/]*@", "//***@", self.url)


class Tx:
    """A connection plus the dialect: shared SQL in, rows out."""

    def __init__(self, db: Database, conn: Any) -> None:
        self.db = db
        self.conn = conn
        self.memo: dict[Any, Any] = {}
        self._staged: dict[str, list[Sequence[Any]]] = {}
        # Running sums by statement and key (``tally``), written with the staged rows.
        self._tallies: dict[str, dict[tuple[Any, ...], list[Any]]] = {}
        # Facts learned by a writer, valid across its transactions once committed (see
        # ``remember``); only where this process is the store's single writer.
        self._known: dict[str, dict[Any, Any]] = {shelf: {} for shelf in SHELVES}
        self._pending: dict[str, dict[Any, Any]] = {shelf: {} for shelf in SHELVES}
        # What ``remember`` and ``take`` touched since the open savepoint: (shelf, key).
        self._undo: list[tuple[str, Any]] | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.db.sql(sql), params)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = self.execute(sql, params).fetchall()
        return rows

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` for every row (``executemany``: psycopg pipelines the rows in one round
        trip; SQLite runs them in-process). Measured against multi-row ``VALUES`` statements,
        which both drivers took longer over: SQLite ~2 µs more per row, and psycopg parses a
        statement of more than 50 parameters again on every call (more CPU per batch than
        the rows themselves)."""
        self.db.executemany(self.conn, self.db.sql(sql), rows)

    def once(self, key: Any, compute: Callable[..., T], *args: Any) -> T:
        """``compute(*args)``, run at most once per transaction for ``key`` (``memo``). Pass
        arguments rather than a closure on hot paths: no function is built per call."""
        if key in self.memo:
            found: T = self.memo[key]
            return found
        value = self.memo[key] = compute(*args)
        return value

    def recall(self, key: Any, *, shelf: str = "facts") -> Any:
        """A fact remembered by an earlier (committed) or this transaction, or ``None``."""
        found = self._pending[shelf].get(key)
        return self._known[shelf].get(key) if found is None else found

    def take(self, key: Any, *, shelf: str) -> Any:
        """Recall a fact and forget it: for a value its taker changes in place and remembers
        again once written (a failure in between then leaves nothing stale behind)."""
        if self._undo is not None:
            self._undo.append((shelf, key))
        found = self._pending[shelf].pop(key, None)
        return self._known[shelf].pop(key, None) if found is None else found

    def remember(self, key: Any, value: Any, *, shelf: str = "facts") -> None:
        """Remember a fact for the rest of this transaction (callers hold its locks). After
        COMMIT it is kept only on a store with a single writer (elsewhere another process may
        change it at any time), or on a ``MONOTONE_SHELVES`` shelf. A rolled-back savepoint
        forgets what was remembered in it."""
        if self._undo is not None:
            self._undo.append((shelf, key))
        self._pending[shelf][key] = value

    def savepoint(self) -> None:
        """Open the savepoint of one request inside a batch (see ``rollback_to_savepoint``)."""
        self.execute("SAVEPOINT item")
        self._undo = []

    def release_savepoint(self) -> None:
        self.execute("RELEASE SAVEPOINT item")
        self._undo = None

    def rollback_to_savepoint(self) -> None:
        """Undo the request's writes: its staged rows, its statements, and every fact it
        remembered or took (forgotten entirely: the rows they describe are read again)."""
        self.discard_staged()
        self.execute("ROLLBACK TO SAVEPOINT item")
        self.execute("RELEASE SAVEPOINT item")
        undo, self._undo = self._undo or [], None
        for shelf, key in undo:
            self._pending[shelf].pop(key, None)
            self._known[shelf].pop(key, None)

    def stage(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Queue rows for one bulk insert, run by ``flush_staged`` (at the latest, on commit).

        The writer flushes once per batch, so a batch of requests costs one ``executemany``
        per statement (one round trip on PostgreSQL, where psycopg pipelines it).
        """
        self._staged.setdefault(sql, []).extend(rows)

    def tally(self, sql: str, key: tuple[Any, ...], *amounts: Any) -> None:
        """Add ``amounts`` to the running sums of ``key``, written once per batch with the
        staged rows (``flush_staged``): ``sql`` is an upsert that adds what it is given, and
        takes the key's values, then the sums. A rolled-back request's sums go with its
        staged rows."""
        sums = self._tallies.setdefault(sql, {})
        found = sums.get(key)
        if found is None:
            sums[key] = list(amounts)
        else:
            for index, amount in enumerate(amounts):
                found[index] += amount

    def flush_staged(self) -> None:
        staged, self._staged = self._staged, {}
        for sql, rows in staged.items():
            self.many(sql, rows)
        tallies, self._tallies = self._tallies, {}
        for sql, sums in tallies.items():
            # In key order: concurrent writers (PostgreSQL) take the rows' locks in one order.
            self.many(sql, [(*key, *sums[key]) for key in sorted(sums)])

    def discard_staged(self) -> None:
        self._staged = {}
        self._tallies = {}

    def begin(self) -> None:
        self.db.begin(self.conn)
        self._reset()

    def try_begin(self) -> bool:
        """Begin at once if no other process holds the write lock (see ``Database``)."""
        if not self.db.try_begin(self.conn):
            return False
        self._reset()
        return True

    def _reset(self) -> None:
        self.memo.clear()
        self._staged = {}
        self._tallies = {}
        self._forget_pending()

    def _forget_pending(self) -> None:
        for pending in self._pending.values():
            pending.clear()
        self._undo = None

    def commit(self) -> None:
        self.flush_staged()
        self.conn.execute("COMMIT")
        single = not self.db.concurrent_writers
        for shelf, pending in self._pending.items():
            if pending and (single or shelf in MONOTONE_SHELVES):
                _keep(self._known[shelf], pending, SHELVES[shelf])
        self._forget_pending()

    def rollback(self) -> None:
        self._staged = {}
        self._tallies = {}
        self._forget_pending()
        self.db.rollback(self.conn)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Run the block in a transaction that commits on success and rolls back otherwise."""
        self.begin()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        self.commit()


def newest_first(
    tx: Tx,
    select: str,
    filters: dict[str, Any],
    *,
    before: int | None,
    limit: int,
    id_column: str = "id",
) -> list[Row]:
    """One page of ``select`` (a ``SELECT … FROM …`` without ``WHERE``), newest first: the
    rows matching every filter whose value is not ``None`` (column → value), with ids below
    ``before`` (keyset paging)."""
    conditions = [f"{column} = ?" for column, value in filters.items() if value is not None]
    params: list[Any] = [value for value in filters.values() if value is not None]
    if before is not None:
        conditions.append(f"{id_column} < ?")
        params.append(before)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    params.append(limit)
    return tx.all(f"{select}{where} ORDER BY {id_column} DESC LIMIT ?", params)


def _keep(known: dict[Any, Any], learned: dict[Any, Any], limit: int) -> None:
    """Add what a transaction learned; past ``limit``, forget the half written longest ago."""
    for key, value in learned.items():
        known.pop(key, None)  # re-inserted last: the dict's order is the order of writes
        known[key] = value
    if len(known) > limit:
        for key in list(itertools.islice(known, len(known) // 2)):
            del known[key]


def apply_migrations(db: Database, tx: Tx) -> list[int]:
    """Apply every migration newer than the recorded version, in one transaction."""
    applied: list[int] = []
    with tx.transaction():
        db.lock(tx, ["schema_migrations"])
        for statement in db.setup_statements():
            tx.execute(statement)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {timestamp} NOT NULL)"
        )
        done = {row[0] for row in tx.all("SELECT version FROM schema_migrations")}
        for version, name, script in db.migration_scripts():
            if version in done:
                continue
            _run_script(tx.conn, script)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, {now})",
                (version, name),
            )
            applied.append(version)
    return applied


def _run_script(conn: Any, script: str) -> None:
    # executescript() would COMMIT first; run statement by statement inside our transaction.
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def open_database(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    sqlite_checkpoint_seconds: float = 5.0,
    sqlite_wal_max_bytes: int = 64 * 1024 * 1024,
) -> Database:
    """Choose the adapter by URL scheme."""
    if url.startswith("sqlite:"):
        from kudos.storage.sqlite import SQLiteDatabase

        return SQLiteDatabase(
            url,
            synchronous=sqlite_synchronous,
            checkpoint_seconds=sqlite_checkpoint_seconds,
            wal_max_bytes=sqlite_wal_max_bytes,
        )
    if url.startswith(("postgresql:", "postgres:")):
        from kudos.storage.postgres import PostgresDatabase

        return PostgresDatabase(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")

"""The analytics benchmark's store: the raw rows of a shop written in bulk, then the analytics
derived from them with the code ingest uses (``kudos.analytics.rebuild``).

A build goes day by day, one transaction per day (its events, the profiles and customerIds
first seen that day, its merges, its event catalog counts, its loyalty rows: see
``bench/analytics_points.py``), and records how far it got in a
table of its own (``bench_analytics_build``), so an interrupted build resumes after the last
day it committed and a finished one is reused as it is. The events' secondary indexes are
dropped while loading and built again at the end (sorting once is faster than keeping them
up to date row by row); their definitions wait in that table meanwhile.

SQLite loads with ``synchronous=OFF`` (the bench's own file: a crash loses at most the days
since the last checkpoint, and the build resumes); the rebuild and the queries use the
store's defaults, as a server does. PostgreSQL loads with ``COPY``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench import analytics_points as points
from bench import analytics_shop as shop
from kudos.domain.catalog import merge_types
from kudos.domain.identity import normalize_email
from kudos.domain.model import Account
from kudos.services import accounts
from kudos.services.security import Keyring
from kudos.storage import accounts as account_rows
from kudos.storage import events as event_rows
from kudos.storage.db import Database, Tx, open_database

ACCOUNT = "analytics-bench"
SERVER_KEY = "bench-server-key"
MARKER = "bench_analytics_build"
PROFILE_COLUMNS = (
    "id, account_id, created_at, updated_at, email, mobile, email_key, mobile_key, attributes"
)
Progress = Callable[[str], None]


@dataclass
class Build:
    """What a store holds of a build (kept in its ``bench_analytics_build`` table)."""

    shape: dict[str, Any]
    timezone: str
    account_id: int
    next_event_id: int  # the id the next event gets
    profile_base: int  # customer i's profile is base + i; their app profile base + customers + i
    loaded_through: int = -1  # the last day committed
    events: int = 0
    index_ddl: list[str] = field(default_factory=list)  # dropped while loading
    load_seconds: float = 0.0
    index_seconds: float = 0.0
    rebuild_seconds: float | None = None
    vacuum_seconds: float = 0.0  # PostgreSQL: VACUUM ANALYZE after the rebuild
    rebuild_events: int | None = None

    @property
    def loaded(self) -> bool:
        return self.loaded_through == self.shape["days"] - 1 and not self.index_ddl

    def main_profile(self, index: int) -> int:
        return self.profile_base + index

    def app_profile(self, index: int) -> int:
        return self.profile_base + int(self.shape["customers"]) + index


class Store:
    """One backend of the benchmark: where it lives and how it writes in bulk."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    @property
    def sqlite_path(self) -> str | None:
        if not self.url.startswith("sqlite:"):
            return None
        path = self.url.removeprefix("sqlite:").removeprefix("//")
        return path[1:] if path.startswith("/") else path

    def database(self, *, loading: bool = False) -> Database:
        """The store as kudos opens it (``loading``: SQLite without waiting for the disk)."""
        return open_database(self.url, sqlite_synchronous="OFF" if loading else "FULL")

    def wipe(self) -> None:
        """Start afresh: delete the SQLite file, or drop the PostgreSQL schema."""
        path = self.sqlite_path
        if path is not None:
            for suffix in ("", "-wal", "-shm", ".serving"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)
            return
        schema = getattr(self.database(), "schema", None)
        if not schema:
            raise ValueError("a PostgreSQL store needs its own schema: add ?schema=NAME")
        db = self.database()
        conn = db.connect(writer=True)
        try:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            conn.close()

    def bulk(self, tx: Tx, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows the fastest way: ``COPY`` on PostgreSQL, ``executemany`` on SQLite."""
        if not rows:
            return
        if self.sqlite_path is None:
            with (
                tx.conn.cursor() as cursor,
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * (columns.count(",") + 1))
        tx.conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def size(self) -> tuple[int, dict[str, int]]:
        """Bytes on disk in all, and per table with its indexes (where the store tells)."""
        db = self.database()
        conn = db.connect(writer=False)
        try:
            if self.sqlite_path is not None:
                return _sqlite_size(self.sqlite_path, conn)
            return _postgres_size(conn)
        finally:
            conn.close()


def _sqlite_size(path: str, conn: Any) -> tuple[int, dict[str, int]]:
    total = sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
    tables: dict[str, int] = {}
    try:
        rows = conn.execute(
            "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d"
            " LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
        ).fetchall()
    except sqlite3.OperationalError:  # built without SQLITE_ENABLE_DBSTAT_VTAB
        rows = []
    for table, size in rows:
        tables[table] = int(size)
    return total, tables


def _postgres_size(conn: Any) -> tuple[int, dict[str, int]]:
    rows = conn.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
        " WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
    ).fetchall()
    tables = {name: int(size) for name, size in rows}
    return sum(tables.values()), tables


# --- the build ---------------------------------------------------------------------------------


def ensure_built(
    store: Store,
    *,
    events: int,
    customers: int,
    days: int,
    seed: int,
    timezone: str,
    reuse: bool,
    progress: Progress,
) -> Build:
    """Build the store (or resume a build, or reuse a finished one with ``reuse``) and derive
    its analytics; the answer says what it holds and how long each part took."""
    if not reuse:
        store.wipe()
    wanted = {"events": events, "customers": customers, "days": days, "seed": seed}
    db = store.database(loading=True)
    db.migrate()
    with _writer(db) as tx:
        build = _start(tx, store, wanted, timezone=timezone)
    if not build.loaded:
        _load(db, store, build, progress)
    if build.rebuild_seconds is None:
        _rebuild(store, build, progress)
    return build


@contextlib.contextmanager
def _writer(db: Database) -> Iterator[Tx]:
    conn = db.connect(writer=True)
    try:
        yield Tx(db, conn)
    finally:
        conn.close()


def _start(tx: Tx, store: Store, wanted: dict[str, int], *, timezone: str) -> Build:
    """The build this store holds, or a new one (its account created)."""
    with tx.transaction():
        tx.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (id INTEGER PRIMARY KEY, build TEXT)")
        row = tx.one(f"SELECT build FROM {MARKER} WHERE id = 1")
        if row is not None:
            build = Build(**json.loads(row[0]))
            held = {key: build.shape[key] for key in wanted}
            if held != wanted or build.timezone != timezone:
                raise SystemExit(
                    f"{store.name}: the store holds another build ({held}, {build.timezone});"
                    " run without --reuse to build this one afresh"
                )
            return build
        accounts.create(tx, Keyring(SERVER_KEY), ACCOUNT)
        account = accounts.configure(tx, ACCOUNT, channel_merging="email", timezone=timezone)
        shape = shop.Shape(**wanted, end=time.time())
        build = Build(
            shape=asdict(shape),
            timezone=timezone,
            account_id=account.id,
            next_event_id=_next_id(tx, "events"),
            profile_base=_next_id(tx, "profiles"),
        )
        tx.execute(f"INSERT INTO {MARKER} (id, build) VALUES (1, ?)", (json.dumps(asdict(build)),))
    return build


def _next_id(tx: Tx, table: str) -> int:
    row = tx.one(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
    return int(row[0]) if row else 1


def _save(tx: Tx, build: Build) -> None:
    tx.execute(f"UPDATE {MARKER} SET build = ? WHERE id = 1", (json.dumps(asdict(build)),))


def _load(db: Database, store: Store, build: Build, progress: Progress) -> None:
    """Write the raw rows of every day not committed yet, then build the indexes."""
    shape = shop.Shape(**build.shape)
    with _writer(db) as tx:
        _drop_indexes(tx, store, build)
        if build.loaded_through < shape.days - 1:
            started = time.perf_counter()
            plan = shop.make_plan(shape)
            program = points.Program.load(tx, build.account_id)
            progress(f"{store.name}: plan of {sum(map(len, plan.sessions)):,} sessions drawn")
            shown = time.monotonic()
            for day in _days(plan, range(build.loaded_through + 1, shape.days)):
                with tx.transaction():
                    _write_day(tx, store, build, plan, program, day)
                    build.loaded_through = day.day
                    build.load_seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    _save(tx, build)
                if time.monotonic() - shown >= 10 or day.day == shape.days - 1:
                    shown = time.monotonic()
                    progress(
                        f"{store.name}: day {day.day + 1}/{shape.days}, {build.events:,} events,"
                        f" {build.load_seconds:.0f} s"
                    )
        started = time.perf_counter()
        _create_indexes(tx, store, build, progress)
        build.index_seconds += time.perf_counter() - started
        with tx.transaction():
            _save(tx, build)


def _days(plan: shop.Plan, days: range) -> Iterator[shop.Day]:
    """The days' rows, drawn by a process of their own (which draws the same plan) while
    this one writes the days before: drawing costs more CPU than writing."""
    spawn = multiprocessing.get_context("spawn")  # no fork with open connections
    with ProcessPoolExecutor(1, spawn, initializer=_draw_plan, initargs=(plan.shape,)) as pool:
        ahead = deque(pool.submit(_draw_day, day) for day in days[:AHEAD])
        for day in days[AHEAD:]:
            yield ahead.popleft().result()
            ahead.append(pool.submit(_draw_day, day))
        while ahead:
            yield ahead.popleft().result()


AHEAD = 2  # days drawn ahead of the writer
_plan: list[shop.Plan] = []  # the drawing process's plan


def _draw_plan(shape: shop.Shape) -> None:
    _plan.append(shop.make_plan(shape))


def _draw_day(day: int) -> shop.Day:
    return shop.make_day(_plan[0], day)


def _write_day(
    tx: Tx, store: Store, build: Build, plan: shop.Plan, program: points.Program, day: shop.Day
) -> None:
    account_id, first = build.account_id, build.next_event_id
    profile_ids = [_profile_of(build, who) for who, *_ in day.events]
    rows = [
        (first + number, account_id, profile_id, *event[1:])
        for number, (profile_id, event) in enumerate(zip(profile_ids, day.events, strict=True))
    ]
    columns = "id, account_id, profile_id, customer_id, name, metadata, received_at"
    store.bulk(tx, "events", columns, rows)
    build.next_event_id += len(rows)
    build.events += len(rows)
    _write_customers(tx, store, build, plan, day)
    _write_merges(tx, build, plan, day)
    merges = [(stamp, build.main_profile(i), build.app_profile(i)) for i, stamp in day.merges]
    credits, saved = program.day(rows, merges)
    store.bulk(tx, "history", points.HISTORY_COLUMNS, credits)
    tx.many(points.SAVE_TOTALS, saved)
    if rows:
        _write_catalog(tx, build, day, first=rows[0][-1], last=rows[-1][-1])


def _profile_of(build: Build, who: int) -> int:
    index, kind = who >> 2, who & 3
    return build.app_profile(index) if kind == shop.APP else build.main_profile(index)


def _write_customers(tx: Tx, store: Store, build: Build, plan: shop.Plan, day: shop.Day) -> None:
    """The profiles and customerIds first seen today (an email for customers with an app)."""
    profiles: list[tuple[Any, ...]] = []
    links: list[tuple[Any, ...]] = []
    for index, kind, stamp in day.new_customers:
        customer_id = plan.customer_id(index, kind)
        if kind == shop.MAIN:
            profile_id = build.main_profile(index)
            email = f"{customer_id}@example.com" if plan.customers[index].app_from else None
        else:
            profile_id, email = build.app_profile(index), None
        key = normalize_email(email)
        profiles.append((profile_id, build.account_id, stamp, stamp, email, None, key, None, "{}"))
        links.append((build.account_id, customer_id, profile_id, stamp))
    store.bulk(tx, "profiles", PROFILE_COLUMNS, profiles)
    store.bulk(tx, "customer_ids", "account_id, customer_id, profile_id, created_at", links)


def _write_merges(tx: Tx, build: Build, plan: shop.Plan, day: shop.Day) -> None:
    """App profiles merged today into the customer's older one (by email), as
    ``storage.profiles.absorb`` and ``services.rewards.combine_profiles`` leave them (the
    totals are folded by ``points.Program``)."""
    for index, stamp in day.merges:
        winner, loser = build.main_profile(index), build.app_profile(index)
        app_id = plan.customer_id(index, shop.APP)
        tx.execute(
            "UPDATE customer_ids SET profile_id = ? WHERE account_id = ? AND customer_id = ?",
            (winner, build.account_id, app_id),
        )
        tx.execute(
            "UPDATE profiles SET merged_into = ?, updated_at = ? WHERE id = ?",
            (winner, stamp, loser),
        )
        tx.execute(
            "UPDATE history SET profile_id = ? WHERE account_id = ? AND profile_id = ?",
            (winner, build.account_id, loser),
        )
        tx.execute(
            "DELETE FROM customer_rewards WHERE account_id = ? AND profile_id = ?",
            (build.account_id, loser),
        )
        tx.execute(
            "INSERT INTO profile_merges (account_id, winner_id, loser_id, identifier_kind,"
            " identifier, customer_ids, merged_at) VALUES (?, ?, ?, 'email', ?, ?, ?)",
            (
                build.account_id,
                winner,
                loser,
                f"{plan.customer_id(index, shop.MAIN)}@example.com",
                json.dumps([app_id]),
                stamp,
            ),
        )


def _write_catalog(tx: Tx, build: Build, day: shop.Day, *, first: str, last: str) -> None:
    """The day's event catalog and daily counts, through the upserts ingest uses."""
    account_id = build.account_id
    names = sorted(day.names.items())
    event_rows.upsert_names(tx, [(account_id, name, n, first, last) for name, n in names])
    merged: dict[tuple[str, str], tuple[str, int]] = {}
    for (name, key, kind), count in day.keys.items():
        known = merged.get((name, key))
        merged[(name, key)] = (
            (kind, count) if known is None else (merge_types(known[0], kind), known[1] + count)
        )
    event_rows.upsert_keys(
        tx,
        [
            (account_id, n, k, kind, count, first, last)
            for (n, k), (kind, count) in sorted(merged.items())
        ],
    )
    date = first[:10]
    event_rows.upsert_daily(tx, [(account_id, date, name, n) for name, n in names])


# --- indexes -----------------------------------------------------------------------------------


def _drop_indexes(tx: Tx, store: Store, build: Build) -> None:
    """Drop the events' secondary indexes for the load, keeping their definitions."""
    if build.loaded_through == build.shape["days"] - 1:
        return  # loaded: only the indexes may be missing, and build.index_ddl has them
    with tx.transaction():
        found = _event_indexes(tx, store)
        for name, ddl in found:
            if ddl not in build.index_ddl:
                build.index_ddl.append(ddl)
            tx.execute(f"DROP INDEX {name}")
        _save(tx, build)


def _event_indexes(tx: Tx, store: Store) -> list[tuple[str, str]]:
    if store.sqlite_path is not None:
        rows = tx.all(
            "SELECT name, sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
        )
    else:
        rows = tx.all(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'events'::regclass AND NOT i.indisprimary"
        )
    return [(str(name), str(ddl)) for name, ddl in rows]


def _create_indexes(tx: Tx, store: Store, build: Build, progress: Progress) -> None:
    if store.sqlite_path is None:
        tx.execute("SET maintenance_work_mem = '1GB'")
    else:
        tx.execute("PRAGMA cache_size = -1048576")  # 1 GiB for the sort
    while build.index_ddl:
        ddl = build.index_ddl[0]
        started = time.perf_counter()
        with tx.transaction():
            tx.conn.execute(ddl)
            build.index_ddl.pop(0)
            _save(tx, build)
        progress(f"{store.name}: {ddl.split(' ON ')[0]} in {time.perf_counter() - started:.1f} s")
    if store.sqlite_path is None:
        with tx.transaction():
            for table in ("events", "profiles", "profile_merges"):
                tx.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT coalesce(max(id), 1) FROM {table}))"
                )


# --- analytics ---------------------------------------------------------------------------------


def _rebuild(store: Store, build: Build, progress: Progress) -> None:
    """Derive the account's analytics from its events, timed. Then, on PostgreSQL, what
    autovacuum would do soon after such a load: ``VACUUM ANALYZE`` (statistics for the
    planner, and the visibility map that index-only scans need). SQLite gets no ``ANALYZE``:
    no kudos server runs one."""
    from kudos.analytics import rebuild as analytics_rebuild

    db = store.database()
    last = [0.0]

    def report(done: int, total: int) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            progress(f"{store.name}: rebuilding, {done:,} of {total:,} events read")

    started = time.perf_counter()
    read = analytics_rebuild.rebuild(db, build.account_id, progress=report)
    build.rebuild_seconds = time.perf_counter() - started
    build.rebuild_events = int(read)
    progress(f"{store.name}: rebuilt from {read:,} events in {build.rebuild_seconds:.1f} s")
    with _writer(db) as tx:
        if store.sqlite_path is None:
            started = time.perf_counter()
            for (table,) in tx.all(
                "SELECT relname FROM pg_class"
                " WHERE relkind = 'r' AND relnamespace = current_schema()::regnamespace"
            ):
                tx.execute(f"VACUUM ANALYZE {table}")
            build.vacuum_seconds = time.perf_counter() - started
            progress(f"{store.name}: VACUUM ANALYZE in {build.vacuum_seconds:.1f} s")
        with tx.transaction():
            _save(tx, build)


def account(tx: Tx) -> Account:
    """The benchmark's account."""
    found = account_rows.by_name(tx, ACCOUNT)
    if found is None:
        raise SystemExit(f"no account {ACCOUNT!r}: the store was not built")
    return found


def postgres_reachable(url: str) -> str | None:
    """Why ``url`` cannot be used (``None``: it can)."""
    try:
        db = open_database(url)
        db.connect(writer=False).close()
    except (psycopg.Error, ValueError) as exc:
        return str(exc).strip().splitlines()[0]
    return None


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"

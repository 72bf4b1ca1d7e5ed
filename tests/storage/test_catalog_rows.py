"""The event catalog's rows: migration 0005 counts the catalogs that exist, and the caps hold
for catalogs already past them (they keep counting what they have, and take nothing new)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kudos.storage import events as event_rows
from kudos.storage.db import Database, Tx, open_database

T1, T2 = "2026-11-20T10:00:00.000000Z", "2026-11-21T10:00:00.000000Z"


@contextmanager
def transaction(db: Database) -> Iterator[Tx]:
    conn = db.connect(writer=True)
    try:
        with Tx(db, conn).transaction() as tx:
            yield tx
    finally:
        conn.close()


def migrate_to_version_4(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    db = open_database(database_url)
    scripts = db.migration_scripts()
    with monkeypatch.context() as patch:
        patch.setattr(db, "migration_scripts", lambda: [s for s in scripts if s[0] <= 4])
        assert db.migrate() == [1, 2, 3, 4]
    return db


def write_old_catalog(tx: Tx) -> None:
    """Account 1: names a, b, c; a with keys k1…k4. Account 2: name a, no keys."""
    for account_id, name in [(1, "a"), (1, "b"), (1, "c"), (2, "a")]:
        tx.execute(
            "INSERT INTO event_names (account_id, name, count, first_seen, last_seen)"
            " VALUES (?, ?, 1, ?, ?)",
            (account_id, name, T1, T1),
        )
    for key in ["k1", "k2", "k3", "k4"]:
        tx.execute(
            "INSERT INTO event_keys (account_id, name, key, type, count, first_seen, last_seen)"
            " VALUES (1, 'a', ?, 'number', 1, ?, ?)",
            (key, T1, T1),
        )


def names(tx: Tx, account_id: int) -> dict[str, tuple[int, int]]:
    """Name → (count, key_count)."""
    rows = event_rows.names_page(tx, account_id, after=None, limit=100)
    return {row[0]: (row[1], row[4]) for row in rows}


def keys(tx: Tx) -> dict[str, int]:
    return {row[1]: row[3] for row in event_rows.keys_of(tx, 1, ["a", "b", "c", "d"])}


def test_migration_counts_existing_catalogs(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = migrate_to_version_4(database_url, monkeypatch)
    with transaction(db) as tx:
        write_old_catalog(tx)
    assert db.migrate()[0] == 5  # and the later ones
    with transaction(db) as tx:
        counted = tx.all("SELECT account_id, name_count FROM event_catalogs ORDER BY account_id")
        assert [tuple(row) for row in counted] == [(1, 3), (2, 1)]
        assert names(tx, 1) == {"a": (1, 4), "b": (1, 0), "c": (1, 0)}


def test_a_catalog_past_the_caps_keeps_counting_and_takes_nothing_new(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = migrate_to_version_4(database_url, monkeypatch)
    with transaction(db) as tx:
        write_old_catalog(tx)
    db.migrate()
    monkeypatch.setattr(event_rows, "MAX_CATALOG_NAMES", 2)
    monkeypatch.setattr(event_rows, "MAX_CATALOG_KEYS", 3)
    with transaction(db) as tx:
        event_rows.upsert_names(tx, [(1, "a", 2, T2, T2), (1, "d", 1, T2, T2), (2, "b", 1, T2, T2)])
        event_rows.upsert_keys(
            tx,
            [
                (1, "a", "k1", "string", 2, T2, T2),
                (1, "a", "k5", "number", 1, T2, T2),
                (1, "d", "k1", "number", 1, T2, T2),  # d is not recorded: nor are its keys
                (2, "b", "x", "number", 1, T2, T2),
            ],
        )
    with transaction(db) as tx:
        assert names(tx, 1) == {"a": (3, 4), "b": (1, 0), "c": (1, 0)}
        assert names(tx, 2) == {"a": (1, 0), "b": (1, 1)}  # account 2 had room for one more
        assert keys(tx) == {"k1": 3, "k2": 1, "k3": 1, "k4": 1}
        assert event_rows.names_full(tx, 1) and event_rows.names_full(tx, 2)
        # A name with more keys than the cap is read up to the cap.
        assert [row[1] for row in event_rows.first_keys(tx, 1, "a")] == ["k1", "k2", "k3"]


def test_postgres_writers_take_the_catalog_counter_before_any_name_row(
    database_url: str,
) -> None:
    """A new name's trigger updates its account's counter row. A writer that took a name row
    first (counting an existing name) and one that took the counter first (recording a new
    name) could each wait for the other: PostgreSQL aborted one as a deadlock (seen in review,
    about a second lost on both processes each time). Every writer now locks the counters of
    the accounts whose names it may record first, in account order; so a second writer waits
    at the counter, holding nothing, until the first commits."""
    if not database_url.startswith("postgres"):
        pytest.skip("one writer on SQLite: nothing to wait for")
    db = open_database(database_url)
    db.migrate()
    with transaction(db) as tx:
        event_rows.upsert_names(tx, [(1, "c", 1, T1, T1)])  # "c" exists
    first = Tx(db, db.connect(writer=True))
    first.begin()
    event_rows.upsert_names(first, [(1, "a", 1, T1, T1)])  # a new name: the counter is held
    second_done = threading.Event()

    def second() -> None:
        with transaction(db) as tx:
            event_rows.upsert_names(tx, [(1, "c", 1, T2, T2), (1, "d", 1, T2, T2)])
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    try:
        assert not second_done.wait(0.5)  # it waits...
        # ...at the counter, holding nothing: name "c" is free (it held "c" before, and the
        # first writer, counting "c" next, would have waited for it: the deadlock)
        probe = db.connect(writer=True)
        try:
            probe.execute("BEGIN")
            probe.execute(
                "SELECT 1 FROM event_names WHERE account_id = 1 AND name = 'c' FOR UPDATE NOWAIT"
            )
            probe.execute("ROLLBACK")
        finally:
            probe.close()
        first.commit()
        assert second_done.wait(10)
    finally:
        first.conn.close()
        thread.join(10)
    with transaction(db) as tx:
        names = dict(tx.all("SELECT name, count FROM event_names WHERE account_id = 1"))
    assert names == {"a": 1, "c": 2, "d": 1}

"""Fixtures of the analytics tests: a migrated store, without a server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kudos.bootstrap import build_database, build_keyring
from kudos.config import Settings
from kudos.services.security import Keyring
from kudos.storage.db import Database, Tx


class Store:
    """A migrated store and its keyring, with one connection kept for the whole test (a new
    connection per transaction costs PostgreSQL a few milliseconds, hypothesis many times)
    whose commits do not wait for the disk (what they write is the same)."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self.db = db
        self.keyring = keyring
        self.conn: Any = db.connect(writer=True)
        if db.dialect == "sqlite":
            self.conn.execute("PRAGMA synchronous=OFF")
        else:
            self.conn.execute("SET synchronous_commit TO off")

    def run(self, fn: Any) -> Any:
        """``fn(tx)`` in one transaction, committed."""
        tx = Tx(self.db, self.conn)
        with tx.transaction():
            return fn(tx)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """The test's store (SQLite, and PostgreSQL when configured), migrated, with no account."""
    db = build_database(settings)
    db.migrate()
    store = Store(db, build_keyring(settings))
    try:
        yield store
    finally:
        store.close()

"""SQLite adapter: WAL, ``synchronous=FULL`` by default, ``BEGIN IMMEDIATE`` for the writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from kudos.storage.db import Database


class SQLiteDatabase(Database):
    dialect = "sqlite"
    template_fields = {"now": "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", "timestamp": "TEXT"}

    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        super().__init__(url)
        path = url.removeprefix("sqlite:").removeprefix("//")
        # sqlite:///relative.db → "/relative.db" after the scheme: three slashes mean relative,
        # four mean absolute (sqlite:////abs/path.db), as in SQLAlchemy.
        self.path = path[1:] if path.startswith("/") else path
        self.synchronous = synchronous

    def connect(self, *, writer: bool) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=30000")
        if not writer:
            conn.execute("PRAGMA query_only=ON")
        return conn

    def begin_sql(self) -> str:
        return "BEGIN IMMEDIATE"

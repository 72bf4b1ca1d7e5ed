"""Program versions: every apply stores a new version; the highest one is in force."""

from __future__ import annotations

from typing import Any

from kudos.domain.model import iso
from kudos.storage.db import Tx
from kudos.storage.profiles import decode_json, encode


def current(tx: Tx, account_id: int) -> tuple[int, dict[str, Any], str] | None:
    """``(version, document, created_at)`` of the program in force, or ``None``."""
    row = tx.one(
        "SELECT version, document, created_at FROM programs WHERE account_id = ?"
        " ORDER BY version DESC LIMIT 1",
        (account_id,),
    )
    if row is None:
        return None
    return int(row[0]), decode_json(row[1]), iso(row[2])


def stamp(tx: Tx, account_id: int) -> tuple[int, str] | None:
    """``(version, created_at)`` of the program in force, or ``None``: which program it is
    (a version number alone may name two programs, when a transaction that applied one
    rolled back and another was applied since)."""
    row = tx.one(
        "SELECT version, created_at FROM programs WHERE account_id = ?"
        " ORDER BY version DESC LIMIT 1",
        (account_id,),
    )
    return None if row is None else (int(row[0]), iso(row[1]))


def current_version(tx: Tx, account_id: int) -> int:
    """The version in force (0 when the account never applied a program)."""
    row = tx.one("SELECT max(version) FROM programs WHERE account_id = ?", (account_id,))
    return int(row[0]) if row and row[0] is not None else 0


def insert(tx: Tx, account_id: int, version: int, document: dict[str, Any], now: str) -> None:
    tx.execute(
        "INSERT INTO programs (account_id, version, document, created_at) VALUES (?, ?, ?, ?)",
        (account_id, version, encode(document), now),
    )


def prune(tx: Tx, account_id: int, *, keep_from: int) -> None:
    """Delete the account's versions older than ``keep_from``."""
    tx.execute("DELETE FROM programs WHERE account_id = ? AND version < ?", (account_id, keep_from))

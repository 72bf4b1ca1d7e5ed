"""Idempotency keys: which request body first used a key, and when."""

from __future__ import annotations

from kudos.domain.model import iso
from kudos.storage.db import Tx


def find(tx: Tx, account_id: int, key: str) -> tuple[str, str] | None:
    """``(request_hash, created_at)`` for a key, or ``None``."""
    row = tx.one(
        "SELECT request_hash, created_at FROM idempotency_keys WHERE account_id = ? AND key = ?",
        (account_id, key),
    )
    return None if row is None else (row[0], iso(row[1]))


def remember(tx: Tx, account_id: int, key: str, request_hash: str, now: str) -> None:
    """Record (or, once expired, re-record) the request that used ``key``."""
    tx.execute(
        "INSERT INTO idempotency_keys (account_id, key, request_hash, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (account_id, key) DO UPDATE SET"
        " request_hash = excluded.request_hash, created_at = excluded.created_at",
        (account_id, key, request_hash, now),
    )


def purge_before(tx: Tx, cutoff: str) -> int:
    """Delete keys older than ``cutoff``; return how many."""
    cursor = tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,))
    return int(cursor.rowcount or 0)

"""Idempotency keys: which request body first used a key, when, and (burn side) its answer."""

from __future__ import annotations

from typing import Any

from kudos.domain.model import iso
from kudos.storage.db import Tx
from kudos.storage.profiles import decode_json, encode


def find(tx: Tx, account_id: int, key: str) -> tuple[str, str] | None:
    """``(request_hash, created_at)`` for a key, or ``None``."""
    row = tx.one(
        "SELECT request_hash, created_at FROM idempotency_keys WHERE account_id = ? AND key = ?",
        (account_id, key),
    )
    return None if row is None else (row[0], iso(row[1]))


def find_answer(tx: Tx, account_id: int, key: str) -> tuple[str, str, dict[str, Any] | None] | None:
    """``(request_hash, created_at, answer)`` for a key, or ``None`` (the answer is ``None``
    for a key that Send Events used)."""
    row = tx.one(
        "SELECT request_hash, created_at, answer FROM idempotency_keys"
        " WHERE account_id = ? AND key = ?",
        (account_id, key),
    )
    if row is None:
        return None
    return row[0], iso(row[1]), None if row[2] is None else decode_json(row[2])


def remember(
    tx: Tx,
    account_id: int,
    key: str,
    request_hash: str,
    now: str,
    *,
    answer: dict[str, Any] | None = None,
) -> None:
    """Record (or, once expired, re-record) the request that used ``key``, with the answer
    a repeat gets where there is one."""
    tx.execute(
        "INSERT INTO idempotency_keys (account_id, key, request_hash, created_at, answer)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, key) DO UPDATE SET"
        " request_hash = excluded.request_hash, created_at = excluded.created_at,"
        " answer = excluded.answer",
        (account_id, key, request_hash, now, None if answer is None else encode(answer)),
    )


def purge_before(tx: Tx, cutoff: str) -> int:
    """Delete keys older than ``cutoff``; return how many."""
    cursor = tx.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,))
    return int(cursor.rowcount or 0)

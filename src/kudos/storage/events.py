"""The append-only events table, the event catalog and the daily rollups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kudos.storage.db import Row, Tx

# id (reserved), account, profile, customerId, name, metadata json, time
EventRow = tuple[int, int, int, str, str, str, str]


def append(tx: Tx, rows: Iterable[EventRow]) -> None:
    """Stage events for the batch's bulk insert (they commit with the request, or not at all)."""
    tx.stage(
        "INSERT INTO events (id, account_id, profile_id, customer_id, name, metadata, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def page_for_customers(
    tx: Tx, account_id: int, customer_ids: Sequence[str], *, before: int | None, limit: int
) -> list[Row]:
    """Newest first: ``(id, name, metadata, customer_id, received_at)``, ids below ``before``."""
    marks = ", ".join("?" for _ in customer_ids)
    bound = "" if before is None else " AND id < ?"
    params: list[Any] = [account_id, *customer_ids]
    if before is not None:
        params.append(before)
    params.append(limit)
    return tx.all(
        "SELECT id, name, metadata, customer_id, received_at FROM events"
        f" WHERE account_id = ? AND customer_id IN ({marks}){bound} ORDER BY id DESC LIMIT ?",
        params,
    )


def count_for_account(tx: Tx, account_id: int) -> int:
    row = tx.one("SELECT count(*) FROM events WHERE account_id = ?", (account_id,))
    return int(row[0]) if row else 0


def upsert_names(tx: Tx, rows: Iterable[tuple[int, str, int, str, str]]) -> None:
    tx.many(
        "INSERT INTO event_names (account_id, name, count, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, name) DO UPDATE SET"
        " count = event_names.count + excluded.count, last_seen = excluded.last_seen",
        rows,
    )


def upsert_keys(tx: Tx, rows: Iterable[tuple[int, str, str, str, int, str, str]]) -> None:
    # The CASE repeats domain.catalog.merge_types in SQL so concurrent writers merge correctly.
    tx.many(
        "INSERT INTO event_keys (account_id, name, key, type, count, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, name, key) DO UPDATE SET"
        " type = CASE WHEN event_keys.type = 'null' THEN excluded.type"
        " WHEN excluded.type IN ('null', event_keys.type) THEN event_keys.type"
        " ELSE 'mixed' END,"
        " count = event_keys.count + excluded.count, last_seen = excluded.last_seen",
        rows,
    )


def upsert_daily(tx: Tx, rows: Iterable[tuple[int, str, str, int]]) -> None:
    tx.many(
        "INSERT INTO event_daily (account_id, day, name, count) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account_id, day, name) DO UPDATE SET"
        " count = event_daily.count + excluded.count",
        rows,
    )


def catalog(tx: Tx, account_id: int) -> tuple[list[Row], list[Row]]:
    names = tx.all(
        "SELECT name, count, first_seen, last_seen FROM event_names"
        " WHERE account_id = ? ORDER BY name",
        (account_id,),
    )
    keys = tx.all(
        "SELECT name, key, type, count, first_seen, last_seen FROM event_keys"
        " WHERE account_id = ? ORDER BY name, key",
        (account_id,),
    )
    return names, keys

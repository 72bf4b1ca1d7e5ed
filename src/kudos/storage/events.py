"""The append-only events table, the event catalog and the daily rollups.

The catalog is bounded per account: at most ``MAX_CATALOG_NAMES`` event names, and at most
``MAX_CATALOG_KEYS`` metadata keys per name. Events past the caps are stored as usual; only
their new names or keys are not recorded. A catalog row not known to exist goes through a
capped upsert, which inserts only while a counter is under the cap (migration 0005 keeps the
counters with triggers: ``event_catalogs.name_count``, ``event_names.key_count``); a row known
to exist (a single writer remembers them across its transactions, on the ``catalog`` shelf)
takes the plain upsert. On PostgreSQL, concurrent transactions each read a counter before the
others commit, so a catalog may pass a cap by the rows they add at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from kudos.domain.payload import MAX_METADATA_KEYS
from kudos.storage.db import MAX_IN_LIST, Row, Tx

MAX_CATALOG_NAMES = 1000
MAX_CATALOG_KEYS = MAX_METADATA_KEYS  # as many as one event may carry (255)
SHELF = "catalog"

# id (reserved), account, profile, customerId, name, metadata json, time
EventRow = tuple[int, int, int, str, str, str, str]
# account, name, count, first seen, last seen
NameRow = tuple[int, str, int, str, str]
# account, name, key, type, count, first seen, last seen
KeyRow = tuple[int, str, str, str, int, str, str]
# A condition on ``customer_id`` and its parameters (see ``linked_customers``).
Linked = tuple[str, list[Any]]

_COUNT_NAME = " count = event_names.count + excluded.count, last_seen = excluded.last_seen"
# The CASE repeats domain.catalog.merge_types in SQL so concurrent writers merge correctly.
_COUNT_KEY = (
    " type = CASE WHEN event_keys.type = 'null' THEN excluded.type"
    " WHEN excluded.type IN ('null', event_keys.type) THEN event_keys.type"
    " ELSE 'mixed' END,"
    " count = event_keys.count + excluded.count, last_seen = excluded.last_seen"
)
_UPSERT_NAME = (
    "INSERT INTO event_names (account_id, name, count, first_seen, last_seen)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, name) DO UPDATE SET" + _COUNT_NAME
)
# Inserts only while the account's catalog is under its cap; counts an existing name always.
_CAPPED_NAME = (
    "INSERT INTO event_names (account_id, name, count, first_seen, last_seen)"
    " SELECT ?, ?, ?, ?, ?"
    " WHERE EXISTS (SELECT 1 FROM event_names WHERE account_id = ? AND name = ?)"
    " OR COALESCE((SELECT name_count FROM event_catalogs WHERE account_id = ?), 0) < ?"
    " ON CONFLICT (account_id, name) DO UPDATE SET" + _COUNT_NAME
)
_UPSERT_KEY = (
    "INSERT INTO event_keys (account_id, name, key, type, count, first_seen, last_seen)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, name, key) DO UPDATE SET" + _COUNT_KEY
)
# Inserts only under a recorded name whose keys are under the cap (an unrecorded name's
# key_count is NULL: nothing is inserted); counts an existing key always.
_CAPPED_KEY = (
    "INSERT INTO event_keys (account_id, name, key, type, count, first_seen, last_seen)"
    " SELECT ?, ?, ?, ?, ?, ?, ?"
    " WHERE EXISTS (SELECT 1 FROM event_keys WHERE account_id = ? AND name = ? AND key = ?)"
    " OR (SELECT key_count FROM event_names WHERE account_id = ? AND name = ?) < ?"
    " ON CONFLICT (account_id, name, key) DO UPDATE SET" + _COUNT_KEY
)


def append(tx: Tx, rows: Iterable[EventRow]) -> None:
    """Stage events for the batch's bulk insert (they commit with the request, or not at all)."""
    tx.stage(
        "INSERT INTO events (id, account_id, profile_id, customer_id, name, metadata, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def linked_customers(tx: Tx, account_id: int, profile_id: int) -> Linked:
    """The profile's customerIds as a condition on ``customer_id``: listed when there are few
    (one is an index range read in id order), else a subquery, so a profile that merged any
    number of customerIds never needs more bound parameters than a driver takes."""
    ids = [
        row[0]
        for row in tx.all(
            "SELECT customer_id FROM customer_ids WHERE account_id = ? AND profile_id = ? LIMIT ?",
            (account_id, profile_id, MAX_IN_LIST + 1),
        )
    ]
    if not ids:  # merged away since it was looked up: nothing of its own to list
        return "customer_id IS NULL", []
    if len(ids) <= MAX_IN_LIST:
        return f"customer_id IN ({', '.join('?' for _ in ids)})", ids
    return (
        "customer_id IN (SELECT customer_id FROM customer_ids"
        " WHERE account_id = ? AND profile_id = ?)",
        [account_id, profile_id],
    )


def sizes(tx: Tx, account_id: int, linked: Linked, *, before: int | None, limit: int) -> list[Row]:
    """Newest first: ``(id, bytes of its metadata as JSON text)``, ids below ``before``."""
    condition, params = linked
    bound = "" if before is None else " AND id < ?"
    return tx.all(
        "SELECT id, {metadata_bytes} FROM events"
        f" WHERE account_id = ? AND {condition}{bound} ORDER BY id DESC LIMIT ?",
        [account_id, *params, *([] if before is None else [before]), limit],
    )


def by_ids(tx: Tx, account_id: int, ids: Sequence[int]) -> list[Row]:
    """Newest first: ``(id, name, metadata, customer_id, received_at)`` of these events."""
    rows = tx.db.select_in(
        tx,
        "SELECT id, name, metadata, customer_id, received_at FROM events"
        " WHERE account_id = ? AND id IN ({marks})",
        (account_id,),
        ids,
    )
    return sorted(rows, key=lambda row: int(row[0]), reverse=True)


def count_for_account(tx: Tx, account_id: int) -> int:
    row = tx.one("SELECT count(*) FROM events WHERE account_id = ?", (account_id,))
    return int(row[0]) if row else 0


def upsert_names(tx: Tx, rows: Sequence[NameRow]) -> None:
    """Count a batch's events per name; a name new to a full catalog is not recorded."""
    known, unknown = _split(tx, rows, lambda row: ("name", row[0], row[1]))
    if unknown and tx.db.concurrent_writers:
        _lock_catalogs(tx, sorted({row[0] for row in unknown}))
    _many(tx, _UPSERT_NAME, known)
    _many(tx, _CAPPED_NAME, [(*row, row[0], row[1], row[0], MAX_CATALOG_NAMES) for row in unknown])
    if _remembers(tx):
        for account_id, names in _grouped((row[0], row[1]) for row in unknown).items():
            _learn(
                tx,
                "SELECT name FROM event_names WHERE account_id = ? AND name IN ({marks})",
                ("name", account_id),
                names,
            )


def _lock_catalogs(tx: Tx, account_ids: list[int]) -> None:
    """Lock the accounts' catalog counters (created if need be), in account order, before any
    name row: a new name's trigger updates its account's counter, so a writer that took a
    name row first and another that took the counter first could wait on each other."""
    tx.many(
        "INSERT INTO event_catalogs (account_id, name_count) VALUES (?, 0)"
        " ON CONFLICT (account_id) DO NOTHING",
        [(account_id,) for account_id in account_ids],
    )
    tx.db.select_in(
        tx,
        "SELECT account_id FROM event_catalogs WHERE account_id IN ({marks})"
        " ORDER BY account_id FOR UPDATE",
        (),
        account_ids,
    )


def upsert_keys(tx: Tx, rows: Sequence[KeyRow]) -> None:
    """Count a batch's metadata keys per name (after ``upsert_names``); a key new to a name
    whose keys are full, or of a name the catalog does not record, is not recorded."""
    known, unknown = _split(tx, rows, lambda row: ("key", row[0], row[1], row[2]))
    _many(tx, _UPSERT_KEY, known)
    _many(
        tx,
        _CAPPED_KEY,
        [(*row, row[0], row[1], row[2], row[0], row[1], MAX_CATALOG_KEYS) for row in unknown],
    )
    if _remembers(tx):
        for (account_id, name), keys in _grouped(((r[0], r[1]), r[2]) for r in unknown).items():
            _learn(
                tx,
                "SELECT key FROM event_keys WHERE account_id = ? AND name = ? AND key IN ({marks})",
                ("key", account_id, name),
                keys,
            )


def upsert_daily(tx: Tx, rows: Iterable[tuple[int, str, str, int]]) -> None:
    tx.many(
        "INSERT INTO event_daily (account_id, day, name, count) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (account_id, day, name) DO UPDATE SET"
        " count = event_daily.count + excluded.count",
        rows,
    )


def names_page(tx: Tx, account_id: int, *, after: str | None, limit: int) -> list[Row]:
    """In name order, names after ``after``: ``(name, count, first_seen, last_seen,
    key_count)``."""
    bound = "" if after is None else " AND name > ?"
    return tx.all(
        "SELECT name, count, first_seen, last_seen, key_count FROM event_names"
        f" WHERE account_id = ?{bound} ORDER BY name LIMIT ?",
        [account_id, *([] if after is None else [after]), limit],
    )


def keys_of(tx: Tx, account_id: int, names: Sequence[str]) -> list[Row]:
    """Every key of these names: ``(name, key, type, count, first_seen, last_seen)``, in key
    order per name. For names whose ``key_count`` is within the cap (see ``first_keys``)."""
    return tx.db.select_in(
        tx,
        "SELECT name, key, type, count, first_seen, last_seen FROM event_keys"
        " WHERE account_id = ? AND name IN ({marks}) ORDER BY name, key",
        (account_id,),
        names,
    )


def first_keys(tx: Tx, account_id: int, name: str) -> list[Row]:
    """The first ``MAX_CATALOG_KEYS`` keys of a name recorded before the cap existed."""
    return tx.all(
        "SELECT name, key, type, count, first_seen, last_seen FROM event_keys"
        " WHERE account_id = ? AND name = ? ORDER BY key LIMIT ?",
        (account_id, name, MAX_CATALOG_KEYS),
    )


def names_full(tx: Tx, account_id: int) -> bool:
    """Whether the account's catalog holds as many names as it may record."""
    row = tx.one("SELECT name_count FROM event_catalogs WHERE account_id = ?", (account_id,))
    return row is not None and int(row[0]) >= MAX_CATALOG_NAMES


def _remembers(tx: Tx) -> bool:
    """Whether facts outlive the transaction: only with a single writer (``Tx.remember``);
    elsewhere, asking which rows now exist would be wasted."""
    return not tx.db.concurrent_writers


def _learn(tx: Tx, sql: str, fact: tuple[Any, ...], values: list[str]) -> None:
    """Remember which of ``values`` exist now (``sql`` selects them, after the fact's own
    parameters), so that their next batches take the plain upsert."""
    for (value,) in tx.db.select_in(tx, sql, fact[1:], values):
        tx.remember((*fact, value), True, shelf=SHELF)


def _split(
    tx: Tx, rows: Sequence[Any], fact: Callable[[Any], Hashable]
) -> tuple[list[Any], list[Any]]:
    """Rows known to exist, and the others (each in the given order: PostgreSQL's row locks
    are taken in it, and nothing is known there, so all its rows stay in one sorted list)."""
    known: list[Any] = []
    unknown: list[Any] = []
    for row in rows:
        (known if tx.recall(fact(row), shelf=SHELF) else unknown).append(row)
    return known, unknown


def _many(tx: Tx, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:  # most batches have no new catalog rows, or (PostgreSQL) none known
        tx.many(sql, rows)


def _grouped(pairs: Iterable[tuple[Any, str]]) -> dict[Any, list[str]]:
    grouped: dict[Any, list[str]] = {}
    for group, value in pairs:
        grouped.setdefault(group, []).append(value)
    return grouped

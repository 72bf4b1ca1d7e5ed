"""``kudos analytics rebuild``: recompute what analytics keeps of an account from its events
and its ledger, through the same ``Keeper`` ingest uses.

It runs in one transaction: the account's analytics change at once, and writes wait while it
runs (on SQLite the whole store's; on PostgreSQL those to the analytics tables). Campaign
flows (``campaign_hours``) are left as they are: their cap hits are recorded nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from kudos.analytics import keep, raw
from kudos.domain.model import iso, utc_hour
from kudos.storage import analytics as rows
from kudos.storage.db import Database, Tx

CHUNK = 20_000
REMEMBERED_DAYS = 1_000_000  # about 200 bytes each
Progress = Callable[[int, int], None]
_decode = msgspec.json.Decoder().decode


class _Remembered(keep.LastDays):
    """A rebuild's own memory of customers' latest days (bounded: past the bound, the oldest
    half is forgotten and read again when needed)."""

    def __init__(self) -> None:
        self.days: dict[Any, Any] = {}
        self.complete = True  # the account's rows were cleared: what it never held has none

    def get(self, key: tuple[int, int, str]) -> int | None:
        found: int | None = self.days.get(key)
        return found

    def put(self, key: tuple[int, int, str], day: int) -> None:
        self._keep(key, day)

    def today(self, customer: tuple[int, int]) -> tuple[int, frozenset[str]] | None:
        found: tuple[int, frozenset[str]] | None = self.days.get(customer)
        return found

    def put_today(self, customer: tuple[int, int], day: int, names: frozenset[str]) -> None:
        self._keep(customer, (day, names))

    def seen(self, key: tuple[int, int, str, str]) -> int | None:
        return None  # what a rebuild remembers is in ``days``

    def see(self, key: tuple[int, int, str, str], day: int) -> None:
        pass

    def _keep(self, key: Any, value: Any) -> None:
        days = self.days
        days.pop(key, None)
        days[key] = value
        if len(days) > REMEMBERED_DAYS:
            for old in list(days)[: REMEMBERED_DAYS // 2]:
                del days[old]
            self.complete = False  # forgotten days are read again from the store


def rebuild(db: Database, account_id: int, *, progress: Progress | None = None) -> int:
    """Recompute the account's analytics; returns the number of events read."""
    conn = db.connect(writer=True)
    tx = Tx(db, conn)
    try:
        with tx.transaction():
            return rebuild_in(tx, account_id, progress=progress)
    finally:
        conn.close()


def rebuild_in(tx: Tx, account_id: int, *, progress: Progress | None = None) -> int:
    """``rebuild`` inside the caller's transaction."""
    if tx.db.concurrent_writers:
        tx.execute(
            "LOCK TABLE analytics_hours, analytics_numbers, activity_days, activity_gaps,"
            " ledger_hours IN SHARE ROW EXCLUSIVE MODE"
        )
    zone_row = tx.one("SELECT timezone FROM accounts WHERE id = ?", (account_id,))
    if zone_row is None:
        return 0
    zone = str(zone_row[0])
    rows.clear(tx, account_id)
    total_row = tx.one("SELECT count(*) FROM events WHERE account_id = ?", (account_id,))
    total = int(total_row[0]) if total_row else 0
    done = _events(tx, account_id, zone, total, progress)
    _ledger(tx, account_id)
    _members(tx, account_id)
    rows.clear_stale(tx, account_id)
    return done


def _events(tx: Tx, account_id: int, zone: str, total: int, progress: Progress | None) -> int:
    profiles = raw.Profiles(tx, account_id)
    remembered = _Remembered()
    keeper = keep.Keeper()
    done = 0
    pending: list[tuple[Any, ...]] = []
    for row in tx.db.stream(
        tx,
        "SELECT profile_id, name, metadata, received_at FROM events WHERE account_id = ?"
        " ORDER BY id",
        (account_id,),
    ):
        pending.append(row)
        if len(pending) == CHUNK:
            done += _feed(tx, keeper, pending, account_id, zone, profiles, remembered)
            keeper, pending = keep.Keeper(), []
            if progress is not None:
                progress(done, total)
    done += _feed(tx, keeper, pending, account_id, zone, profiles, remembered)
    if progress is not None:
        progress(done, total)
    return done


def _feed(
    tx: Tx,
    keeper: keep.Keeper,
    chunk: list[tuple[Any, ...]],
    account_id: int,
    zone: str,
    profiles: raw.Profiles,
    remembered: _Remembered,
) -> int:
    for profile_id, name, metadata, received_at in chunk:
        if isinstance(metadata, str):
            metadata = _decode(metadata)
        stamp = received_at if isinstance(received_at, str) else iso(received_at)
        keeper.add(account_id, zone, profiles.of(profile_id), stamp, [(name, metadata)])
    keeper.write(tx, remembered)
    return len(chunk)


def _members(tx: Tx, account_id: int) -> None:
    """Customers by the hour they were created (profiles not merged away)."""
    hours: dict[int, int] = {}
    for (created_at,) in tx.db.stream(
        tx,
        "SELECT created_at FROM profiles WHERE account_id = ? AND merged_into IS NULL",
        (account_id,),
    ):
        hour = utc_hour(created_at if isinstance(created_at, str) else iso(created_at))
        hours[hour] = hours.get(hour, 0) + 1
    shard = tx.db.shard
    if hours:
        tx.many(
            rows.ADD_MEMBERS,
            [(account_id, hour, shard, members) for hour, members in sorted(hours.items())],
        )


def _ledger(tx: Tx, account_id: int) -> None:
    """The ledger's hourly flows from its entries (pending credits count once available)."""
    sums: dict[tuple[int, str, str], list[int]] = {}
    for created_at, kind, direction, points in tx.db.stream(
        tx,
        "SELECT created_at, kind, direction, points FROM history WHERE account_id = ?"
        " AND kind IS NOT NULL AND pending_until IS NULL AND points <> 0",
        (account_id,),
    ):
        stamp = created_at if isinstance(created_at, str) else iso(created_at)
        key = (utc_hour(stamp), kind, direction)
        found = sums.setdefault(key, [0, 0])
        found[0] += int(points)
        found[1] += 1
    shard = tx.db.shard
    if sums:
        tx.many(
            rows.ADD_LEDGER,
            [(account_id, h, k, d, shard, p, n) for (h, k, d), (p, n) in sorted(sums.items())],
        )

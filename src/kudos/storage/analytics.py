"""Analytics rows (migration 0007): hourly rollups, customers' active days and their gaps,
ledger and campaign flows, and the accounts whose analytics are stale.

Counter rows carry a ``shard`` (``Database.shard``) so that processes writing at once add to
different rows; readers sum over shards. What the rows mean, and how ingest keeps them, is
``kudos.analytics.keep``'s; the queries are ``kudos.analytics``'.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kudos.storage.db import Row, Tx

# account, name, hour, shard, events
HourRow = tuple[int, str, int, int, int]
# account, name, key, hour, shard, n, total, low, high
NumberRow = tuple[int, str, str, int, int, int, float, float, float]
# account, name, day, profile, prev (None: the first)
DayRow = tuple[int, str, int, int, int | None]
# account, name, day, gap, shard, customers (a change: may be negative)
GapRow = tuple[int, str, int, int, int, int]

ADD_HOURS = (
    "INSERT INTO analytics_hours (account_id, name, hour, shard, events) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, name, hour, shard) DO UPDATE SET"
    " events = analytics_hours.events + excluded.events"
)
ADD_NUMBERS = (
    "INSERT INTO analytics_numbers (account_id, name, key, hour, shard, n, total, low, high)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, name, key, hour, shard) DO UPDATE SET"
    " n = analytics_numbers.n + excluded.n, total = analytics_numbers.total + excluded.total,"
    " low = {least}(analytics_numbers.low, excluded.low),"
    " high = {greatest}(analytics_numbers.high, excluded.high)"
)
ADD_GAPS = (
    "INSERT INTO activity_gaps (account_id, name, day, gap, shard, customers)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, name, day, gap, shard) DO UPDATE SET"
    " customers = activity_gaps.customers + excluded.customers"
)
# Tallied (``Tx.tally``) by the ledger's writes and the campaign engine's decisions.
ADD_LEDGER = (
    "INSERT INTO ledger_hours (account_id, hour, kind, direction, shard, points, entries)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, hour, kind, direction, shard) DO UPDATE SET"
    " points = ledger_hours.points + excluded.points,"
    " entries = ledger_hours.entries + excluded.entries"
)
ADD_MEMBERS = (
    "INSERT INTO members_hours (account_id, hour, shard, members) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (account_id, hour, shard) DO UPDATE SET"
    " members = members_hours.members + excluded.members"
)
ADD_CAMPAIGN = (
    "INSERT INTO campaign_hours (account_id, campaign_id, hour, shard, achievements, points,"
    " cap_hits) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, campaign_id, hour, shard) DO UPDATE SET"
    " achievements = campaign_hours.achievements + excluded.achievements,"
    " points = campaign_hours.points + excluded.points,"
    " cap_hits = campaign_hours.cap_hits + excluded.cap_hits"
)
TABLES = (
    "analytics_hours",
    "analytics_numbers",
    "activity_days",
    "activity_gaps",
    "ledger_hours",
    "members_hours",
)


def add_hours(tx: Tx, rows: Sequence[HourRow]) -> None:
    if rows:
        tx.many(ADD_HOURS, rows)


def add_numbers(tx: Tx, rows: Sequence[NumberRow]) -> None:
    if rows:
        tx.many(ADD_NUMBERS, rows)


def add_gaps(tx: Tx, rows: Sequence[GapRow]) -> None:
    if rows:
        tx.many(ADD_GAPS, rows)


def insert_days(tx: Tx, rows: Sequence[DayRow]) -> None:
    if rows:
        tx.many(
            "INSERT INTO activity_days (account_id, name, day, profile_id, prev)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def last_days(tx: Tx, keys: Sequence[tuple[int, int, str]]) -> dict[tuple[int, int, str], int]:
    """The latest active day of each ``(account, profile, name)`` that has one: one index
    seek each, in statements of up to 256 keys."""
    found: dict[tuple[int, int, str], int] = {}
    for start in range(0, len(keys), 256):
        chunk = keys[start : start + 256]
        values = ", ".join("(?, ?, ?)" for _ in chunk)
        rows = tx.all(
            "SELECT k.a, k.p, k.n, (SELECT max(d.day) FROM activity_days d WHERE"
            " d.account_id = k.a AND d.profile_id = k.p AND d.name = k.n)"
            f" FROM (SELECT 0 AS a, 0 AS p, '' AS n UNION ALL VALUES {values}) AS k"
            " WHERE k.a <> 0",
            [value for key in chunk for value in key],
        )
        for account_id, profile_id, name, day in rows:
            if day is not None:
                found[(int(account_id), int(profile_id), name)] = int(day)
    return found


def days_around(tx: Tx, account_id: int, profile_id: int, name: str, day: int) -> Row | None:
    """``(day exists, previous day, next day)`` of a customer's activity around ``day``."""
    return tx.one(
        "SELECT"
        " (SELECT count(*) FROM activity_days WHERE account_id = ? AND profile_id = ?"
        "  AND name = ? AND day = ?),"
        " (SELECT max(day) FROM activity_days WHERE account_id = ? AND profile_id = ?"
        "  AND name = ? AND day < ?),"
        " (SELECT min(day) FROM activity_days WHERE account_id = ? AND profile_id = ?"
        "  AND name = ? AND day > ?)",
        [account_id, profile_id, name, day] * 3,
    )


def set_prev(tx: Tx, account_id: int, name: str, day: int, profile_id: int, prev: int) -> None:
    tx.execute(
        "UPDATE activity_days SET prev = ? WHERE account_id = ? AND name = ? AND day = ?"
        " AND profile_id = ?",
        (prev, account_id, name, day, profile_id),
    )


def days_of(tx: Tx, account_id: int, profile_ids: Sequence[int]) -> list[Row]:
    """``(profile, name, day, prev)`` of every activity row of these profiles."""
    return tx.db.select_in(
        tx,
        "SELECT profile_id, name, day, prev FROM activity_days"
        " WHERE account_id = ? AND profile_id IN ({marks})",
        (account_id,),
        profile_ids,
    )


def delete_days_of(tx: Tx, account_id: int, profile_id: int) -> None:
    tx.execute(
        "DELETE FROM activity_days WHERE account_id = ? AND profile_id = ?",
        (account_id, profile_id),
    )


def delete_days_named(tx: Tx, account_id: int, profile_id: int, names: Sequence[str]) -> None:
    tx.db.select_in(
        tx,
        "DELETE FROM activity_days WHERE account_id = ? AND profile_id = ? AND name IN ({marks})"
        " RETURNING 1",
        (account_id, profile_id),
        names,
    )


def clear(tx: Tx, account_id: int, *, tables: Iterable[str] = TABLES) -> None:
    """Delete what analytics keeps of an account (before a rebuild)."""
    for table in tables:
        tx.execute(f"DELETE FROM {table} WHERE account_id = ?", (account_id,))


def has_events(tx: Tx, account_id: int) -> bool:
    return tx.one("SELECT 1 FROM events WHERE account_id = ? LIMIT 1", (account_id,)) is not None


def mark_stale(tx: Tx, account_id: int, reason: str) -> None:
    tx.execute(
        "INSERT INTO analytics_stale (account_id, reason) VALUES (?, ?)"
        " ON CONFLICT (account_id) DO UPDATE SET reason = excluded.reason",
        (account_id, reason),
    )


def clear_stale(tx: Tx, account_id: int) -> None:
    tx.execute("DELETE FROM analytics_stale WHERE account_id = ?", (account_id,))


def stale_reason(tx: Tx, account_id: int) -> str | None:
    row = tx.one("SELECT reason FROM analytics_stale WHERE account_id = ?", (account_id,))
    return None if row is None else str(row[0])


# --- reads -----------------------------------------------------------------------------------


def hour_counts(tx: Tx, account_id: int, name: str, first: int, last: int) -> list[Row]:
    """``(hour, events)`` per hour in [first, last) of a name ('': of every name)."""
    return tx.all(
        "SELECT hour, sum(events) FROM analytics_hours WHERE account_id = ? AND name = ?"
        " AND hour >= ? AND hour < ? GROUP BY hour",
        (account_id, name, first, last),
    )


def hour_numbers(
    tx: Tx, account_id: int, names: Sequence[str] | None, key: str, first: int, last: int
) -> list[Row]:
    """``(hour, n, total, low, high)`` of a key's numbers per hour in [first, last)."""
    select = (
        "SELECT hour, sum(n), sum(total), min(low), max(high) FROM analytics_numbers"
        " WHERE account_id = ? AND key = ? AND hour >= ? AND hour < ?"
    )
    params: list[Any] = [account_id, key, first, last]
    if names is None:
        return tx.all(select + " GROUP BY hour", params)
    return tx.db.select_in(tx, select + " AND name IN ({marks}) GROUP BY hour", params, names)


def gap_counts(tx: Tx, account_id: int, name: str, first: int, last: int) -> list[Row]:
    """``(day, gap, customers)`` of the activity rows of days [first, last)."""
    return tx.all(
        "SELECT day, gap, sum(customers) FROM activity_gaps WHERE account_id = ? AND name = ?"
        " AND day >= ? AND day < ? GROUP BY day, gap",
        (account_id, name, first, last),
    )


def firsts(tx: Tx, account_id: int, name: str, first: int, last: int) -> list[Row]:
    """``(profile, day)`` of the customers whose first active day (of ``name``) is in
    [first, last)."""
    return tx.all(
        "SELECT profile_id, day FROM activity_days WHERE account_id = ? AND name = ?"
        " AND day >= ? AND day < ? AND prev IS NULL",
        (account_id, name, first, last),
    )


def returns(
    tx: Tx,
    account_id: int,
    cohort: str,
    back: str,
    starts: Sequence[int],
    stride: int | None,
    *,
    cohorts_end: int,
) -> list[Row]:
    """``(cohort period, later period, customers)``: of the customers whose first active day
    of ``cohort`` is before ``cohorts_end`` (in the periods of ``starts``: each period's first
    day, and the end of the last), how many were active (``back``) in each later period.
    Periods are ``stride`` days long from ``starts[0]``, or (``None``) as ``starts`` says.
    Read through each such customer's own rows (``activity_days_profile``), counted by the
    store."""
    cohort_period, later_period = _period("f.day", starts, stride), _period("r.day", starts, stride)
    return tx.all(
        f"SELECT {cohort_period}, {later_period}, count(DISTINCT f.profile_id)"
        " FROM activity_days f JOIN activity_days r"
        " ON r.account_id = f.account_id AND r.profile_id = f.profile_id AND r.name = ?"
        " AND r.day > f.day AND r.day < ?"
        " WHERE f.account_id = ? AND f.name = ? AND f.day >= ? AND f.day < ?"
        " AND f.prev IS NULL GROUP BY 1, 2",
        (back, starts[-1], account_id, cohort, starts[0], cohorts_end),
    )


def _period(column: str, starts: Sequence[int], stride: int | None) -> str:
    """The period index of a day column: arithmetic for periods of fixed length, else a
    CASE over the periods' first days (months: a few dozen at most). Numbers only: safe to
    inline."""
    if stride is not None:
        return f"({column} - {int(starts[0])}) / {int(stride)}"
    branches = " ".join(
        f"WHEN {column} < {int(start)} THEN {index}" for index, start in enumerate(starts[1:])
    )
    return f"CASE {branches} END"


def active(tx: Tx, account_id: int, name: str, first: int, last: int) -> Iterator[Row]:
    """``(profile, day)`` of every activity row in [first, last), streamed."""
    return tx.db.stream(
        tx,
        "SELECT profile_id, day FROM activity_days WHERE account_id = ? AND name = ?"
        " AND day >= ? AND day < ?",
        (account_id, name, first, last),
    )


def ledger_flows(tx: Tx, account_id: int, first: int, last: int | None) -> list[Row]:
    """``(hour, kind, direction, points, entries)`` from ``first`` (until ``last``)."""
    bound = "" if last is None else " AND hour < ?"
    return tx.all(
        "SELECT hour, kind, direction, sum(points), sum(entries) FROM ledger_hours"
        f" WHERE account_id = ? AND hour >= ?{bound} GROUP BY hour, kind, direction",
        [account_id, first, *([] if last is None else [last])],
    )


def members_before(tx: Tx, account_id: int, hour: int) -> int:
    """Customers (profiles not merged away) created in the hours before ``hour``."""
    row = tx.one(
        "SELECT coalesce(sum(members), 0) FROM members_hours WHERE account_id = ? AND hour < ?",
        (account_id, hour),
    )
    return int(row[0]) if row else 0


def ledger_standing(tx: Tx, account_id: int, hour: int) -> int:
    """Every credit less every debit of the hours before ``hour``."""
    row = tx.one(
        "SELECT coalesce(sum(CASE direction WHEN '+' THEN points ELSE -points END), 0)"
        " FROM ledger_hours WHERE account_id = ? AND hour < ?",
        (account_id, hour),
    )
    return int(row[0]) if row else 0


def campaign_flows(tx: Tx, account_id: int, campaign_id: str, first: int, last: int) -> list[Row]:
    """``(hour, achievements, points, cap hits)`` of a campaign per hour in [first, last)."""
    return tx.all(
        "SELECT hour, sum(achievements), sum(points), sum(cap_hits) FROM campaign_hours"
        " WHERE account_id = ? AND campaign_id = ? AND hour >= ? AND hour < ? GROUP BY hour",
        (account_id, campaign_id, first, last),
    )

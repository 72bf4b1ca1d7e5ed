"""Reward state: per-customer totals and campaign progress, the history (ledger and activity
log in one), badges.

A customer's totals and the progress of every campaign live in one row (one read and one
upsert per rewarded request, however many campaigns it moves). Its upsert, the history rows
(each an activity, and a ledger entry when it moves points: one row per reward) and badges
are staged for the batch's bulk writes.

The writer keeps each customer's row in memory as it last wrote it (``Tx.remember``, shelf
"rewards": the values, with the progress as the stored text, about 0.7 KB; live
``CustomerTotals`` took 11 KB), so the next request of that customer skips the SELECT, and
sees the save that is still staged (a read that only looks, ``current_totals``, leaves the
row in memory for that reason). Where this process is the
store's single writer (SQLite) the row stays remembered across transactions; elsewhere
(PostgreSQL) only for the rest of the transaction, whose locks keep it current, and a batch
reads the rows of its known customers in one query (``prefetch``) instead of one per request.
Reading takes the row out of memory (``Tx.take``) and only ``save_totals`` puts one back, so a
request that fails before writing, or whose savepoint or transaction rolls back, leaves nothing
stale behind.

Progress is stored in the engine's own compact form (``rules.engine.State``: a list per
campaign, a rule that records no values as its bare count), so reading and writing it is one
JSON decode and encode. That is a third of the JSON of the first form (a dict per campaign
and per rule), so the row of a customer of a 20-campaign program fits in its b-tree page
instead of spilling to an overflow page that every save rewrites. Rows written in the first
form still read (``compact_progress``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kudos.domain.model import utc_hour
from kudos.rules.schema import MAX_TOTAL
from kudos.storage import analytics as analytics_rows
from kudos.storage.db import Row, Tx
from kudos.storage.profiles import decode_json, encode


@dataclass(slots=True)
class CustomerTotals:
    account_id: int
    profile_id: int
    points_balance: int = 0
    points_earned: int = 0
    score: int = 0
    spend: float = 0.0
    event_count: int = 0
    tier_order: int | None = None
    progress: dict[str, list[Any]] = field(default_factory=dict)  # campaign id → engine State


@dataclass(slots=True)  # not frozen: several per rewarded request, and frozen inits are slower
class Entry:
    """One row of a customer's history: an activity, and a ledger entry when ``kind`` is set
    (then ``direction``, ``points``, the balances and the expiry say what it did)."""

    type: str  # CampaignRewarded | TierUpgraded | TierDowngraded | Manual | Expiry
    kind: str | None = None  # Reward | TierEntry | Manual | Expiry (moves points)
    direction: str | None = None  # "+" credit, "-" debit
    points: int = 0
    reason: str | None = None
    campaign_id: str | None = None
    campaign_version: int | None = None
    event_id: int | None = None
    balance_before: int | None = None
    balance_after: int | None = None
    expires_at: str | None = None
    times: int | None = None  # a campaign reward: achievements, score and badge
    score: int | None = None
    badge: str | None = None
    data: dict[str, Any] | None = None  # anything else the activity says (tier changes)
    txn_family: str | None = None  # the shop's transaction or order it belongs to (burn side)
    txn_id: str | None = None
    pending_until: str | None = None  # a pending credit: not in the balance until then


def totals(tx: Tx, account_id: int, profile_id: int) -> CustomerTotals:
    """The customer's totals and progress (zero and empty before their first reward), to
    change and write with ``save_totals`` (until then the writer's memory no longer holds
    them: a failure in between leaves nothing stale behind)."""
    return _totals(tx, account_id, profile_id, tx.take)


def current_totals(tx: Tx, account_id: int, profile_id: int) -> CustomerTotals:
    """The customer's totals as they stand, only to read (the writer's memory keeps them, and
    so keeps covering a save staged earlier in the batch)."""
    return _totals(tx, account_id, profile_id, tx.recall)


def _totals(
    tx: Tx, account_id: int, profile_id: int, remembered: Callable[..., Any]
) -> CustomerTotals:
    row = remembered((account_id, profile_id), shelf="rewards")
    if row is None:
        row = tx.one(
            f"SELECT {_TOTALS} FROM customer_rewards WHERE account_id = ? AND profile_id = ?",
            (account_id, profile_id),
        )
    if row is None:
        return CustomerTotals(account_id, profile_id)
    return CustomerTotals(
        account_id,
        profile_id,
        points_balance=int(row[0]),
        points_earned=int(row[1]),
        score=int(row[2]),
        spend=_finite(float(row[3])),
        event_count=int(row[4]),
        tier_order=None if row[5] is None else int(row[5]),
        progress=compact_progress(decode_json(row[6])),
    )


def _finite(spend: float) -> float:
    """A stored spend within ``±MAX_TOTAL``: earlier versions could let it overflow to
    infinity (and show it as null); today's clamp it as they add."""
    if math.isnan(spend):
        return 0.0
    return max(-float(MAX_TOTAL), min(spend, float(MAX_TOTAL)))


# The columns ``totals`` reads, in its order: also what the writer remembers.
_TOTALS = "points_balance, points_earned, score, spend, event_count, tier_order, progress"
_NO_TOTALS = (0, 0, 0, 0.0, 0, None, "{}")  # the row of a customer without one yet


def prefetch(tx: Tx, account_id: int, profile_ids: Iterable[int]) -> None:
    """Read the rows of these profiles that are not in memory in one query, for ``totals``
    to take (a profile without a row is remembered as having none)."""
    unknown = sorted(
        {p for p in profile_ids if tx.recall((account_id, p), shelf="rewards") is None}
    )
    if not unknown:
        return
    found = {
        int(row[0]): row[1:]
        for row in tx.db.select_in(
            tx,
            f"SELECT profile_id, {_TOTALS} FROM customer_rewards"
            " WHERE account_id = ? AND profile_id IN ({marks})",
            (account_id,),
            unknown,
        )
    }
    for profile_id in unknown:
        tx.remember((account_id, profile_id), found.get(profile_id, _NO_TOTALS), shelf="rewards")


def save_totals(tx: Tx, found: CustomerTotals, now: str) -> None:
    """Stage the customer's totals and progress for the batch's bulk write (the row is created
    on the first save), and remember them for the next ``totals``."""
    row = (  # the columns of ``_TOTALS``
        found.points_balance,
        found.points_earned,
        found.score,
        found.spend,
        found.event_count,
        found.tier_order,
        encode(found.progress),
    )
    tx.stage(_SAVE_TOTALS, [(found.account_id, found.profile_id, *row, now)])
    tx.remember((found.account_id, found.profile_id), row, shelf="rewards")


# Rows staged for one customer twice in a batch run in order: the last one stays.
_SAVE_TOTALS = (
    "INSERT INTO customer_rewards (account_id, profile_id, points_balance, points_earned,"
    " score, spend, event_count, tier_order, progress, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, profile_id) DO UPDATE SET"
    " points_balance = excluded.points_balance, points_earned = excluded.points_earned,"
    " score = excluded.score, spend = excluded.spend, event_count = excluded.event_count,"
    " tier_order = excluded.tier_order, progress = excluded.progress,"
    " updated_at = excluded.updated_at"
)


def compact_progress(stored: dict[str, Any]) -> dict[str, list[Any]]:
    """Progress as the engine keeps it (``rules.engine.State``, also the stored form), from a
    row written in either form: states of the first, longer form (a dict per campaign, a dict
    per rule) are converted."""
    for campaign_id, entry in stored.items():
        if type(entry) is dict:
            rules = [[rule["count"], rule["sums"], rule["values"]] for rule in entry["rules"]]
            stored[campaign_id] = [entry["achieved"], entry["day"], entry["dayCount"], *rules]
    return stored


def add_entry(tx: Tx, owner: CustomerTotals, entry: Entry, now: str) -> None:
    """Stage a history row for the batch's bulk insert (a credit's points all remain), and
    count the points it moves into the ledger's hourly flows (analytics; a pending credit
    counts when it becomes available, as the entry that credits it then)."""
    if entry.kind is not None and entry.pending_until is None and entry.points:
        tx.tally(
            analytics_rows.ADD_LEDGER,
            (owner.account_id, utc_hour(now), entry.kind, entry.direction, tx.db.shard),
            entry.points,
            1,
        )
    tx.stage(
        ADD_ENTRY,
        [
            (
                owner.account_id,
                owner.profile_id,
                entry.type,
                entry.kind,
                entry.direction,
                entry.points,
                entry.points if entry.direction == "+" else 0,
                entry.reason,
                entry.campaign_id,
                entry.campaign_version,
                entry.event_id,
                entry.balance_before,
                entry.balance_after,
                entry.expires_at,
                entry.times,
                entry.score,
                entry.badge,
                None if entry.data is None else encode(entry.data),
                entry.txn_family,
                entry.txn_id,
                entry.pending_until,
                now,
            )
        ],
    )


ADD_ENTRY = (
    "INSERT INTO history (account_id, profile_id, type, kind, direction, points, remaining,"
    " reason, campaign_id, campaign_version, event_id, balance_before, balance_after,"
    " expires_at, times, score, badge, data, txn_family, txn_id, pending_until, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def award_badge(tx: Tx, owner: CustomerTotals, badge: str, *, campaign_id: str, now: str) -> None:
    """Award a badge once: a badge the customer holds keeps its first date."""
    tx.stage(
        "INSERT INTO badges (account_id, profile_id, badge, campaign_id, earned_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, profile_id, badge) DO NOTHING",
        [(owner.account_id, owner.profile_id, badge, campaign_id, now)],
    )


def badges_of(tx: Tx, account_id: int, profile_id: int) -> list[tuple[str, str, Any]]:
    """``(badge, campaign_id, earned_at)``, oldest first."""
    rows = tx.all(
        "SELECT badge, campaign_id, earned_at FROM badges WHERE account_id = ? AND profile_id = ?"
        " ORDER BY earned_at, badge",
        (account_id, profile_id),
    )
    return [(row[0], row[1], row[2]) for row in rows]


def expiring(tx: Tx, account_id: int, profile_id: int) -> list[tuple[int, Any]]:
    """``(remaining, expires_at)`` of credits with points left, soonest expiry first."""
    rows = tx.all(
        "SELECT remaining, expires_at FROM history WHERE account_id = ? AND profile_id = ?"
        " AND direction = '+' AND remaining > 0 AND expires_at IS NOT NULL"
        " AND pending_until IS NULL ORDER BY expires_at",
        (account_id, profile_id),
    )
    return [(int(row[0]), row[1]) for row in rows]


def move_history(tx: Tx, account_id: int, *, winner: int, loser: int) -> None:
    """Give the loser's history and badges to the winner (a badge both hold keeps the
    winner's date)."""
    tx.execute(
        "UPDATE history SET profile_id = ? WHERE account_id = ? AND profile_id = ?",
        (winner, account_id, loser),
    )
    tx.execute(
        "INSERT INTO badges (account_id, profile_id, badge, campaign_id, earned_at)"
        " SELECT account_id, ?, badge, campaign_id, earned_at FROM badges"
        " WHERE account_id = ? AND profile_id = ?"
        " ON CONFLICT (account_id, profile_id, badge) DO NOTHING",
        (winner, account_id, loser),
    )
    tx.execute("DELETE FROM badges WHERE account_id = ? AND profile_id = ?", (account_id, loser))


def delete_totals(tx: Tx, account_id: int, profile_id: int) -> None:
    tx.flush_staged()  # a staged save of this row must not bring it back
    tx.execute(
        "DELETE FROM customer_rewards WHERE account_id = ? AND profile_id = ?",
        (account_id, profile_id),
    )
    tx.take((account_id, profile_id), shelf="rewards")  # forget the deleted row


def consumable_credits(tx: Tx, owner: CustomerTotals, now: str) -> list[tuple[int, int]]:
    """``(ledger id, remaining)`` of the credits still spendable, soonest expiry first (those
    that never expire last)."""
    rows = tx.all(
        "SELECT id, remaining FROM history WHERE account_id = ? AND profile_id = ?"
        " AND direction = '+' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)"
        " AND pending_until IS NULL ORDER BY expires_at IS NULL, expires_at, id",
        (owner.account_id, owner.profile_id, now),
    )
    return [(int(row[0]), int(row[1])) for row in rows]


def consume(tx: Tx, credit_id: int, points: int) -> None:
    tx.execute("UPDATE history SET remaining = remaining - ? WHERE id = ?", (points, credit_id))


def activities_page(
    tx: Tx,
    account_id: int,
    profile_id: int,
    *,
    kind: str | None,
    before: int | None,
    limit: int,
) -> list[Row]:
    """Newest first: ``(id, type, campaign_id, direction, points, reason, campaign_version,
    event_id, times, score, badge, data, created_at)``."""
    columns = (
        "id, type, campaign_id, direction, points, reason, campaign_version, event_id, times,"
        " score, badge, data, created_at"
    )
    owner = (account_id, profile_id)
    return _page(tx, columns, owner, "", {"type": kind}, before, limit)


def ledger_page(
    tx: Tx,
    account_id: int,
    profile_id: int,
    *,
    direction: str | None,
    before: int | None,
    limit: int,
    kind: str | None = None,
    status: str | None = None,
    now: str = "",
) -> list[Row]:
    """Newest first, the rows that moved points: ``(id, kind, direction, points, remaining,
    reason, campaign_id, campaign_version, event_id, balance_before, balance_after,
    expires_at, created_at, txn_id, pending_until, data)``; ``status`` (Active, Pending or
    Expired at ``now``) and ``kind`` narrow it."""
    columns = (
        "id, kind, direction, points, remaining, reason, campaign_id, campaign_version,"
        " event_id, balance_before, balance_after, expires_at, created_at, txn_id,"
        " pending_until, data"
    )
    owner = (account_id, profile_id)
    where = " AND kind IS NOT NULL"
    params: list[Any] = []
    if status is not None:
        where += STATUS_CONDITIONS[status]
        params += [now] * STATUS_CONDITIONS[status].count("?")
    filters = {"direction": direction, "kind": kind}
    return _page(tx, columns, owner, where, filters, before, limit, params)


# A ledger entry's status (``services.loyalty.ledger_entry`` says the same in Python).
_EXPIRED = " direction = '+' AND remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?"
STATUS_CONDITIONS = {
    "Pending": " AND pending_until IS NOT NULL",
    "Expired": " AND pending_until IS NULL AND" + _EXPIRED,
    "Active": " AND pending_until IS NULL AND NOT (" + _EXPIRED + ")",
}
STATUSES = tuple(STATUS_CONDITIONS)


def _page(
    tx: Tx,
    columns: str,
    owner: tuple[int, int],
    where: str,
    filters: dict[str, Any],
    before: int | None,
    limit: int,
    where_params: list[Any] | None = None,
) -> list[Row]:
    """A customer's history rows, newest first, below the ``before`` id, that meet ``where``
    (with ``where_params``) and the ``filters`` that are not ``None`` (column → value)."""
    sql = f"SELECT {columns} FROM history WHERE account_id = ? AND profile_id = ?{where}"
    params: list[Any] = [*owner, *(where_params or [])]
    for column, value in filters.items():
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    if before is not None:
        sql += " AND id < ?"
        params.append(before)
    params.append(limit)
    return tx.all(sql + " ORDER BY id DESC LIMIT ?", params)


def expired_credits(tx: Tx, now: str, *, limit: int) -> list[tuple[int, int, int, int]]:
    """``(ledger id, account, profile, remaining)`` of credits past their expiry with points
    left, oldest expiry first."""
    rows = tx.all(
        "SELECT id, account_id, profile_id, remaining FROM history"
        " WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?"
        " AND pending_until IS NULL ORDER BY expires_at, id LIMIT ?",
        (now, limit),
    )
    return [(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]

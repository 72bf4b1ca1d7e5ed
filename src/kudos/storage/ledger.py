"""The points ledger of a whole account (or of one customer), page by page: what v3's
``GET …/transaction/list`` reads. The per-customer cursor pages are ``rewards.ledger_page``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kudos.storage import rewards as reward_rows
from kudos.storage.db import Row, Tx

# The columns of ``rewards.ledger_page`` (``services.loyalty`` reads them by position), then
# the customerId the entry's profile was first known by.
_COLUMNS = (
    "h.id, h.kind, h.direction, h.points, h.remaining, h.reason, h.campaign_id,"
    " h.campaign_version, h.event_id, h.balance_before, h.balance_after, h.expires_at,"
    " h.created_at, h.txn_id, h.pending_until, h.data,"
    " (SELECT c.customer_id FROM customer_ids c"
    " WHERE c.account_id = h.account_id AND c.profile_id = h.profile_id"
    " ORDER BY c.created_at, c.customer_id LIMIT 1)"
)


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """What narrows the ledger; ``None`` narrows nothing. Times are in the stored format."""

    profile_id: int | None = None
    direction: str | None = None
    status: str | None = None  # one of ``rewards.STATUSES``, at ``now``
    txn_id: str | None = None
    since: str | None = None  # entries at or after
    until: str | None = None  # entries before
    now: str = ""


def ledger_rows(
    tx: Tx, account_id: int, where: LedgerFilter, *, offset: int, limit: int
) -> list[Row]:
    """Newest first, ``limit`` ledger entries after the first ``offset`` that ``where``
    keeps: ``rewards.ledger_page``'s columns, then a customerId of the entry's profile."""
    sql = f"SELECT {_COLUMNS} FROM history h WHERE h.account_id = ? AND h.kind IS NOT NULL"
    params: list[Any] = [account_id]
    if where.status is not None:
        # The per-customer ledger's definition of a status (its columns unqualified: they
        # are history's, the only table of this WHERE).
        condition = reward_rows.STATUS_CONDITIONS[where.status]
        sql += condition
        params += [where.now] * condition.count("?")
    for column, value in (
        ("h.profile_id = ?", where.profile_id),
        ("h.direction = ?", where.direction),
        ("h.txn_id = ?", where.txn_id),
        ("h.created_at >= ?", where.since),
        ("h.created_at < ?", where.until),
    ):
        if value is not None:
            sql += f" AND {column}"
            params.append(value)
    params += [limit, offset]
    return tx.all(sql + " ORDER BY h.id DESC LIMIT ? OFFSET ?", params)

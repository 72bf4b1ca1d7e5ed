"""The points ledger by page number, across the account's customers unless one is named: what
v3's ``GET …/transaction/list`` answers (the official SDK names no customer)."""

from __future__ import annotations

from typing import Any

from kudos import errors
from kudos.domain.model import Account, utc_now
from kudos.services import loyalty
from kudos.services.customers import find_profile
from kudos.storage import ledger as ledger_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx

MAX_PAGE_NUMBER = 1000  # (page - 1) * limit rows are skipped to reach a page: keep that bounded


def transactions_page(
    tx: Tx,
    account: Account,
    *,
    customer_id: str | None,
    page: int,
    limit: int,
    direction: str | None = None,
    status: str | None = None,
    transaction_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """Page ``page`` (from 1) of ``limit`` ledger entries, newest first, narrowed by
    ``direction``, ``status`` (Active, Pending, Expired), the shop's ``transaction_id`` and
    the entry's time (``since`` ≤ time < ``until``, stored format)."""
    if not 1 <= limit <= loyalty.MAX_PAGE:
        raise errors.InvalidValue(f"Invalid value: 'limit' must be 1 to {loyalty.MAX_PAGE}.")
    if not 1 <= page <= MAX_PAGE_NUMBER:
        raise errors.InvalidValue(f"Invalid value: 'page' must be 1 to {MAX_PAGE_NUMBER}.")
    if direction is not None and direction not in ("+", "-"):
        raise errors.InvalidValue("Invalid value: 'direction' is + or -.")
    if status is not None and status not in reward_rows.STATUSES:
        raise errors.InvalidValue(
            f"Invalid value: 'status' is one of {', '.join(reward_rows.STATUSES)}."
        )
    profile_id = None if customer_id is None else find_profile(tx, account, customer_id).id
    now = now or utc_now()
    where = ledger_rows.LedgerFilter(
        profile_id=profile_id,
        direction=direction,
        status=status,
        txn_id=transaction_id,
        since=since,
        until=until,
        now=now,
    )
    rows = ledger_rows.ledger_rows(
        tx, account.id, where, offset=(page - 1) * limit, limit=limit + 1
    )
    return {
        "transactions": [
            # The per-customer ledger's shape (``services.loyalty``), whoever the customer.
            loyalty.ledger_entry(row[:16], customer_id or row[16] or "", now)
            for row in rows[:limit]
        ],
        "count": min(len(rows), limit),
        "page": page,
        "limit": limit,
        "hasMore": len(rows) > limit,
    }

"""Read-back of what campaigns did for a customer, in Gameball v4's shapes."""

from __future__ import annotations

from typing import Any

from kudos.domain.model import Account, iso, utc_now
from kudos.services.customers import find_profile
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx


def balance(
    tx: Tx, account: Account, customer_id: str, *, now: str | None = None
) -> dict[str, Any]:
    """``GET …/customers/{id}/balance``: points that are in the balance, usable and expiring.

    Points whose expiry has passed leave the available balance at that moment, even before
    the worker writes their ``Expiry`` entry. kudos has no points-to-money rate: the
    ``…Value`` fields are 0 and ``currency`` is null.
    """
    profile = find_profile(tx, account, customer_id)
    totals = reward_rows.totals(tx, account.id, profile.id)
    now = now or utc_now()
    expired = 0
    upcoming: list[tuple[str, int]] = []
    for remaining, expires_at in reward_rows.expiring(tx, account.id, profile.id, now):
        moment = iso(expires_at)
        if moment <= now:
            expired += remaining
        else:
            upcoming.append((moment, remaining))
    next_day = upcoming[0][0][:10] if upcoming else None
    available = totals.points_balance - expired
    return {
        "customerId": customer_id,
        "totalPointsBalance": available,
        "totalPointsValue": 0,
        "availablePointsBalance": available,
        "availablePointsValue": 0,
        "pendingPoints": 0,
        "pendingPointsValue": 0,
        "currency": None,
        "pointsName": "points",
        "nextExpiringPointsAmount": sum(r for moment, r in upcoming if moment[:10] == next_day),
        "nextExpiringPointsValue": 0,
        "nextExpiringPointsDate": upcoming[0][0] if upcoming else None,
        "totalEarnedPoints": totals.points_earned,
    }

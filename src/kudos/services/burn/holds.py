"""Holds: points reserved for a checkout, then redeemed once, released, or let run out.

A hold takes its points out of the available balance at once, for the program's
``redemption.holdMinutes``; it moves no points (no ledger entry): the redeem or order that
uses it does. Its state is computed at each read (an active hold whose time has passed is
expired and reserves nothing), so nothing has to run for a hold to end.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account, utc_now
from kudos.rules.schema import MAX_AWARD
from kudos.services.burn.work import ShopWork, point_value, redemption_of, spendable
from kudos.storage import burn as burn_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx

MAX_ACTIVE_HOLDS = 100  # per customer: each is a row, and a checkout needs one


@dataclass(kw_only=True)
class PlaceHold(ShopWork):
    """``POST …/transactions/hold`` with ``pointsToHold`` or ``amountToHold``."""

    kind = "Hold"

    points: int | None = None
    amount: Decimal | None = None

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        settings = redemption_of(self.program(tx, account))
        value = point_value(settings)
        profile_id = self.existing_profile(tx, account)
        points, amount = priced(self.points, self.amount, value, minimum=settings.min_points)
        totals = reward_rows.current_totals(tx, account.id, profile_id)
        if spendable(tx, totals, self.now, besides_hold=None) < points:
            raise errors.InsufficientPoints(
                f"Insufficient balance: {points:,} points to hold, fewer available."
            )
        if burn_rows.active_holds(tx, account.id, profile_id, self.now) >= MAX_ACTIVE_HOLDS:
            raise errors.InvalidValue(
                f"Invalid value: the customer has {MAX_ACTIVE_HOLDS} active holds, the most"
                " kudos keeps; release or use one first."
            )
        expires = _minutes_after(self.now, settings.hold_minutes)
        hold = burn_rows.Hold(
            reference=str(uuid.uuid4()),
            profile_id=profile_id,
            customer_id=self.customer_id,
            points=points,
            amount=amount,
            state="active",
            used_by=None,
            created_at=self.now,
            expires_at=expires,
        )
        burn_rows.add_hold(tx, account.id, hold)
        return {
            "customerId": self.customer_id,
            "holdAmount": money.as_number(amount),
            "holdEquivalentPoints": points,
            "holdReference": hold.reference,
            "dateToExpire": expires,
        }


def priced(
    points: int | None, amount: Decimal | None, value: Decimal, *, minimum: int
) -> tuple[int, Decimal]:
    """``(points, amount)`` of a hold or redeem given one of them: an amount buys the whole
    points it covers and is answered as what they are worth; at most ``MAX_AWARD`` points,
    as when they are given."""
    if amount is not None:
        points = money.points_covered(amount, value)
    assert points is not None
    if points > MAX_AWARD:
        raise errors.InvalidValue(
            f"Invalid value: at most {MAX_AWARD:,} points are held or redeemed at once;"
            f" this amount is worth {points:,}."
        )
    if points < max(1, minimum):
        raise errors.InvalidValue(
            f"Invalid value: at least {max(1, minimum):,} points"
            f" ({money.as_number(money.value_of(max(1, minimum), value))} in money) are needed;"
            f" this is {points:,}."
        )
    return points, money.value_of(points, value)


def _minutes_after(now: str, minutes: int) -> str:
    moment = datetime.fromisoformat(now.replace("Z", "+00:00")) + timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(kw_only=True)
class ReleaseHold(ShopWork):
    """``DELETE …/transactions/hold/{ref}``: the points go back to the available balance.
    Releasing a hold that was released or ran out succeeds (and leaves it as it was); one
    that was used is refused."""

    kind = "Release"

    reference: str

    def locate(self, tx: Tx) -> None:
        found = burn_rows.hold(tx, self.owner().id, self.reference)
        if found is None:
            raise errors.HoldNotFound()
        self.customer_id = found.customer_id  # its customer's lock serializes it

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        found = burn_rows.hold(tx, account.id, self.reference)
        if found is None:
            raise errors.HoldNotFound()
        if found.state == "used":
            raise errors.HoldNotActive(
                f"The hold was used by transaction {found.used_by!r}: it cannot be released."
            )
        if found.state_at(self.now) == "active":  # one that ran out stays expired
            burn_rows.end_hold(tx, account.id, self.reference, state="released", used_by=None)
        return {"success": True, "message": "Hold released successfully"}


def hold_view(tx: Tx, account: Account, reference: str, *, now: str | None = None) -> Any:
    """``GET …/transactions/hold/{ref}``."""
    found = burn_rows.hold(tx, account.id, reference)
    if found is None:
        raise errors.HoldNotFound()
    return {
        "customerId": found.customer_id,
        "holdReference": found.reference,
        "holdAmount": money.as_number(found.amount),
        "holdEquivalentPoints": found.points,
        "state": found.state_at(now or utc_now()),
        "dateToExpire": found.expires_at,
        "usedBy": found.used_by,
    }

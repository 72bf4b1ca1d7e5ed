"""Redeem: spend points (a hold's, or a number of points or their worth in money)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account
from kudos.rules.engine import CompiledProgram
from kudos.services import rewards
from kudos.services.burn.holds import priced
from kudos.services.burn.work import (
    ShopWork,
    last_entry_id,
    point_value,
    redemption_of,
)
from kudos.storage import burn as burn_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.rewards import Entry
from kudos.webhooks import outbox


@dataclass(kw_only=True)
class Redeem(ShopWork):
    """``POST …/transactions/redeem``: exactly one of ``hold_reference``, ``points``,
    ``amount``; the credits that expire first are spent."""

    kind = "Redemption"

    transaction_id: str
    hold_reference: str | None = None
    points: int | None = None
    amount: Decimal | None = None
    reason: str | None = None

    def shop_id(self) -> str:
        return self.transaction_id

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        compiled = self.program(tx, account)
        settings = redemption_of(compiled)
        profile_id = self.existing_profile(tx, account)
        if self.hold_reference is not None:
            points, amount = use_hold(
                tx, account, self.hold_reference, profile_id, self.transaction_id, self.now
            )
        else:
            points, amount = priced(
                self.points, self.amount, point_value(settings), minimum=settings.min_points
            )
        spend(
            tx,
            compiled,
            account,
            profile_id=profile_id,
            customer_id=self.customer_id,
            points=points,
            entry=Entry(
                "Redemption",
                kind="Redemption",
                reason=self.reason or "Redeemed",
                txn_family=burn_rows.TRANSACTION,
                txn_id=self.transaction_id,
            ),
            hold=self.hold_reference,
            now=self.now,
        )
        answer = {
            "customerId": self.customer_id,
            "gameballTransactionId": str(
                last_entry_id(tx, account.id, burn_rows.TRANSACTION, self.transaction_id)
            ),
            "transactionId": self.transaction_id,
            "redeemAmount": money.as_number(amount),
            "redeemEquivalentPoints": points,
            "reason": self.reason,
        }
        self.record(
            tx,
            account,
            profile_id=profile_id,
            answer=answer,
            amount=amount,
            redeemed=points,
        )
        return answer


def use_hold(
    tx: Tx, account: Account, reference: str, profile_id: int, used_by: str, now: str
) -> tuple[int, Decimal]:
    """Mark the customer's active hold used; its ``(points, amount)``."""
    found = burn_rows.hold(tx, account.id, reference)
    if found is None or found.profile_id != profile_id:  # another customer's is not found
        raise errors.HoldNotFound(f"Hold reference not found for this customer: {reference!r}.")
    state = found.state_at(now)
    if state != "active":
        raise errors.HoldNotActive(f"The hold is {state}: it cannot be redeemed.")
    burn_rows.end_hold(tx, account.id, reference, state="used", used_by=used_by)
    return found.points, found.amount


def spend(
    tx: Tx,
    compiled: CompiledProgram | None,
    account: Account,
    *,
    profile_id: int,
    customer_id: str,
    points: int,
    entry: Entry,
    hold: str | None,
    now: str,
) -> None:
    """Debit ``points`` (those of the hold ``hold`` are the customer's to spend; other active
    holds' are not), announce it, and save the totals."""
    totals = reward_rows.totals(tx, account.id, profile_id)
    decisions = rewards.Decisions(
        tx, compiled or rewards.NO_PROGRAM, totals, customer_id=customer_id, now=now
    )
    held = burn_rows.held_points(tx, account.id, profile_id, now, besides=hold)
    decisions.debit(points, reason=entry.reason or "", entry=entry, reserved=held)
    reward_rows.save_totals(tx, totals, now)
    announce(tx, decisions, outbox.POINTS_REDEEMED, points=points, txn_id=entry.txn_id)
    decisions.profile_updated()


def announce(
    tx: Tx, decisions: rewards.Decisions, topic: str, *, points: int, txn_id: str | None
) -> None:
    """One of the burn side's kudos topics about the customer's points."""
    if outbox.wants(tx, decisions.totals.account_id, topic):
        decisions.announce(
            topic,
            {
                "points": points,
                "transactionId": txn_id,
                "pointsBalance": decisions.totals.points_balance,
            },
        )

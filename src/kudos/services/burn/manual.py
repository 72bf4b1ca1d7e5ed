"""``POST …/transactions/manual``: an administrator's credit or debit, by points or money."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account
from kudos.rules.schema import MAX_AWARD
from kudos.services import rewards
from kudos.services.burn.work import ShopWork, last_entry_id, point_value, redemption_of
from kudos.storage import burn as burn_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.rewards import Entry


@dataclass(kw_only=True)
class Manual(ShopWork):
    """Exactly one of ``points`` and ``amount``; its sign is the direction. A credit expires
    after ``expiry_after`` days when given (else as the program says); a debit may not
    exceed the available balance (9008) and takes no expiry."""

    kind = "Manual"

    transaction_id: str
    username: str
    reason: str
    points: int | None = None
    amount: Decimal | None = None
    expiry_after: int | None = None

    def shop_id(self) -> str:
        return self.transaction_id

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        compiled = self.program(tx, account)
        points = self._points(compiled)
        if points < 0 and self.expiry_after:
            raise errors.InvalidValue("Invalid value: a deduction cannot have an expiry.")
        entry_kind = "ManualReward" if points > 0 else "ManualDeduction"
        profile_id = self.profile(tx, account) if points > 0 else self.existing_profile(tx, account)
        totals = reward_rows.totals(tx, account.id, profile_id)
        decisions = rewards.Decisions(
            tx, compiled or rewards.NO_PROGRAM, totals, customer_id=self.customer_id, now=self.now
        )
        entry = Entry(
            entry_kind,
            kind=entry_kind,
            reason=self.reason,
            txn_family=burn_rows.TRANSACTION,
            txn_id=self.transaction_id,
            data={"username": self.username},
        )
        if points > 0:
            if self.expiry_after:
                entry.expires_at = rewards.expiry_time(self.now, self.expiry_after)
            decisions.credit(points, reason=self.reason, entry=entry, kind=entry_kind)
            decisions.retier()
        else:
            held = burn_rows.held_points(tx, account.id, profile_id, self.now)
            decisions.debit(-points, reason=self.reason, entry=entry, reserved=held)
        reward_rows.save_totals(tx, totals, self.now)
        decisions.profile_updated()
        answer = {
            "customerId": self.customer_id,
            "gameballTransactionId": last_entry_id(
                tx, account.id, burn_rows.TRANSACTION, self.transaction_id
            ),
            "transactionId": self.transaction_id,
            "points": points,
            "amount": None if self.amount is None else money.as_number(self.amount),
        }
        self.record(
            tx,
            account,
            profile_id=profile_id,
            answer=answer,
            amount=abs(self.amount) if self.amount is not None else Decimal(0),
        )
        return answer

    def _points(self, compiled: Any) -> int:
        if self.amount is not None:
            value = point_value(redemption_of(compiled))
            covered = money.points_covered(abs(self.amount), value)
            points = covered if self.amount > 0 else -covered
        else:
            assert self.points is not None
            points = self.points
        if points == 0 or abs(points) > MAX_AWARD:
            raise errors.InvalidValue(
                f"Invalid value: a manual transaction moves 1 to {MAX_AWARD:,} points either"
                f" way; this one is {points:,}."
            )
        return points

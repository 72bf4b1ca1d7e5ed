"""Refunds: ``POST …/transactions/refund`` reverses an order, a cashback or a redeem, whole or
in part.

What a refund moves is in proportion to the amount refunded so far (``domain.money``): the
points the order or cashback earned are clawed back (its pending points first, then the
available balance; what the customer already spent stays spent and is reported as
``uncollectedPoints``), and the points it redeemed are given back (a ``Cancel`` credit).
Refunding more than what is left is refused (3003), and once everything is refunded 9001.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account
from kudos.services import rewards
from kudos.services.burn.redeem import announce
from kudos.services.burn.work import ShopWork, last_entry_id
from kudos.storage import burn as burn_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.burn import ShopTransaction
from kudos.storage.db import Tx
from kudos.storage.rewards import Entry
from kudos.webhooks import outbox

REVERSIBLE = frozenset({"Order", "Cashback", "Redemption"})


@dataclass(kw_only=True)
class Refund(ShopWork):
    """A refund of ``reverse_id`` (an order id, or a redeem's or cashback's transactionId)."""

    kind = "Refund"

    refund_id: str
    reverse_id: str
    amount: Decimal | None = None  # None: all that is left

    def shop_id(self) -> str:
        return self.refund_id

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        profile_id = self.existing_profile(tx, account)
        target = self._target(tx, account, profile_id)
        amount = self._amount(target)
        refunded = target.refunded_amount + amount
        claw = money.in_proportion(target.points_earned, refunded, target.amount)
        claw -= target.points_clawed
        give = money.in_proportion(target.points_redeemed, refunded, target.amount)
        give -= target.points_returned
        compiled = self.program(tx, account)
        totals = reward_rows.totals(tx, account.id, profile_id)
        decisions = rewards.Decisions(
            tx, compiled or rewards.NO_PROGRAM, totals, customer_id=self.customer_id, now=self.now
        )
        note = {"refundTransactionId": self.refund_id, "amount": money.as_number(amount)}
        uncollected = self._claw(tx, decisions, target, claw, note)
        if give > 0:
            entry = self._entry("Cancel", target, note)
            decisions.credit(give, reason=entry.reason or "", entry=entry, kind="Cancel")
            totals.points_earned -= give  # spent points coming back were not earned
        decisions.retier()
        reward_rows.save_totals(tx, totals, self.now)
        target.refunded_amount = refunded
        target.points_clawed += claw
        target.points_returned += give
        burn_rows.save_refunded(tx, account.id, target)
        if claw or give:
            moved = give - (claw - uncollected)  # what the balance and pending points moved
            announce(tx, decisions, outbox.POINTS_REFUNDED, points=moved, txn_id=target.id)
            decisions.profile_updated()
        answer = {
            "customerId": self.customer_id,
            "gameballTransactionId": str(
                last_entry_id(tx, account.id, target.family, target.id) or ""
            ),
            "refundTransactionId": self.refund_id,
            "reverseTransactionId": target.id,
            "refundAmount": money.as_number(amount),
            "refundEquivalentPoints": give if target.type == "Redemption" else claw,
            "pointsClawedBack": claw - uncollected,
            "uncollectedPoints": uncollected,
            "pointsReturned": give,
        }
        self.record(
            tx,
            account,
            profile_id=profile_id,
            answer=answer,
            amount=amount,
        )
        return answer

    def _target(self, tx: Tx, account: Account, profile_id: int) -> ShopTransaction:
        """The order or transaction refunded: an order id first, then a transaction id."""
        for family in (burn_rows.ORDER, burn_rows.TRANSACTION):
            found = burn_rows.shop_transaction(tx, account.id, family, self.reverse_id)
            if found is not None and found.profile_id == profile_id:
                if found.type not in REVERSIBLE:
                    raise errors.NotReversible(
                        f"Transaction type is not reversible: {found.type} {found.id!r}."
                    )
                return found
        raise errors.ReversedNotFound(
            f"Reversed transaction not found for this customer: {self.reverse_id!r}."
        )

    def _amount(self, target: ShopTransaction) -> Decimal:
        """The amount this refund takes off (all that is left when none is given)."""
        left = target.amount - target.refunded_amount
        done = target.points_clawed >= target.points_earned and (
            target.points_returned >= target.points_redeemed
        )
        if (target.amount > 0 and left <= 0) or (target.amount == 0 and done):
            raise errors.AlreadyCancelled(
                f"Transaction already cancelled: {target.id!r} is refunded in full."
            )
        if self.amount is None:
            return left
        if self.amount > left:
            raise errors.InvalidValue(
                f"Invalid value: 'refundAmount' {money.as_number(self.amount)} is more than"
                f" the {money.as_number(left)} left to refund."
            )
        return self.amount

    def _claw(
        self,
        tx: Tx,
        decisions: rewards.Decisions,
        target: ShopTransaction,
        points: int,
        note: dict[str, Any],
    ) -> int:
        """Take back ``points``: the target's pending credits first, then the balance; return
        the points that could not be taken (already spent)."""
        if points <= 0:
            return 0
        left = points
        owner = decisions.totals
        for credit_id, remaining, until in burn_rows.pending_credits(
            tx, owner.account_id, owner.profile_id, family=target.family, txn_id=target.id
        ):
            taken = min(left, remaining)
            burn_rows.take_pending(tx, credit_id, taken)
            # Pending too, as the points it takes: out of the balance, ending with the credit.
            entry = self._entry("Refund", target, {**note, "pending": True})
            entry.kind, entry.direction, entry.points = "Refund", "-", taken
            entry.pending_until = until
            reward_rows.add_entry(tx, owner, entry, self.now)
            left -= taken
            if not left:
                return 0
        taken = decisions.take_up_to(left, self._entry("Refund", target, note))
        # The points it earned no longer count as earned (nor for a tier by points earned).
        owner.points_earned = max(0, owner.points_earned - left)
        return left - taken

    def _entry(self, kind: str, target: ShopTransaction, note: dict[str, Any]) -> Entry:
        return Entry(
            kind,
            kind=kind,
            reason=f"Refund {self.refund_id}",
            txn_family=target.family,
            txn_id=target.id,
            data=dict(note),
        )

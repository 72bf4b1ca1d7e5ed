"""Earning on what customers pay: cashback rates, pending credits and their maturing."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account
from kudos.rules.engine import CompiledProgram
from kudos.rules.schema import CashbackRate, Program
from kudos.services import rewards
from kudos.services.burn.work import ShopWork, last_entry_id
from kudos.storage import burn as burn_rows
from kudos.storage import profiles
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.rewards import CustomerTotals, Entry
from kudos.webhooks import gameball


def rate_for(program: Program | None, tier_order: int | None) -> CashbackRate | None:
    """The cashback rate of a customer in the tier ``tier_order`` (``None``: no cashback)."""
    if program is None or program.cashback is None:
        return None
    cashback = program.cashback
    tier = next((t.name for t in program.tiers if t.order == tier_order), None)
    return cashback.by_tier.get(tier, cashback) if tier is not None else cashback


def cashback_points(amount: Decimal, rate: CashbackRate | None) -> Decimal:
    """Points with their decimals for paying ``amount`` at ``rate``."""
    if rate is None:
        return money.ZERO
    return money.earned(amount, points=rate.points, every=money.decimal(rate.every))


def window_days(program: Program | None, requested: int | None) -> int:
    """The return window of a credit: the request's, else the program's."""
    if requested is not None:
        return requested
    cashback = program.cashback if program is not None else None
    return cashback.return_window_days if cashback is not None else 0


def pending_until(now: str, days: int) -> str | None:
    return None if days <= 0 else rewards.expiry_time(now, days)


def earn(
    tx: Tx,
    compiled: CompiledProgram | None,
    totals: CustomerTotals,
    *,
    customer_id: str,
    points: int,
    entry: Entry,
    window: int,
    now: str,
) -> int:
    """Credit cashback ``points`` (pending for ``window`` days), cut to the ceiling; return
    the points credited."""
    decisions = rewards.Decisions(
        tx, compiled or rewards.NO_PROGRAM, totals, customer_id=customer_id, now=now
    )
    points = min(points, rewards.headroom(totals))
    if points <= 0:
        return 0
    until = pending_until(now, window)
    credited = decisions.credit(
        points, reason=entry.reason or "", entry=entry, kind=entry.type, pending_until=until
    )
    if until is None:
        decisions.retier()
        decisions.profile_updated()
    else:
        # Written now, so that the pending points any later payload of the batch reads
        # (``webhooks.gameball``) count it: those payloads need not flush the batch's rows.
        tx.flush_staged()
    return credited


@dataclass(kw_only=True)
class Cashback(ShopWork):
    """``POST …/transactions/cashback``: points for an amount paid (unknown customers are
    created); pending for the return window."""

    kind = "Cashback"

    transaction_id: str
    amount: Decimal
    return_window: int | None = None

    def shop_id(self) -> str:
        return self.transaction_id

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        compiled = self.program(tx, account)
        program = compiled.program if compiled is not None else None
        profile_id = self.profile(tx, account)
        totals = reward_rows.totals(tx, account.id, profile_id)
        points = money.whole(cashback_points(self.amount, rate_for(program, totals.tier_order)))
        window = window_days(program, self.return_window)
        entry = Entry(
            "PaymentReward",
            reason="Cashback",
            txn_family=burn_rows.TRANSACTION,
            txn_id=self.transaction_id,
            data={"amount": money.as_number(self.amount)},
        )
        credited = earn(
            tx,
            compiled,
            totals,
            customer_id=self.customer_id,
            points=points,
            entry=entry,
            window=window,
            now=self.now,
        )
        reward_rows.save_totals(tx, totals, self.now)
        answer = {
            "customerId": self.customer_id,
            "gameballTransactionId": last_entry_id(
                tx, account.id, burn_rows.TRANSACTION, self.transaction_id
            ),
            "transactionId": self.transaction_id,
            "rewardAmount": money.as_number(self.amount),
            "rewardEquivalentPoints": credited,
            "pendingPoints": credited if window > 0 else 0,
        }
        self.record(
            tx,
            account,
            profile_id=profile_id,
            answer=answer,
            amount=self.amount,
            earned=credited,
        )
        return answer


def mature(tx: Tx, account_id: int, profile_id: int, pending: list[int], now: str) -> int:
    """End the return window of these pending entries of one customer: what is left of each
    credit is credited now, as a new ledger entry with this moment's balances (the pending
    entries leave the ledger); return the points. The customer's tier follows, and
    ``customer.profile.updated`` tells of it."""
    totals = reward_rows.totals(tx, account_id, profile_id)
    # Once per transaction and account: a housekeeping run may mature many customers' points.
    compiled = tx.once(("compiled", account_id), rewards.load_compiled_or_none, tx, account_id)
    customer_id = profiles.customer_ids_of(tx, account_id, profile_id)[0]
    decisions = rewards.Decisions(
        tx, compiled or rewards.NO_PROGRAM, totals, customer_id=customer_id, now=now
    )
    moved = 0
    for entry_id in pending:
        entry = burn_rows.close_pending(tx, entry_id)
        points = 0 if entry is None else min(entry.points, rewards.headroom(totals))
        if entry is not None and points > 0:
            kind = entry.kind or entry.type
            moved += decisions.credit(points, reason=entry.reason or "", entry=entry, kind=kind)
    decisions.retier()
    reward_rows.save_totals(tx, totals, now)
    if moved:
        gameball.announce_profile(tx, account_id, customer_id, profile_id, now=now, totals=totals)
    return moved


MATURE_BATCH = 500


@dataclass(slots=True)
class MaturePoints:
    """Housekeeping writer work: pending credits whose return window has passed become
    available. Returns how many credits matured (with points left)."""

    now: str
    _credits: list[tuple[int, int, int, int]] = field(default_factory=list)
    _keys: list[str] = field(default_factory=list)

    def prepare(self, tx: Tx) -> None:
        self._credits = burn_rows.matured(tx, self.now, limit=MATURE_BATCH)
        self._keys = rewards.owners_lock_keys(tx, {(c[1], c[2]) for c in self._credits})

    def lock_keys(self) -> list[str]:
        return self._keys

    def apply(self, tx: Tx) -> int:
        owners = {(c[1], c[2]) for c in self._credits}  # read again under the locks
        current = [
            c for c in burn_rows.matured(tx, self.now, limit=MATURE_BATCH) if (c[1], c[2]) in owners
        ]
        by_owner: dict[tuple[int, int], list[int]] = {}
        for entry_id, account_id, profile_id, _ in current:
            by_owner.setdefault((account_id, profile_id), []).append(entry_id)
        for (account_id, profile_id), entries in sorted(by_owner.items()):
            mature(tx, account_id, profile_id, entries, self.now)
        return sum(1 for c in current if c[3] > 0)  # refunds and emptied credits end unseen


@dataclass(kw_only=True)
class Activate(ShopWork):
    """``PUT …/transactions/{transactionId}/activate``: end the return window of a
    transaction's (or order's) pending points now."""

    kind = "Activate"

    transaction_id: str
    _profile_id: int | None = None

    def locate(self, tx: Tx) -> None:
        account_id = self.owner().id
        found = burn_rows.pending_of(tx, account_id, self.transaction_id)
        profile = found[0][1] if found else burn_rows.owner_of(tx, account_id, self.transaction_id)
        if profile is None:
            raise errors.TransactionNotFound(
                f"Transaction not found: {self.transaction_id!r} has no points."
            )
        self._profile_id = profile
        self.customer_id = profiles.customer_ids_of(tx, account_id, self._profile_id)[0]

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        profile = self._profile_id
        assert profile is not None, "locate() runs in prepare()"
        # The customer ``locate`` found (and locked): an order and a transaction of another
        # customer may share the id, whose points wait for their own activate.
        entries = [
            entry_id
            for entry_id, profile_id, _ in burn_rows.pending_of(tx, account.id, self.transaction_id)
            if profile_id == profile
        ]
        points = mature(tx, account.id, profile, entries, self.now) if entries else 0
        return {
            "pointsActivated": points,
            "gameballTransactionId": (
                burn_rows.newest_entry_id(tx, account.id, self.transaction_id) if points else None
            ),
            "clientTransactionId": self.transaction_id,
        }

"""What every request of the burn side does as writer work: keys, rate limit, locks, and
answering a repeated ``transactionId``/``orderId`` or ``Idempotency-Key`` with the first
answer (a different request with the same id: 9004 or 2002, nothing written)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import msgspec

from kudos import errors
from kudos.domain import money
from kudos.domain.identity import customer_lock_key
from kudos.domain.model import Account, Credentials, iso_before, utc_now
from kudos.domain.ratelimit import transaction_windows
from kudos.rules.engine import CompiledProgram
from kudos.rules.schema import Redemption
from kudos.services import accounts, identity
from kudos.services.customers import find_profile
from kudos.services.ingest import IngestContext
from kudos.services.maintenance import IDEMPOTENCY_WINDOW
from kudos.storage import burn as burn_rows
from kudos.storage import idempotency
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.rewards import CustomerTotals

_canonical = msgspec.json.Encoder(order="sorted").encode


def body_hash(body: Any) -> str:
    """The fingerprint of a decoded request body (its keys in order: the same JSON sent with
    other spacing or key order is the same request)."""
    return hashlib.sha256(_canonical(body)).hexdigest()


@dataclass(kw_only=True)
class ShopWork:
    """One request of the burn side; subclasses write in ``run``."""

    family: ClassVar[str] = burn_rows.TRANSACTION
    kind: ClassVar[str]  # what the request is: Order, Redemption, Cashback, Hold…
    context: IngestContext
    credentials: Credentials
    customer_id: str
    request_hash: str
    email: str | None = None
    mobile: str | None = None
    idempotency_key: str | None = None
    now: str = field(default_factory=utc_now)
    account: Account | None = None
    linked: list[str] = field(default_factory=list)  # every customerId of its profile

    def shop_id(self) -> str | None:
        """The shop's id that makes this request unique (``transactionId``, ``orderId``)."""
        return None

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        raise NotImplementedError

    def prepare(self, tx: Tx) -> None:
        if self.account is not None:  # a retried batch: already authenticated and counted
            return
        account = accounts.authenticate(tx, self.context.keyring, self.credentials)
        windows = transaction_windows(account.rate_limit)
        wait = self.context.burn_limiter.hit_windows(account.id, windows, self.context.clock())
        if wait is not None:
            raise errors.RateLimited(retry_after=wait)
        self.account = account
        self.locate(tx)
        # A profile's points are spent through any of its customerIds (channel merging): a
        # request locks them all, or two processes could spend the same points at once (a
        # store with a single writer takes no locks).
        if tx.db.concurrent_writers:
            self.linked = burn_rows.linked_customer_ids(tx, account.id, self.customer_id)

    def locate(self, tx: Tx) -> None:
        """Set ``customer_id`` when the request names its customer another way."""

    def lock_keys(self) -> list[str]:
        account = self.owner()
        keys = identity.lock_key(account, self.customer_id, email=self.email, mobile=self.mobile)
        keys += [customer_lock_key(account.id, linked) for linked in self.linked]
        shop_id = self.shop_id()
        if shop_id is not None:
            keys.append(f"shop:{account.id}:{self.family}:{shop_id}")
        if self.idempotency_key is not None:
            keys.append(f"idempotency:{account.id}:{self.idempotency_key}")
        return keys

    def apply(self, tx: Tx) -> dict[str, Any]:
        account = self.owner()
        replayed = self._replayed(tx, account)
        if replayed is not None:
            return replayed
        answer = self.run(tx, account)
        if self.idempotency_key is not None:
            idempotency.remember(
                tx, account.id, self.idempotency_key, self.fingerprint(), self.now, answer=answer
            )
        return answer

    def _replayed(self, tx: Tx, account: Account) -> dict[str, Any] | None:
        """The first answer to this request, if it was made before."""
        if self.idempotency_key is not None:
            found = idempotency.find_answer(tx, account.id, self.idempotency_key)
            if found is not None and found[1] >= iso_before(self.now, IDEMPOTENCY_WINDOW):
                if found[0] != self.fingerprint() or found[2] is None:
                    raise errors.IdempotencyKeyReused()
                return found[2]
        shop_id = self.shop_id()
        if shop_id is None:
            return None
        known = burn_rows.shop_transaction(tx, account.id, self.family, shop_id)
        if known is None:
            return None
        if known.request_hash != self.fingerprint():
            raise errors.TransactionIdExists(
                f"Transaction ID already exists: {self.family} {shop_id!r} was recorded"
                " with another request."
            )
        return known.answer

    def fingerprint(self) -> str:
        """What a repeat must match: the same kind of request with the same body (a cashback
        with a redeem's id and body is another request, not its repeat)."""
        return f"{self.kind}:{self.request_hash}"

    def record(
        self,
        tx: Tx,
        account: Account,
        *,
        profile_id: int,
        answer: dict[str, Any],
        amount: Decimal,
        earned: int = 0,
        redeemed: int = 0,
    ) -> None:
        """Keep this request's shop id with its answer (what a repeat gets) and what a refund
        can move back (``earned``, ``redeemed``, in proportion to ``amount``)."""
        shop_id = self.shop_id()
        assert shop_id is not None, "only work with a shop id is recorded"
        found = burn_rows.ShopTransaction(
            family=self.family,
            id=shop_id,
            type=self.kind,
            profile_id=profile_id,
            customer_id=self.customer_id,
            request_hash=self.fingerprint(),
            answer=answer,
            amount=amount,
            points_earned=earned,
            points_redeemed=redeemed,
            created_at=self.now,
        )
        burn_rows.add_shop_transaction(tx, account.id, found)

    def owner(self) -> Account:
        assert self.account is not None, "prepare() runs before lock_keys() and apply()"
        return self.account

    def existing_profile(self, tx: Tx, account: Account) -> int:
        """The customer's profile id (``CustomerNotFound`` when there is none)."""
        return find_profile(tx, account, self.customer_id).id

    def profile(self, tx: Tx, account: Account) -> int:
        """The customer's profile id, created (or merged) as Send Events would."""
        return identity.profile_id(
            tx, account, self.customer_id, email=self.email, mobile=self.mobile, now=self.now
        )

    def program(self, tx: Tx, account: Account) -> CompiledProgram | None:
        return self.context.programs.get(tx, account.id)


def redemption_of(compiled: CompiledProgram | None) -> Redemption:
    """The program's redemption settings (``RedemptionDisabled`` without them)."""
    if compiled is None or compiled.program.redemption is None:
        raise errors.RedemptionDisabled()
    return compiled.program.redemption


def point_value(settings: Redemption) -> Decimal:
    return money.decimal(settings.point_value)


def spendable(tx: Tx, totals: CustomerTotals, now: str, *, besides_hold: str | None) -> int:
    """Points the customer can spend now: available credits less what holds reserve (but
    the hold ``besides_hold``)."""
    tx.flush_staged()  # credits staged earlier in the batch count
    credits = reward_rows.consumable_credits(tx, totals, now)
    held = burn_rows.held_points(
        tx, totals.account_id, totals.profile_id, now, besides=besides_hold
    )
    return sum(remaining for _, remaining in credits) - held


def last_entry_id(tx: Tx, account_id: int, family: str, shop_id: str) -> int | None:
    """The id of the newest ledger entry of a shop id (Gameball's ``gameballTransactionId``)."""
    tx.flush_staged()
    rows = burn_rows.entries_of(tx, account_id, family, shop_id)
    return int(rows[-1][0]) if rows else None

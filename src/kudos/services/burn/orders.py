"""Orders: ``POST …/orders`` records an order, fires ``place_order`` (campaigns run on it
once per order id), burns the hold it names and earns cashback on ``totalPaid``, in one
transaction. ``POST …/orders/cashback`` computes the same earning without writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account, iso
from kudos.domain.payload import EventBatch
from kudos.rules.engine import CompiledProgram
from kudos.services.burn import earn
from kudos.services.burn.redeem import spend, use_hold
from kudos.services.burn.work import ShopWork, redemption_of
from kudos.services.customers import find_profile
from kudos.services.ingest import ORDER_EVENT, ORDER_KEYS, FiresEvents, IngestEvents
from kudos.storage import burn as burn_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.profiles import decode_json
from kudos.storage.rewards import Entry
from kudos.webhooks import outbox

# Line-item fields copied into the place_order event (Gameball's mapping), as lists.
LINE_FIELDS = ("productId", "sku", "title", "vendor", "category", "collection", "tags", "weight")
LINE_KEYS = {"productId": "product_id", "tags": "tag"}
MAX_LINE_VALUES = 100  # distinct values of one line field kept in the event


@dataclass(slots=True)
class LineItem:
    product_id: str | None
    quantity: Decimal
    price: Decimal | None
    fields: dict[str, Any] = field(default_factory=dict)  # what maps into the event


@dataclass(slots=True)
class Order:
    """An order as the routes decoded it (amounts exact, lines in their order)."""

    order_id: str
    order_date: str | None
    total_paid: Decimal
    totals: dict[str, Decimal]  # totalPrice, totalDiscount, totalShipping, totalTax given
    lines: list[LineItem]
    extra: dict[str, Any]
    hold_reference: str | None = None
    return_window: int | None = None
    channel: str | None = None
    guest: bool = False

    def event_metadata(self) -> dict[str, Any]:
        """The ``place_order`` metadata: Gameball's mapping (``totalPaid`` → ``total_paid``,
        line fields as lists, ``extra`` keys as they are, never over the order's own)."""
        # An order id in ``extra`` would name another order to the once-per-order claim.
        found: dict[str, Any] = {k: v for k, v in self.extra.items() if k not in ORDER_KEYS}
        found["order_id"] = self.order_id
        found["total_paid"] = money.as_number(self.total_paid)
        for name, value in self.totals.items():
            found[_snake(name)] = money.as_number(value)
        for name in LINE_FIELDS:
            values = _line_values(self.lines, name)
            if values:
                found[LINE_KEYS.get(name, name)] = values
        if self.lines:
            found["quantity"] = money.as_number(
                sum((line.quantity for line in self.lines), money.ZERO)
            )
        if self.channel is not None:
            found["channel"] = self.channel
        if self.guest:
            found["guest"] = True
        return found


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _line_values(lines: list[LineItem], name: str) -> list[Any]:
    """The distinct values of one line field, in order, at most ``MAX_LINE_VALUES`` (what a
    campaign's ``contains`` reads of a list)."""
    values: dict[Any, None] = {}
    for line in lines:
        value = line.product_id if name == "productId" else line.fields.get(name)
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                values.setdefault(item, None)
                if len(values) == MAX_LINE_VALUES:
                    return list(values)
    return list(values)


def quote(order: Order, rate: Any) -> tuple[int, list[dict[str, Any]]]:
    """The points ``order`` earns at ``rate``, and each line's share (Gameball's
    ``lineItems``: the whole is rounded down once, each line on its own)."""
    total = earn.cashback_points(order.total_paid, rate)
    weights = [
        line.quantity * (line.price if line.price is not None else Decimal(1))
        for line in order.lines
    ]
    lines = [
        {
            "productId": line.product_id,
            "quantity": money.as_number(line.quantity),
            "decimalPoints": float(round(share, 2)),
            "points": money.whole(share),
            "score": 0,
        }
        for line, share in zip(order.lines, money.shares(weights, total), strict=True)
    ]
    return money.whole(total), lines


@dataclass(kw_only=True)
class PlaceOrder(ShopWork, FiresEvents):
    """``POST …/orders``: unknown customers are created."""

    kind = "Order"

    family = burn_rows.ORDER
    order: Order

    def shop_id(self) -> str:
        return self.order.order_id

    def apply(self, tx: Tx) -> dict[str, Any]:
        self.fired = None  # a retried batch decides afresh (a replay fires nothing)
        return super().apply(tx)

    def run(self, tx: Tx, account: Account) -> dict[str, Any]:
        order = self.order
        compiled = self.program(tx, account)
        profile_id = self.profile(tx, account)
        self._fire_event(tx, account)
        redeemed = self._burn(tx, account, compiled, profile_id)
        totals = reward_rows.totals(tx, account.id, profile_id)
        program = compiled.program if compiled is not None else None
        points, lines = quote(order, earn.rate_for(program, totals.tier_order))
        window = earn.window_days(program, order.return_window)
        credited = earn.earn(
            tx,
            compiled,
            totals,
            customer_id=self.customer_id,
            points=points,
            entry=Entry(
                "PaymentReward",
                reason=f"Order {order.order_id}",
                txn_family=burn_rows.ORDER,
                txn_id=order.order_id,
                data={"amount": money.as_number(order.total_paid)},
            ),
            window=window,
            now=self.now,
        )
        reward_rows.save_totals(tx, totals, self.now)
        answer = {
            "customerId": self.customer_id,
            "orderId": order.order_id,
            "redeemedPoints": redeemed,
            "rewardedPoints": credited,
            "pendingPoints": credited if window > 0 else 0,
            "lineItems": lines,
        }
        self.record(
            tx,
            account,
            profile_id=profile_id,
            answer=answer,
            amount=order.total_paid,
            earned=credited,
            redeemed=redeemed,
        )
        if outbox.wants(tx, account.id, outbox.ORDER_COMPLETED):
            data = {
                "customerId": self.customer_id,
                "gbCustomerId": profile_id,
                "orderId": order.order_id,
                "totalPaid": money.as_number(order.total_paid),
                "rewardedPoints": credited,
                "redeemedPoints": redeemed,
                "pendingPoints": answer["pendingPoints"],
            }
            outbox.emit(tx, account.id, outbox.ORDER_COMPLETED, data, now=self.now)
        return answer

    def _fire_event(self, tx: Tx, account: Account) -> None:
        """Store ``place_order`` and run the campaigns on it, as Send Events would (they
        run once per order id: not again if the shop sent that event itself)."""
        event = IngestEvents(
            context=self.context,
            batch=EventBatch(
                self.customer_id,
                ((ORDER_EVENT, self.order.event_metadata()),),
                email=self.email,
                mobile=self.mobile,
            ),
            credentials=self.credentials,
            received_at=self.now,
            account=account,
        )
        event.event_ids = tx.db.next_ids(tx, "events", 1)
        event.apply(tx)
        self.fired = event

    def _burn(
        self, tx: Tx, account: Account, compiled: CompiledProgram | None, profile_id: int
    ) -> int:
        """Redeem the hold the order names (``redemption.pointsHoldReference``)."""
        reference = self.order.hold_reference
        if reference is None:
            return 0
        redemption_of(compiled)
        points, _ = use_hold(tx, account, reference, profile_id, self.order.order_id, self.now)
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
                reason=f"Order {self.order.order_id}",
                txn_family=burn_rows.ORDER,
                txn_id=self.order.order_id,
            ),
            hold=reference,
            now=self.now,
        )
        return points


def cashback_quote(
    tx: Tx,
    account: Account,
    compiled: CompiledProgram | None,
    order: Order,
    customer_id: str | None,
) -> dict[str, Any]:
    """``POST …/orders/cashback``: what the order would earn (at the customer's tier when
    the customer is known), writing nothing."""
    tier_order = None
    if customer_id is not None:
        try:
            profile = find_profile(tx, account, customer_id)
        except errors.CustomerNotFound:  # an unknown customer earns at the base rate
            profile = None
        if profile is not None:
            tier_order = reward_rows.current_totals(tx, account.id, profile.id).tier_order
    program = compiled.program if compiled is not None else None
    rate = earn.rate_for(program, tier_order)
    points, lines = quote(order, rate)
    return {
        "totalPoints": points,
        "totalScore": 0,
        "lineItems": [
            {
                "productId": line["productId"],
                "quantity": line["quantity"],
                "totalDecimalPoints": line["decimalPoints"],
                "totalPoints": line["points"],
                "totalScore": 0,
                "rewardWalletFactor": None if rate is None else rate.points,
            }
            for line in lines
        ],
    }


def order_transactions(tx: Tx, account: Account, order_id: str) -> dict[str, Any]:
    """``GET …/orders/{orderId}/transactions``: what the order earned, burned and gave back."""
    known = burn_rows.shop_transaction(tx, account.id, burn_rows.ORDER, order_id)
    if known is None:
        raise errors.TransactionNotFound(f"Order not found: {order_id!r}.")
    found = []
    for row in burn_rows.entries_of(tx, account.id, burn_rows.ORDER, order_id):
        entry_id, kind, direction, points, _remaining, pending, created_at, data = row
        details = {} if data is None else decode_json(data)
        found.append(
            {
                "transactionDate": iso(created_at),
                "gameballTransactionId": int(entry_id),
                "transactionType": kind,
                "direction": direction,
                "amount": details.get("amount"),
                "transactionId": details.get("refundTransactionId", order_id),
                "equivalentPoints": int(points),
                "status": "Pending" if pending is not None else "Active",
            }
        )
    return {"transactions": found, "count": len(found)}

"""Bodies and answers of the burn side (Gameball's Transactions and Orders APIs, v4).

Gameball's clients send explicit ``null`` for fields they do not use, numbers as strings
(``"totalPrice": "100"``) and keys kudos does not know (``source``, ``discountCodes``): a
``null`` counts as absent, an amount may be a JSON number or a numeric string, unknown keys
are ignored. Amounts are exact decimals (at most 6 places, at most 1,000,000,000), points
JSON integers. Which of several fields must be given is checked by the routes (after nulls
are dropped), so the error names the fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

from kudos.domain.payload import MAX_EMAIL, MAX_ID_LENGTH, MAX_MOBILE
from kudos.rules.schema import (
    MAX_AWARD,
    MAX_EXPIRY_DAYS,
    MAX_MONEY,
    MAX_RETURN_WINDOW_DAYS,
    MONEY_PLACES,
)

MAX_LINE_ITEMS = 500
MAX_EXTRA_KEYS = 100
MAX_TEXT = 255


def _id_text(value: Any) -> Any:
    """The shop's ids may come as JSON integers (orderId 1001): kept as their text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ShopId = Annotated[
    str,
    BeforeValidator(_id_text),
    Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S"),
]
CustomerId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")]


def _money_schema(minimum: int, *, exclusive: bool = False) -> WithJsonSchema:
    """An amount as JSON Schema says it: a number in range with at most 6 decimals, or the
    same written as a string."""
    low = {"exclusiveMinimum" if exclusive else "minimum": minimum}
    sign = "-?" if minimum < 0 else ""
    number = {"type": "number", **low, "maximum": MAX_MONEY, "multipleOf": 10**-MONEY_PLACES}
    text = rf"^{sign}[0-9]{{1,10}}(\.[0-9]{{1,{MONEY_PLACES}}})?$"
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": text}]})


Money = Annotated[
    Decimal,
    Field(ge=0, le=MAX_MONEY, decimal_places=MONEY_PLACES, allow_inf_nan=False),
    _money_schema(0),
]
PositiveMoney = Annotated[
    Decimal,
    Field(gt=0, le=MAX_MONEY, decimal_places=MONEY_PLACES, allow_inf_nan=False),
    _money_schema(0, exclusive=True),
]
SignedMoney = Annotated[
    Decimal,
    Field(ge=-MAX_MONEY, le=MAX_MONEY, decimal_places=MONEY_PLACES, allow_inf_nan=False),
    _money_schema(-MAX_MONEY),
]
Points = Annotated[StrictInt, Field(ge=1, le=MAX_AWARD)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Scalar = str | int | float | bool | None


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Customer(Body):
    customerId: CustomerId
    email: Annotated[str, Field(max_length=MAX_EMAIL)] | None = None
    mobile: Annotated[str, Field(max_length=MAX_MOBILE)] | None = None
    transactionTime: Text | None = Field(
        default=None, description="Accepted and ignored: kudos records its own time."
    )


class HoldCreate(Customer):
    """Exactly one of ``pointsToHold`` and ``amountToHold``."""

    pointsToHold: Points | None = None
    amountToHold: Money | None = None
    ruleId: Scalar = Field(default=None, description="Redemption rules are not supported.")


class HoldPublic(BaseModel):
    customerId: str
    holdAmount: int | float
    holdEquivalentPoints: int
    holdReference: str
    dateToExpire: str


class HoldState(BaseModel):
    customerId: str
    holdReference: str
    holdAmount: int | float
    holdEquivalentPoints: int
    state: Literal["active", "used", "released", "expired"]
    dateToExpire: str
    usedBy: str | None


class Released(BaseModel):
    success: bool
    message: str


class RedeemCreate(Customer):
    """Exactly one of ``holdReference``, ``points`` and ``amount``."""

    transactionId: ShopId
    holdReference: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = None
    points: Points | None = None
    amount: Money | None = None
    reason: Text | None = None


class Redeemed(BaseModel):
    customerId: str
    gameballTransactionId: str
    transactionId: str
    redeemAmount: int | float
    redeemEquivalentPoints: int
    reason: str | None


class RefundCreate(Customer):
    refundTransactionId: ShopId
    reverseTransactionId: ShopId
    refundAmount: Money | None = Field(
        default=None, description="Absent or null: all that is left of the transaction."
    )
    lineItems: Annotated[list[dict[str, Any]], Field(max_length=MAX_LINE_ITEMS)] | None = Field(
        default=None, description="Accepted and ignored: refunds go by amount."
    )


class Refunded(BaseModel):
    customerId: str
    gameballTransactionId: str
    refundTransactionId: str
    reverseTransactionId: str
    refundAmount: int | float
    refundEquivalentPoints: int
    pointsClawedBack: int
    uncollectedPoints: int
    pointsReturned: int


class ReturnWindow(Body):
    returnWindow: Annotated[int, Field(ge=0, le=MAX_RETURN_WINDOW_DAYS)] | None = None


class CashbackCreate(Customer):
    transactionId: ShopId
    amount: PositiveMoney
    configurations: ReturnWindow | None = None


class CashbackRewarded(BaseModel):
    customerId: str
    gameballTransactionId: int | None
    transactionId: str
    rewardAmount: int | float
    rewardEquivalentPoints: int
    pendingPoints: int


class ManualCreate(Customer):
    """Exactly one of ``points`` and ``amount``: positive credits, negative debits."""

    transactionId: ShopId
    username: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
    reason: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S")]
    points: Annotated[StrictInt, Field(ge=-MAX_AWARD, le=MAX_AWARD)] | None = None
    amount: SignedMoney | None = None
    expiryAfter: Annotated[int, Field(ge=0, le=MAX_EXPIRY_DAYS)] | None = None


class ManualDone(BaseModel):
    customerId: str
    gameballTransactionId: int | None
    transactionId: str
    points: int
    amount: int | float | None


class Activated(BaseModel):
    pointsActivated: int
    gameballTransactionId: int | None
    clientTransactionId: str


class LineItemIn(Body):
    productId: Annotated[str, BeforeValidator(_id_text), Field(max_length=MAX_ID_LENGTH)] | None = (
        None
    )
    quantity: Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)] | None = None
    price: Money | None = None
    sku: Text | None = None
    title: Text | None = None
    vendor: Text | None = None
    weight: Annotated[Decimal, Field(ge=0, le=MAX_MONEY, allow_inf_nan=False)] | None = None
    tags: Annotated[list[Text], Field(max_length=50)] | None = None
    category: Annotated[list[Text], Field(max_length=50)] | None = None
    collection: Annotated[list[Text], Field(max_length=50)] | None = None
    taxes: Money | None = None
    discount: Money | None = None


class OrderRedemption(Body):
    pointsHoldReference: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)] | None = None
    couponsLockReference: Scalar = Field(default=None, description="Coupons are not supported.")
    couponCodes: list[Any] | None = Field(default=None, description="Coupons are not supported.")


class OrderAmounts(Body):
    totalPaid: Money
    totalPrice: Money | None = None
    totalDiscount: Money | None = None
    totalShipping: Money | None = None
    totalTax: Money | None = None
    lineItems: Annotated[list[LineItemIn], Field(max_length=MAX_LINE_ITEMS)] | None = None


class OrderCreate(Customer, OrderAmounts):
    orderId: ShopId
    orderDate: Text | None = None
    redemption: OrderRedemption | None = None
    extra: (
        Annotated[
            dict[
                Annotated[str, Field(min_length=1, max_length=MAX_TEXT)],
                str | int | float | bool | None,
            ],
            Field(max_length=MAX_EXTRA_KEYS),
        ]
        | None
    ) = None
    guest: StrictBool | None = None
    channel: Literal["mobile", "pos", "web", "callcenter"] | None = None
    cartId: Text | None = None
    cashbackConfigurations: ReturnWindow | None = None


class OrderLine(BaseModel):
    productId: str | None
    quantity: int | float
    decimalPoints: float
    points: int
    score: int


class OrderPlaced(BaseModel):
    customerId: str
    orderId: str
    redeemedPoints: int
    rewardedPoints: int
    pendingPoints: int
    lineItems: list[OrderLine]


class CashbackQuoteCreate(OrderAmounts):
    customerId: CustomerId | None = None


class QuoteLine(BaseModel):
    productId: str | None
    quantity: int | float
    totalDecimalPoints: float
    totalPoints: int
    totalScore: int
    rewardWalletFactor: int | None


class CashbackQuote(BaseModel):
    totalPoints: int
    totalScore: int
    lineItems: list[QuoteLine]


class OrderTransaction(BaseModel):
    transactionDate: str
    gameballTransactionId: int
    transactionType: str
    direction: str
    amount: int | float | None
    transactionId: str
    equivalentPoints: int
    status: str


class OrderTransactions(BaseModel):
    transactions: list[OrderTransaction]
    count: int


class RedemptionConfiguration(BaseModel):
    redemptionFactor: float | None
    minPoints: int
    holdMinutes: int
    currency: str | None
    redemptionRules: list[Any]


class CashbackRule(BaseModel):
    amountRewardThreshold: float
    rewardWalletFactor: int
    rewardRankFactor: int
    rewardFactor: float | None


class TierCashbackRule(CashbackRule):
    tierName: str


class CashbackConfiguration(BaseModel):
    defaultCashbackRule: CashbackRule | None
    tierCashbackRules: list[TierCashbackRule]
    returnWindowDays: int

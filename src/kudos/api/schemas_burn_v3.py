"""Bodies and answers of the burn side in the v3 dialect (what the official Python SDK,
``gb-alpha`` 3.0.0, sends under ``/api/v3.0/integrations``).

The customer is ``playerUniqueId``; otherwise the v4 rules hold (``api.schemas_burn``):
``null`` counts as absent, amounts may be numeric strings, unknown keys are ignored. Every
answer is the v4 answer with ``customerId`` named ``playerUniqueId``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from kudos.api import schemas_burn as v4
from kudos.api.schemas import BadgePublic, CampaignProgress, LedgerEntry, TierPublic
from kudos.domain.payload import MAX_ID_LENGTH

HoldReference = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class Player(v4.Customer):
    """v4's customer fields, the customer named ``playerUniqueId``."""

    customerId: v4.CustomerId = Field(alias="playerUniqueId")


class V3HoldCreate(Player):
    amount: v4.Money = Field(description="Money: the points it covers are held.")


class V3RedeemCreate(Player):
    """Exactly one of ``holdReference`` and ``redeemedAmount`` (the SDK sends both keys, the
    unused one ``null``)."""

    transactionId: v4.ShopId
    holdReference: HoldReference | None = None
    redeemedAmount: v4.Money | None = Field(default=None, description="Money.")


class V3RefundCreate(Player):
    transactionId: v4.ShopId = Field(description="The refund's own id.")
    reverseTransactionId: v4.ShopId = Field(description="The order or transaction refunded.")
    amount: v4.Money | None = Field(
        default=None, description="Absent or null: all that is left of the transaction."
    )


class V3CashbackCreate(Player, v4.CashbackCreate):
    merchant: Any = Field(default=None, description="Accepted and ignored.")


class V3ManualCreate(Player, v4.ManualCreate):
    """Exactly one of ``points`` and ``amount``: positive credits, negative debits."""


class V3OrderCreate(Player, v4.OrderCreate):
    """What ``send_order`` sends; v4's optional order fields are taken too."""

    holdReference: HoldReference | None = Field(
        default=None, description="A hold to burn (v4: redemption.pointsHoldReference)."
    )
    redeemedAmount: v4.Money | None = Field(
        default=None,
        description="Refused unless null or 0: hold the amount first and pass holdReference.",
    )
    discountCodes: list[Any] | None = Field(
        default=None, description="Coupons are not supported: must be empty."
    )


class V3HoldPlaced(BaseModel):
    playerUniqueId: str
    holdAmount: float
    holdEquivalentPoints: int
    holdReference: str
    dateToExpire: str


class V3Redeemed(BaseModel):
    playerUniqueId: str
    gameballTransactionId: str
    transactionId: str
    redeemAmount: float
    redeemEquivalentPoints: int
    reason: str | None


class V3Refunded(BaseModel):
    playerUniqueId: str
    gameballTransactionId: str
    refundTransactionId: str
    reverseTransactionId: str
    refundAmount: float
    refundEquivalentPoints: int
    pointsClawedBack: int
    uncollectedPoints: int
    pointsReturned: int


class V3CashbackRewarded(BaseModel):
    playerUniqueId: str
    gameballTransactionId: int | None
    transactionId: str
    rewardAmount: float
    rewardEquivalentPoints: int
    rewardedPoints: int = Field(description="v3's name of rewardEquivalentPoints.")
    pendingPoints: int


class V3ManualDone(BaseModel):
    playerUniqueId: str
    gameballTransactionId: int | None
    transactionId: str
    points: int
    amount: float | None


class V3OrderPlaced(BaseModel):
    playerUniqueId: str
    orderId: str
    redeemedPoints: int
    rewardedPoints: int
    pendingPoints: int
    lineItems: list[v4.OrderLine]


class PlayerTransaction(LedgerEntry):
    """v4's ledger entry (``api.schemas.Transaction``), its customer ``playerUniqueId``."""

    playerUniqueId: str


class V3TransactionsPage(BaseModel):
    transactions: list[PlayerTransaction] = Field(description="Newest first.")
    count: int = Field(description="Entries on this page.")
    page: int
    limit: int
    hasMore: bool = Field(description="A next page has entries.")


class PlayerInfo(BaseModel):
    playerUniqueId: str
    gameballId: int
    playerAttributes: dict[str, Any]
    createdAt: str
    updatedAt: str
    linkedPlayerUniqueIds: list[str]
    badges: list[BadgePublic]


class PlayerBalance(BaseModel):
    """Gameball's legacy balance. ``pointsBalance`` is what can be spent now: held and
    pending points are not in it."""

    playerUniqueId: str
    pointsBalance: int
    pointsValue: float
    pendingPoints: int
    pendingPointsValue: float
    currency: str | None
    pointsName: str


class PlayerProgress(BaseModel):
    """The tier progress and every campaign's progress (v4's two read-backs in one)."""

    playerUniqueId: str
    current: TierPublic | None
    next: TierPublic | None
    progress: float = Field(description="What the tiering method counts (points earned, …).")
    tieringMethod: str
    rewardCampaignsProgress: list[CampaignProgress]

"""Request and response models: they validate the FastAPI routes and describe all routes in
OpenAPI (the ingest routes are served by ``api.ingest`` but documented from these models).

The ingest models only document: ``domain.payload`` validates those bodies, and the models
carry its limits (``propertyNames``, a not-blank ``pattern``) so the document tells the truth.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

from kudos.domain.payload import (
    MAX_EMAIL,
    MAX_EVENT_NAME,
    MAX_EVENTS,
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_MOBILE,
)
from kudos.services import catalog as catalog_service
from kudos.services import customers as customer_service
from kudos.webhooks import outbox
from kudos.webhooks.urls import MAX_URL as MAX_WEBHOOK_URL

NOT_BLANK = r"\S"
"""``pattern`` of a string that is not only white space (``domain.payload`` strips it)."""

CustomerId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)
]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EVENT_NAME)]
Metadata = dict[Annotated[str, StringConstraints(max_length=MAX_KEY_LENGTH)], Any]
Events = Annotated[
    dict[EventName, Metadata | None],
    Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description="Event name (1 to 100 characters) → metadata: an object or null.",
    ),
]


def limit_keys(schema: dict[str, Any]) -> None:
    """JSON Schema of a free-form object whose keys ``domain.payload`` limits to 255 characters."""
    schema["propertyNames"] = {"maxLength": MAX_KEY_LENGTH}


class ErrorEnvelope(BaseModel):
    """Gameball's v4 error body (kudos adds ``problems`` to an invalid program's)."""

    code: int
    type: str
    message: str
    requestId: str
    problems: list[str] | None = Field(
        default=None, description="3100 only: each problem of the program, by its path."
    )


class ProgramVersion(BaseModel):
    """The program in force: version 0 means none was applied (no campaign runs)."""

    version: int
    createdAt: str | None
    program: dict[str, Any] = Field(description="The program document, defaults filled in.")


class LegacyError(BaseModel):
    """The v2/v3 error body."""

    code: int
    message: str


class EventsCreate(BaseModel):
    """Send Events (v4): one customer and a map of event name → metadata.

    Metadata keys are at most 255 characters and values nest at most 10 levels deep. No
    string anywhere (names, keys, values) may contain a NUL character.
    """

    customerId: CustomerId
    events: Events
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: str | None = Field(default=None, max_length=MAX_MOBILE)

    @model_validator(mode="before")
    @classmethod
    def _sized(cls, body: Any) -> Any:
        """Refuse too many events or keys before each is validated: pydantic reports every
        bad item of a dict, and 60,000 of them took ~0.3 s of the event loop to refuse."""
        events = body.get("events") if isinstance(body, dict) else None
        if isinstance(events, dict) and (
            len(events) > MAX_EVENTS
            or any(isinstance(m, dict) and len(m) > MAX_METADATA_KEYS for m in events.values())
        ):
            raise ValueError(
                f"at most {MAX_EVENTS} events of at most {MAX_METADATA_KEYS} metadata keys"
            )
        return body


class LegacyEventCreate(BaseModel):
    """Send Event (v3): the body the official Python SDK sends.

    The limits of v4's Send Events apply: no NUL character in any string, metadata keys of at
    most 255 characters, values nested at most 10 levels deep.
    """

    playerUniqueId: CustomerId
    events: Events
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: str | None = Field(default=None, max_length=MAX_MOBILE)


class LegacyV2EventCreate(LegacyEventCreate):
    """Send Event (v2): may also carry ``playerAttributes`` to create or update the player.

    The limits of v4's Send Events apply, to ``playerAttributes`` as to metadata.
    """

    playerAttributes: Metadata | None = None


class EventsAccepted(BaseModel):
    success: bool
    message: str


class CustomerAttributes(BaseModel):
    """Gameball's customer attributes; unknown keys are kept too.

    Keys (here and in ``custom``) are at most 255 characters, values nest at most 10 levels
    deep, and no string may contain a NUL character.
    """

    # The key limit is checked by ``domain.payload.check_json_value``; only documented here.
    model_config = ConfigDict(extra="allow", json_schema_extra=limit_keys)

    displayName: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: str | None = Field(default=None, max_length=MAX_MOBILE)
    gender: str | None = None
    dateOfBirth: str | None = None
    joinDate: str | None = None
    country: str | None = None
    city: str | None = None
    zip: str | None = None
    preferredLanguage: str | None = None
    channel: str | None = None
    custom: dict[str, Any] | None = Field(default=None, json_schema_extra=limit_keys)


class CustomerUpsert(BaseModel):
    """Create or update a customer (upsert). No string may contain a NUL character; the
    customerId may not contain ``/`` nor be ``.`` or ``..`` (no URL could reach it)."""

    customerId: StrictStr = Field(min_length=1, max_length=MAX_ID_LENGTH)
    email: StrictStr | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: StrictStr | None = Field(default=None, max_length=MAX_MOBILE)
    customerAttributes: CustomerAttributes | None = None


class CustomerUpserted(BaseModel):
    gameballId: int


class BadgePublic(BaseModel):
    badge: str
    campaignId: str
    earnedAt: str


class Balance(BaseModel):
    """Gameball v4's balance; the values use the program's ``redemption.pointValue`` (0
    without one) and ``currency`` its currency. Held points are in the total, not in the
    available balance; pending points are in neither."""

    customerId: str
    totalPointsBalance: int
    totalPointsValue: float
    availablePointsBalance: int
    availablePointsValue: float
    heldPoints: int
    pendingPoints: int
    pendingPointsValue: float
    currency: str | None
    pointsName: str
    nextExpiringPointsAmount: int
    nextExpiringPointsValue: float
    nextExpiringPointsDate: str | None
    totalEarnedPoints: int


class CustomerPublic(BaseModel):
    customerId: str
    gameballId: int
    customerAttributes: dict[str, Any]
    createdAt: str
    updatedAt: str
    linkedCustomerIds: list[str]
    badges: list[BadgePublic] = Field(description="Badges earned from campaigns, oldest first.")


class EventPublic(BaseModel):
    eventId: int
    name: str
    metadata: dict[str, Any]
    customerId: str
    receivedAt: str


class EventsPage(BaseModel):
    events: list[EventPublic] = Field(
        description="Newest first: at most `limit` events, and at most"
        f" {customer_service.MAX_EVENTS_PAGE_BYTES // 1024 // 1024} MiB of metadata"
        " (always one event, however large)."
    )
    hasMore: bool = Field(description="More events follow: pass the last eventId as startAfter.")


class CatalogKey(BaseModel):
    key: str
    type: str
    count: int
    firstSeen: str
    lastSeen: str


class CatalogEvent(BaseModel):
    name: str
    count: int
    firstSeen: str
    lastSeen: str
    keys: list[CatalogKey] = Field(
        description=f"In key order; at most {catalog_service.MAX_CATALOG_KEYS}."
    )
    keysTruncated: bool = Field(
        description="The name holds as many keys as the catalog records"
        f" ({catalog_service.MAX_CATALOG_KEYS}): keys first sent after that are not recorded."
    )


class EventCatalog(BaseModel):
    """One page of the event catalog, in name order."""

    events: list[CatalogEvent] = Field(
        description="At most `limit` names and about"
        f" {catalog_service.MAX_CATALOG_PAGE_BYTES // 1024 // 1024} MiB (always one name)."
    )
    nextAfter: str | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )
    truncated: bool = Field(
        description="The catalog holds as many names as it records"
        f" ({catalog_service.MAX_CATALOG_NAMES:,}): names first sent after that are not"
        " recorded (their events are stored as usual)."
    )


class Health(BaseModel):
    status: str


class ConditionExplanation(BaseModel):
    key: str
    op: str
    expected: Any
    actual: Any = Field(description="The event's value for the key (null when absent).")
    matched: bool


class RuleExplanation(BaseModel):
    event: str
    counted: bool
    count: int = Field(description="Matching events counted towards the rule, this one included.")
    after: int
    conditions: list[ConditionExplanation]


class CampaignExplanation(BaseModel):
    rules: list[RuleExplanation]


class PreviewProgress(BaseModel):
    currentPercentage: float
    wouldBePercentage: float
    completionRewardPoints: int | None
    completionRewardType: str | None


class CampaignPreview(BaseModel):
    campaignId: str
    campaignName: str
    campaignEndDate: str | None
    eligible: bool
    reason: str = Field(
        description="Rewarded, ProgressOnly, NoMatchingConditions, NonPointsReward, or why the"
        " campaign cannot be won now (NotStarted, Ended, NotInAudience, TierTooLow,"
        " MaxAchievementsReached, DailyLimitReached)."
    )
    rewardType: str | None
    rewardPoints: int
    points: int
    timesAchieved: int
    progress: PreviewProgress | None
    explanation: CampaignExplanation


class EventPreview(BaseModel):
    eventName: str
    valid: bool
    invalidReason: str | None
    totalPoints: int
    campaigns: list[CampaignPreview]


class RewardPreview(BaseModel):
    customerId: str
    totalPoints: int
    events: list[EventPreview]


class PointsAdjustment(BaseModel):
    """A manual credit (points > 0) or debit (points < 0)."""

    points: StrictInt = Field(
        description='A non-zero JSON integer (not 5.0, "5" or true); a debit may not exceed'
        " the available balance."
    )
    reason: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=200, pattern=NOT_BLANK)
    ]


class PointsAdjusted(BaseModel):
    customerId: str
    points: int
    pointsBalance: int
    totalEarnedPoints: int


class TierPublic(BaseModel):
    order: int
    name: str
    minProgress: float


class TierConfiguration(TierPublic):
    entryRewardPoints: int


class TiersConfiguration(BaseModel):
    tieringMethod: str
    tiers: list[TierConfiguration]


class TierProgress(BaseModel):
    customerId: str
    current: TierPublic | None
    next: TierPublic | None
    progress: float = Field(description="What the tiering method counts (points earned, …).")
    tieringMethod: str


class Activation(BaseModel):
    startDate: str | None
    endDate: str | None


class Availability(BaseModel):
    tags: list[str]
    minTier: int | None


class CampaignConfiguration(BaseModel):
    id: str
    name: str
    isRepeatable: bool
    maxAchievement: int = Field(description="-1: unlimited.")
    perDay: int | None
    activation: Activation
    availability: Availability
    rewards: dict[str, Any]


class CampaignProgress(BaseModel):
    rewardsCampaignId: str
    rewardsCampaignName: str
    isUnlocked: bool
    completionPercentage: float
    achievedCount: int
    canAchieve: bool
    rewardCampaignConfiguration: CampaignConfiguration


class ActivitiesPage(BaseModel):
    activities: list[dict[str, Any]] = Field(
        description="Newest first: activityId, activityType, activityDate, customerId,"
        " campaignId, points, and the activity's own fields (campaignName, tierName, reason…)."
    )
    count: int
    hasMore: bool


class LedgerEntry(BaseModel):
    """A ledger entry's fields but its customer's (``Transaction`` names it ``customerId``,
    v3's ``playerUniqueId``)."""

    transactionId: int = Field(description="kudos' id of the entry (the paging cursor).")
    gameballTransactionId: str
    clientTransactionId: str | None = Field(
        description="The shop's transactionId or orderId the entry belongs to, if any."
    )
    type: str = Field(
        description="Reward, TierEntry, Manual, Expiry, Redemption, Refund, Cancel,"
        " PaymentReward, ManualReward or ManualDeduction."
    )
    direction: str
    points: int
    remainingPoints: int
    amount: float | None
    reason: str | None
    achievedRewardCampaignId: str | None
    campaignVersion: int | None
    eventId: int | None
    pointsBalanceBefore: int | None = Field(description="null while the credit is pending")
    pointsBalanceAfter: int | None
    expiryDate: str | None
    status: str = Field(description="Active, Pending or Expired.")
    pendingUntil: str | None
    transactionTime: str


class Transaction(LedgerEntry):
    customerId: str


class TransactionsPage(BaseModel):
    transactions: list[Transaction]
    count: int
    hasMore: bool


Topic = Literal[
    "customer.profile.updated",
    "customer.notification.push",
    "customer.created",
    "customer.merged",
    "campaign.rewarded",
    "tier.changed",
    "points.expired",
    "event.received",
    "points.redeemed",
    "points.refunded",
    "order.completed",
]
# Only typed here: ``services.webhooks.check_url`` checks a URL (the API's and the CLI's).
WebhookUrl = Annotated[
    str,
    Field(
        description=(
            f"An absolute http(s) URL (at most {MAX_WEBHOOK_URL} characters, no user name or"
            " password) whose host the target policy allows (see docs/webhooks.md)."
        ),
        json_schema_extra={"format": "uri", "maxLength": MAX_WEBHOOK_URL},
    ),
]


class WebhookCreate(BaseModel):
    """A new endpoint: where to POST, and which topics."""

    url: WebhookUrl
    topics: list[Topic] = Field(
        min_length=1,
        max_length=len(outbox.TOPICS),
        description="Topics to receive (see docs/webhooks.md).",
    )


class WebhookUpdate(BaseModel):
    """The fields to change (leave one out to keep it; ``null`` is refused); re-activating
    clears the failure record."""

    url: WebhookUrl | None = None
    topics: Annotated[list[Topic], Field(min_length=1, max_length=len(outbox.TOPICS))] | None = None
    active: StrictBool | None = Field(default=None, description="true or false (strictly).")


class WebhookPublic(BaseModel):
    id: int
    url: str
    topics: list[str]
    active: bool
    disabledReason: str | None
    failingSince: str | None
    createdAt: str
    updatedAt: str


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret (whsec_…), shown only in this answer.")


class WebhookAttempt(BaseModel):
    id: int
    messageId: str
    topic: str
    attempt: int
    attemptedAt: str
    statusCode: int | None
    latencyMs: int
    error: str | None
    outcome: str = Field(description="delivered, pending (a retry is scheduled) or dead.")


class WebhookAttemptsPage(BaseModel):
    items: list[WebhookAttempt]
    nextBefore: int | None


class WebhookMessage(BaseModel):
    id: int
    messageId: str
    topic: str
    state: str
    attempts: int
    nextAttemptAt: str | None
    lastStatusCode: int | None
    lastError: str | None
    createdAt: str
    updatedAt: str


class WebhookMessagesPage(BaseModel):
    items: list[WebhookMessage]
    nextBefore: int | None


class WebhookRedelivered(BaseModel):
    messageId: str
    endpointId: int
    state: str
    endpointActive: bool


class WebhookReplayed(BaseModel):
    endpointId: int
    requeued: int

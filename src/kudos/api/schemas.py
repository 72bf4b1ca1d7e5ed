"""Request and response models: they validate the FastAPI routes and describe all routes in
OpenAPI (the ingest routes are served by ``api.ingest`` but documented from these models)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kudos.domain.payload import MAX_EMAIL, MAX_ID_LENGTH, MAX_MOBILE


class ErrorEnvelope(BaseModel):
    """Gameball's v4 error body."""

    code: int
    type: str
    message: str
    requestId: str


class LegacyError(BaseModel):
    """The v2/v3 error body."""

    code: int
    message: str


class EventsCreate(BaseModel):
    """Send Events (v4): one customer and a map of event name → metadata."""

    customerId: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    events: dict[str, dict[str, Any] | None] = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: str | None = Field(default=None, max_length=MAX_MOBILE)


class LegacyEventCreate(BaseModel):
    """Send Event (v3): the body the official Python SDK sends."""

    playerUniqueId: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    events: dict[str, dict[str, Any] | None] = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: str | None = Field(default=None, max_length=MAX_MOBILE)


class LegacyV2EventCreate(LegacyEventCreate):
    """Send Event (v2): may also carry ``playerAttributes`` to create or update the player."""

    playerAttributes: dict[str, Any] | None = None


class EventsAccepted(BaseModel):
    success: bool
    message: str


class CustomerAttributes(BaseModel):
    """Gameball's customer attributes; unknown keys are kept too."""

    model_config = ConfigDict(extra="allow")

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
    custom: dict[str, Any] | None = None


class CustomerUpsert(BaseModel):
    """Create or update a customer (upsert)."""

    customerId: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    mobile: str | None = Field(default=None, max_length=MAX_MOBILE)
    customerAttributes: CustomerAttributes | None = None


class CustomerUpserted(BaseModel):
    gameballId: int


class CustomerPublic(BaseModel):
    customerId: str
    gameballId: int
    customerAttributes: dict[str, Any]
    createdAt: str
    updatedAt: str
    linkedCustomerIds: list[str]


class EventPublic(BaseModel):
    eventId: int
    name: str
    metadata: dict[str, Any]
    customerId: str
    receivedAt: str


class EventsPage(BaseModel):
    events: list[EventPublic]
    hasMore: bool


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
    keys: list[CatalogKey]


class EventCatalog(BaseModel):
    events: list[CatalogEvent]


class Health(BaseModel):
    status: str

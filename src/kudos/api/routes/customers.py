"""Gameball customer routes: profile upsert and read-back, and the raw event history."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request, Response

from kudos.api.deps import ApiKeyAuth, RuntimeDep, SecretKeyAuth, credentials_for, read
from kudos.api.routing import KudosRoute
from kudos.api.schemas import (
    Balance,
    CustomerPublic,
    CustomerUpsert,
    CustomerUpserted,
    EventsPage,
)
from kudos.domain import payload
from kudos.domain.payload import check_json_value
from kudos.services import customers, loyalty
from kudos.services.customers import DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE

MAX_EVENT_ID = 2**63 - 1  # event ids are 64-bit integers in both stores

router = APIRouter(tags=["customers"], route_class=KudosRoute)


@router.post("/customers", response_model=CustomerUpserted, summary="Create or update a customer")
async def upsert_customer(
    body: CustomerUpsert, request: Request, runtime: RuntimeDep, credentials: ApiKeyAuth
) -> dict[str, Any]:
    """Create the customer, or merge the given attributes into the existing profile."""
    fields = body.model_dump(exclude_unset=True)
    attributes: dict[str, Any] = fields.get("customerAttributes") or {}
    check_json_value(attributes, "customerAttributes", depth=1)
    contact = {
        name: fields[name] if fields.get(name) is not None else attributes.get(name)
        for name in ("email", "mobile")
    }
    attributes.pop("email", None)
    attributes.pop("mobile", None)
    # The same text rules as Send Events: not blank, no NUL, no lone surrogates.
    work = customers.UpsertCustomer(
        context=runtime.context,
        credentials=credentials_for(request, credentials),
        customer_id=payload.require_string(fields, "customerId", max_length=payload.MAX_ID_LENGTH),
        email=payload.optional_string(contact, "email", max_length=payload.MAX_EMAIL),
        mobile=payload.optional_string(contact, "mobile", max_length=payload.MAX_MOBILE),
        attributes=attributes,
    )
    return {"gameballId": await runtime.writer.submit(work)}


@router.get("/customers/{customerId}", response_model=CustomerPublic, summary="Get a customer")
async def get_customer(
    customerId: str, request: Request, runtime: RuntimeDep, credentials: ApiKeyAuth
) -> dict[str, Any]:
    """The profile by any customerId linked to it (channel merging)."""
    return await read(
        runtime, credentials_for(request, credentials), customers.get_customer, customerId
    )


@router.get(
    "/customers/{customerId}/events", response_model=EventsPage, summary="List a customer's events"
)
async def list_customer_events(
    customerId: str,
    request: Request,
    runtime: RuntimeDep,
    credentials: ApiKeyAuth,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = DEFAULT_EVENTS_PAGE,
    startAfter: Annotated[
        int | None,
        Query(ge=1, le=MAX_EVENT_ID, description="The last eventId of the previous page"),
    ] = None,
) -> Response:
    """Raw events of the profile (all its linked customerIds), newest first; a page stops
    early, with ``hasMore``, once its metadata reaches 2 MiB (one event always fits)."""
    # Encoded in the read thread: up to 2 MiB of metadata validated and serialized through
    # the response model would hold the event loop, where every request waits.
    page = await read(
        runtime,
        credentials_for(request, credentials),
        lambda tx, account: msgspec.json.encode(
            customers.list_events(tx, account, customerId, limit=limit, start_after=startAfter)
        ),
    )
    return Response(page, media_type="application/json")


@router.get(
    "/customers/{customerId}/balance", response_model=Balance, summary="A customer's points"
)
async def get_balance(customerId: str, runtime: RuntimeDep, credentials: SecretKeyAuth) -> Any:
    """Total, available and next-expiring points, and the points earned in all."""
    cache = runtime.context.programs
    return await read(runtime, credentials, lambda tx, a: loyalty.balance(tx, a, cache, customerId))

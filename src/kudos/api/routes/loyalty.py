"""Gameball's read-back of rewards: tier and campaign progress, activities, transactions, and
the program's configuration."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from kudos.api.deps import ApiKeyAuth, RuntimeDep, SecretKeyAuth, read
from kudos.api.schemas import (
    ActivitiesPage,
    CampaignConfiguration,
    CampaignProgress,
    TierProgress,
    TiersConfiguration,
    TransactionsPage,
)
from kudos.domain.payload import MAX_ID_LENGTH
from kudos.services import loyalty

MAX_ID = 2**63 - 1  # ids are 64-bit integers in both stores

router = APIRouter(tags=["rewards"])

Limit = Annotated[int, Query(ge=1, le=loyalty.MAX_PAGE)]
StartAfter = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="The last id of the previous page")
]


@router.get(
    "/customers/{customerId}/tier-progress",
    response_model=TierProgress,
    summary="A customer's tier and the next one",
)
async def tier_progress(customerId: str, runtime: RuntimeDep, credentials: SecretKeyAuth) -> Any:
    cache = runtime.context.programs
    return await read(
        runtime, credentials, lambda tx, a: loyalty.tier_progress(tx, a, cache, customerId)
    )


@router.get(
    "/customers/{customerId}/reward-campaigns-progress",
    response_model=list[CampaignProgress],
    summary="A customer's progress in every campaign",
)
async def campaigns_progress(
    customerId: str, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    cache = runtime.context.programs
    return await read(
        runtime, credentials, lambda tx, a: loyalty.campaigns_progress(tx, a, cache, customerId)
    )


@router.get(
    "/customers/{customerId}/activities",
    response_model=ActivitiesPage,
    summary="A customer's activity log",
)
async def activities(
    customerId: str,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    limit: Limit = loyalty.DEFAULT_PAGE,
    startAfter: StartAfter = None,
    activityType: loyalty.ActivityType | None = None,
) -> Any:
    """Newest first; ``startAfter`` takes the last ``activityId`` of the previous page."""
    return await read(
        runtime,
        credentials,
        lambda tx, a: loyalty.activities(
            tx, a, customerId, activity_type=activityType, start_after=startAfter, limit=limit
        ),
    )


@router.get("/transactions", response_model=TransactionsPage, summary="A customer's points ledger")
async def transactions(
    customerId: Annotated[str, Query(min_length=1, max_length=MAX_ID_LENGTH)],
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    direction: Annotated[
        str | None, Query(description="+ or - (a bare space, an unencoded +, counts as +)")
    ] = None,
    status: Literal["Active", "Pending", "Expired"] | None = None,
    type: Annotated[str | None, Query(max_length=50)] = None,
    limit: Limit = loyalty.DEFAULT_PAGE,
    startAfter: StartAfter = None,
) -> Any:
    """Newest first; ``startAfter`` takes the last ``transactionId`` of the previous page."""
    if direction == " ":  # ``direction=+`` sent unencoded (Gameball's SDK) reads as a space
        direction = "+"
    return await read(
        runtime,
        credentials,
        lambda tx, a: loyalty.transactions(
            tx,
            a,
            customerId,
            direction=direction,
            start_after=startAfter,
            limit=limit,
            status=status,
            kind=type,
        ),
    )


@router.get(
    "/configurations/reward-campaigns",
    response_model=list[CampaignConfiguration],
    summary="The campaigns of the program in force",
)
async def reward_campaigns(runtime: RuntimeDep, credentials: ApiKeyAuth) -> Any:
    cache = runtime.context.programs
    return await read(
        runtime, credentials, lambda tx, a: loyalty.configured_campaigns(tx, a, cache)
    )


@router.get(
    "/configurations/tiers", response_model=TiersConfiguration, summary="The program's tiers"
)
async def tiers(runtime: RuntimeDep, credentials: ApiKeyAuth) -> Any:
    cache = runtime.context.programs
    return await read(runtime, credentials, lambda tx, a: loyalty.configured_tiers(tx, a, cache))

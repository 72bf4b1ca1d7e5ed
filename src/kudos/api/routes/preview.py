"""Gameball's Preview Event Rewards: the rewards engine, read-only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kudos.api.deps import ApiKeyAuth, RuntimeDep, credentials_for, read
from kudos.api.routing import KudosRoute
from kudos.api.schemas import EventsCreate, RewardPreview
from kudos.domain import payload
from kudos.services import loyalty

router = APIRouter(tags=["events"], route_class=KudosRoute)


@router.post(
    "/events/reward-preview", response_model=RewardPreview, summary="Preview event rewards"
)
async def reward_preview(
    body: EventsCreate, request: Request, runtime: RuntimeDep, credentials: ApiKeyAuth
) -> Any:
    """What these events would earn the customer now, and why; stores nothing and never
    creates a customer (unknown customer: 404)."""
    batch = payload.parse_event_batch(body.model_dump())  # the rules of Send Events
    cache = runtime.context.programs
    return await read(
        runtime,
        credentials_for(request, credentials),
        lambda tx, account: loyalty.preview(tx, account, cache, batch),
    )

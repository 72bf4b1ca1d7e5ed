"""The player read-backs in the v3 dialect of Gameball's official Python SDK
(``get_player_info``, ``get_player_balance``, ``get_player_progress``), included in
``routes.burn_v3.router`` (mounted under ``/api/v3.0``).

Both keys are required, as on every v3 route. The path is read as a playerUniqueId only: the
email or mobile these SDK calls put there when given one is not looked up as a contact.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kudos.api import schemas_burn_v3 as v3
from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.routes.burn import ShopIdPath
from kudos.api.routing import KudosRoute
from kudos.domain.model import Account
from kudos.services import customers, loyalty
from kudos.storage.db import Tx

router = APIRouter(tags=["v3 (Python SDK)"], route_class=KudosRoute)


@router.get(
    "/integrations/player/{playerUniqueId}",
    response_model=v3.PlayerInfo,
    summary="A player's profile (v3)",
)
async def player_info(
    playerUniqueId: ShopIdPath, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """The profile by any playerUniqueId linked to it (the ``lang`` header is ignored)."""
    found = await read(runtime, credentials, customers.get_customer, playerUniqueId)
    return {
        "playerUniqueId": playerUniqueId,
        "gameballId": found["gameballId"],
        "playerAttributes": found["customerAttributes"],
        "createdAt": found["createdAt"],
        "updatedAt": found["updatedAt"],
        "linkedPlayerUniqueIds": found["linkedCustomerIds"],
        "badges": found["badges"],
    }


@router.get(
    "/integrations/player/{playerUniqueId}/balance",
    response_model=v3.PlayerBalance,
    summary="A player's points (v3)",
)
async def player_balance(
    playerUniqueId: ShopIdPath, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """``pointsBalance`` is v4's ``availablePointsBalance``: what a hold or redeem can use."""
    cache = runtime.context.programs
    found = await read(
        runtime, credentials, lambda tx, a: loyalty.balance(tx, a, cache, playerUniqueId)
    )
    return {
        "playerUniqueId": playerUniqueId,
        "pointsBalance": found["availablePointsBalance"],
        "pointsValue": found["availablePointsValue"],
        "pendingPoints": found["pendingPoints"],
        "pendingPointsValue": found["pendingPointsValue"],
        "currency": found["currency"],
        "pointsName": found["pointsName"],
    }


@router.get(
    "/integrations/player/{playerUniqueId}/progress",
    response_model=v3.PlayerProgress,
    summary="A player's tier and campaign progress (v3)",
)
async def player_progress(
    playerUniqueId: ShopIdPath, runtime: RuntimeDep, credentials: SecretKeyAuth
) -> Any:
    """v4's ``tier-progress`` with ``reward-campaigns-progress`` as
    ``rewardCampaignsProgress``."""
    cache = runtime.context.programs

    def both(tx: Tx, account: Account) -> dict[str, Any]:
        tier = loyalty.tier_progress(tx, account, cache, playerUniqueId)
        tier["playerUniqueId"] = tier.pop("customerId")
        return {
            **tier,
            "rewardCampaignsProgress": loyalty.campaigns_progress(
                tx, account, cache, playerUniqueId
            ),
        }

    return await read(runtime, credentials, both)

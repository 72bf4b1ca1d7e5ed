"""kudos management API: the event catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.schemas import EventCatalog
from kudos.services import customers

router = APIRouter(tags=["management"])


@router.get("/events/catalog", response_model=EventCatalog, summary="The account's event catalog")
async def event_catalog(runtime: RuntimeDep, credentials: SecretKeyAuth) -> dict[str, Any]:
    """Every event name sent, its metadata keys with inferred type, counts, first/last seen."""
    return await read(runtime, credentials, customers.event_catalog)

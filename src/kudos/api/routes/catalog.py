"""kudos management API: the event catalog."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Query, Response

from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.routing import KudosRoute
from kudos.api.schemas import EventCatalog
from kudos.domain.payload import MAX_EVENT_NAME
from kudos.services import catalog

router = APIRouter(tags=["management"], route_class=KudosRoute)


@router.get("/events/catalog", response_model=EventCatalog, summary="The account's event catalog")
async def event_catalog(
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    limit: Annotated[int, Query(ge=1, le=catalog.MAX_CATALOG_PAGE)] = catalog.DEFAULT_CATALOG_PAGE,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_EVENT_NAME,
            description="The nextAfter of the previous page (names after it, in name order)",
        ),
    ] = None,
) -> Response:
    """Event names sent, in name order, each with its metadata keys with inferred type,
    counts, first/last seen; one page at a time."""
    # Encoded in the read thread: a page of up to 1 MiB validated and serialized through the
    # response model would take ~120 ms of the event loop, where every request waits.
    page = await read(
        runtime,
        credentials,
        lambda tx, account: msgspec.json.encode(
            catalog.page(tx, account, limit=limit, after=after)
        ),
    )
    return Response(page, media_type="application/json")

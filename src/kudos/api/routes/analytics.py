"""kudos management API: analytics (read-only; the apikey and secretkey, never the apikey
alone). ``Accept: text/csv`` answers the same table as CSV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, Path, Query, Request, Response

from kudos.analytics import csv as analytics_csv
from kudos.analytics import query as analytics_query
from kudos.analytics import summary as analytics_summary
from kudos.api.deps import RuntimeDep, SecretKeyAuth, read
from kudos.api.routing import KudosRoute
from kudos.bootstrap import Runtime
from kudos.domain.model import Account, Credentials
from kudos.storage.db import Tx

router = APIRouter(prefix="/analytics", tags=["analytics"], route_class=KudosRoute)
QUERY_SCHEMA = {
    "oneOf": [
        {"$ref": f"#/components/schemas/{name}"}
        for name in (
            "TrendsQuery",
            "FunnelQuery",
            "RetentionQuery",
            "LifecycleQuery",
            "StickinessQuery",
        )
    ]
}
Moment = Annotated[
    str | None,
    Query(max_length=40, description="ISO 8601 date or date-time in the account's time zone"),
]
Interval = Annotated[Literal["hour", "day", "week", "month", "auto"], Query()]


def _answer(request: Request, answer: dict[str, Any]) -> Response:
    if "text/csv" in request.headers.get("accept", ""):
        return Response(analytics_csv.render(answer), media_type="text/csv; charset=utf-8")
    return Response(msgspec.json.encode(answer), media_type="application/json")


async def _loyalty(
    request: Request,
    runtime: Runtime,
    credentials: Credentials,
    report: Callable[..., dict[str, Any]],
    start: str | None,
    end: str | None,
    **options: Any,
) -> Response:
    """A loyalty report of the account's range, with its program (tiers, a point's value)."""
    now = runtime.context.clock()

    def run(tx: Tx, account: Account) -> dict[str, Any]:
        program = runtime.context.programs.get(tx, account.id)
        return report(tx, account, start=start, end=end, now=now, program=program, **options)

    return _answer(request, await read(runtime, credentials, run))


@router.post(
    "/query",
    summary="Ask a question of the events: trends, funnel, retention, lifecycle, stickiness",
    response_model=dict[str, Any],
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": QUERY_SCHEMA}}}
    },
)
async def analytics_query_route(
    request: Request,
    body: Annotated[Any, Body()],
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
) -> Response:
    """A query by ``kind`` (docs/analytics.md). A bad one is refused with the path of each
    problem (3030); one too large for a raw scan (3031) or past its time budget (3032)
    changes nothing and holds no worker."""
    now = runtime.context.clock()
    answer = await read(
        runtime, credentials, lambda tx, account: analytics_query.run(tx, account, body, now=now)
    )
    return _answer(request, answer)


@router.get("/summary", summary="The loyalty figures of a range", response_model=dict[str, Any])
async def analytics_summary_route(
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    from_: Annotated[Moment, Query(alias="from")] = None,
    to: Moment = None,
) -> Response:
    """Members, events, points issued, redeemed, expired and outstanding (and their money
    value), tiers: each beside the previous period's value. Default: the last 30 days."""
    return await _loyalty(request, runtime, credentials, analytics_summary.summary, from_, to)


@router.get("/points", summary="Points moved per bucket", response_model=dict[str, Any])
async def analytics_points_route(
    request: Request,
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    from_: Annotated[Moment, Query(alias="from")] = None,
    to: Moment = None,
    interval: Interval = "auto",
) -> Response:
    """Points issued (by source), redeemed, expired and other debits per bucket, and the
    outstanding points (and their value) at each bucket's end."""
    return await _loyalty(
        request, runtime, credentials, analytics_summary.points, from_, to, interval=interval
    )


@router.get(
    "/campaigns/{campaignId}", summary="A campaign over time", response_model=dict[str, Any]
)
async def analytics_campaign_route(
    request: Request,
    campaignId: Annotated[str, Path(min_length=1, max_length=100)],
    runtime: RuntimeDep,
    credentials: SecretKeyAuth,
    from_: Annotated[Moment, Query(alias="from")] = None,
    to: Moment = None,
    interval: Interval = "auto",
) -> Response:
    """Participants (customers it rewarded), achievements, points given and cap hits per
    bucket."""
    now = runtime.context.clock()
    answer = await read(
        runtime,
        credentials,
        lambda tx, account: analytics_summary.campaign(
            tx, account, campaignId, start=from_, end=to, interval=interval, now=now
        ),
    )
    return _answer(request, answer)

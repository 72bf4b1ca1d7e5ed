"""The analytics query union, for the OpenAPI document (``/analytics/query``).

The route checks a query itself (``kudos.analytics.query``), so that every problem comes back
with its path (3030); these models describe the same shapes for clients and the contract test.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventName = Annotated[str, Field(min_length=1, max_length=100, description="Or $any.")]
Interval = Literal["hour", "day", "week", "month", "auto"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DateRange(Strict):
    """``from`` and ``to`` (ISO 8601 dates or date-times, ``to`` exclusive), or ``last``."""

    from_: Annotated[str | None, Field(alias="from", max_length=40)] = None
    to: Annotated[str | None, Field(max_length=40)] = None
    last: Annotated[str | None, Field(pattern=r"^[1-9][0-9]{0,3}[hdwm]$")] = None


class Filter(Strict):
    """A condition of a campaign rule's ``where``: the simple operators."""

    key: Annotated[str, Field(min_length=1, max_length=255)]
    op: Literal["equals", "notEquals", "contains", "gte", "gt", "lte", "lt", "between", "exists"]
    value: Any = None


class TrendSeries(Strict):
    event: EventName
    math: Literal[
        "count",
        "uniqueCustomers",
        "weeklyActive",
        "monthlyActive",
        "sum",
        "avg",
        "min",
        "max",
        "median",
        "p90",
        "p95",
        "p99",
    ] = "count"
    property: Annotated[str | None, Field(max_length=255)] = None


class Breakdown(Strict):
    property: Annotated[str, Field(min_length=1, max_length=255)]
    limit: Annotated[int, Field(ge=1, le=100)] = 25


class TrendsQuery(Strict):
    kind: Literal["trends"]
    series: Annotated[list[TrendSeries], Field(min_length=1, max_length=5)]
    dateRange: DateRange | None = None
    interval: Interval = "auto"
    filters: Annotated[list[Filter], Field(max_length=10)] = []
    breakdown: Breakdown | None = None
    compare: Literal["previousPeriod"] | None = None
    source: Literal["auto", "raw"] = "auto"


class FunnelStep(Strict):
    event: EventName
    filters: Annotated[list[Filter], Field(max_length=10)] = []


class Window(Strict):
    value: Annotated[int, Field(ge=1, le=1_000_000)]
    unit: Literal["minute", "hour", "day", "week"] = "day"


class FunnelQuery(Strict):
    kind: Literal["funnel"]
    steps: Annotated[list[FunnelStep], Field(min_length=2, max_length=10)]
    window: Window | None = None
    dateRange: DateRange | None = None


class RetentionQuery(Strict):
    kind: Literal["retention"]
    cohortEvent: EventName = "$firstSeen"
    returnEvent: EventName = "$any"
    period: Literal["day", "week", "month"] = "week"
    periods: Annotated[int, Field(ge=1, le=60)] = 8
    dateRange: DateRange | None = None


class LifecycleQuery(Strict):
    kind: Literal["lifecycle"]
    event: EventName = "$any"
    interval: Literal["day", "week", "month", "auto"] = "auto"
    dateRange: DateRange | None = None


class StickinessQuery(Strict):
    kind: Literal["stickiness"]
    event: EventName = "$any"
    interval: Literal["day", "week"] = "day"
    dateRange: DateRange | None = None


QUERY_MODELS: list[type[BaseModel]] = [
    TrendsQuery,
    FunnelQuery,
    RetentionQuery,
    LifecycleQuery,
    StickinessQuery,
]

"""``kind: trends``: series of a measure per bucket, from rollups where they answer it, else
from a raw scan (filters, breakdowns, percentiles, hourly unique customers).

Sources: counts, sums, averages, least and most without filters or breakdown read the hourly
rollups (exact when every bucket edge is a whole UTC hour; zones such as Asia/Kolkata go raw);
unique and active customers by day, week or month read the activity gaps (exact for ranges
from midnight to midnight); everything else scans the events.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from kudos import errors
from kudos.analytics import activity, keep, periods, raw
from kudos.analytics.query import (
    ANY_EVENT,
    DEFAULT_BREAKDOWN,
    MATHS,
    MAX_BREAKDOWN,
    MAX_SERIES,
    VALUE_MATHS,
    Query,
    Reader,
    Series,
    envelope,
)
from kudos.domain.model import Account
from kudos.rules.schema import Condition
from kudos.storage import analytics as rows
from kudos.storage.db import Tx

ACTIVE_WINDOWS = {"weeklyActive": 7, "monthlyActive": 30}
ROLLED_UP = ("count", "sum", "avg", "min", "max")  # what the hourly rollups answer
PERCENTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
OTHER = "$other"
NONE = "$none"
MAX_BREAKDOWN_VALUES = 10_000  # distinct values a raw breakdown holds while it counts
INTERVALS = ("hour", "day", "week", "month", "auto")


def parse(reader: Reader) -> dict[str, Any]:
    reader.known(
        "kind", "series", "dateRange", "interval", "filters", "breakdown", "compare", "source"
    )
    body, problems = reader.body, reader.problems
    series: list[Series] = []
    raw_series = body.get("series")
    if not isinstance(raw_series, list) or not 1 <= len(raw_series) <= MAX_SERIES:
        problems.add("series", f"a list of 1 to {MAX_SERIES} series")
        raw_series = []
    for index, item in enumerate(raw_series):
        if not isinstance(item, dict):
            problems.add(f"series[{index}]", "an object with event and math")
            continue
        one = Reader(item, problems, f"series[{index}]")
        one.known("event", "math", "property")
        event = one.event("event")
        math_name = one.choice("math", MATHS, default="count")
        prop = item.get("property")
        if math_name in VALUE_MATHS:
            if not isinstance(prop, str) or not 0 < len(prop) <= 255:
                problems.add(f"series[{index}].property", f"the metadata key {math_name} reads")
        elif prop is not None:
            problems.add(f"series[{index}].property", f"{math_name} reads no property")
        series.append(Series(event, math_name, prop if math_name in VALUE_MATHS else None))
    interval = reader.choice("interval", INTERVALS, default="auto")
    breakdown = body.get("breakdown")
    prop, limit = None, DEFAULT_BREAKDOWN
    if breakdown is not None:
        if not isinstance(breakdown, dict):
            problems.add("breakdown", "an object with property and limit")
        else:
            one = Reader(breakdown, problems, "breakdown")
            one.known("property", "limit")
            prop = breakdown.get("property")
            if not isinstance(prop, str) or not 0 < len(prop) <= 255:
                problems.add("breakdown.property", "a metadata key")
            limit = one.integer("limit", 1, MAX_BREAKDOWN, default=DEFAULT_BREAKDOWN)
    compare = body.get("compare")
    if compare not in (None, "previousPeriod"):
        problems.add("compare", "previousPeriod, or leave it out")
    source = reader.choice("source", ("auto", "raw"), default="auto")
    return {
        "series": series,
        "interval": interval,
        "filters": reader.filters(),
        "breakdown": prop,
        "limit": limit,
        "compare": compare is not None,
        "raw": source == "raw",
    }


@dataclass
class Column:
    """One answered series: its data per bucket and its total."""

    series: Series
    breakdown_value: str | None
    data: list[Any]
    total: Any
    source: str
    exact: bool = True


@dataclass
class Plan:
    query: Query
    interval: str
    filters: list[Condition]
    breakdown: str | None
    limit: int
    force_raw: bool
    budget: raw.Budget = field(default_factory=raw.Budget)


def answer(tx: Tx, account: Account, query: Query) -> dict[str, Any]:
    fields = query.fields
    interval = fields["interval"]
    windows = any(s.math in ACTIVE_WINDOWS for s in fields["series"])
    if interval == "auto":
        interval = periods.auto_interval(query.span)
        if windows and interval == "hour":
            interval = "day"  # a rolling week or month ends with a day, not an hour
    elif windows and interval == "hour":
        raise errors.QueryInvalid(
            ["interval: weeklyActive and monthlyActive need day, week or month"]
        )
    plan = Plan(
        query, interval, fields["filters"], fields["breakdown"], fields["limit"], fields["raw"]
    )
    buckets = periods.buckets(query.span, interval)
    columns = _columns(tx, account, plan, query.span, buckets, values=None)
    previous: list[Column] | None = None
    previous_buckets: list[periods.Bucket] = []
    if fields["compare"]:
        span = query.span.previous()
        previous_buckets = periods.buckets(span, interval)
        first = fields["series"][0]
        values: list[str | None] | None = None
        if plan.breakdown:
            values = [c.breakdown_value for c in columns if c.series is first]
        previous = _columns(tx, account, plan, span, previous_buckets, values=values)
    out = [_shown(c) for c in columns]
    if previous is not None:
        labels = [b.label for b in previous_buckets]
        for shown, before in zip(out, previous, strict=True):
            shown["previous"] = {"buckets": labels, "data": before.data, "total": before.total}
    sources = {c.source for c in columns + (previous or [])}
    return envelope(
        tx,
        account,
        query,
        exact=all(c.exact for c in columns + (previous or [])),
        source=sources.pop() if len(sources) == 1 else "mixed",
        interval=interval,
        buckets=[b.label for b in buckets],
        series=out,
    )


def _shown(column: Column) -> dict[str, Any]:
    series = column.series
    return {
        "label": _label(series, column.breakdown_value),
        "event": series.event,
        "math": series.math,
        "property": series.property,
        "breakdownValue": column.breakdown_value,
        "data": column.data,
        "total": column.total,
    }


def _label(series: Series, value: str | None) -> str:
    measure = series.math if series.property is None else f"{series.math}({series.property})"
    return f"{series.event} · {measure}" + ("" if value is None else f" · {value}")


def _columns(
    tx: Tx,
    account: Account,
    plan: Plan,
    span: periods.Range,
    buckets: list[periods.Bucket],
    *,
    values: list[str | None] | None,
) -> list[Column]:
    series_list: list[Series] = plan.query.fields["series"]
    if plan.breakdown is not None:
        return _broken_down(tx, account, plan, span, buckets, series_list, values)
    return [_column(tx, account, plan, span, buckets, s) for s in series_list]


def _column(
    tx: Tx,
    account: Account,
    plan: Plan,
    span: periods.Range,
    buckets: list[periods.Bucket],
    series: Series,
) -> Column:
    if not plan.filters and not plan.force_raw:
        if series.math in ROLLED_UP:
            if _on_hours(buckets):
                return _from_hours(tx, account, buckets, series)
        elif series.math not in VALUE_MATHS and plan.interval != "hour":
            return _from_activity(tx, account, span, buckets, series)
    gathered = _gather(tx, account, plan, span, buckets, series, None)
    return _columns_of(gathered, [None], [], buckets)[0]


def _on_hours(buckets: list[periods.Bucket]) -> bool:
    return all(b.start % 3600 == 0 and b.end % 3600 == 0 for b in buckets)


# --- rollups ---------------------------------------------------------------------------------


def _names(series: Series) -> list[str] | None:
    """The rollup rows of a series: its name's, or those of every name (``None``)."""
    return None if series.event == ANY_EVENT else [series.event]


def _from_hours(tx: Tx, account: Account, buckets: list[periods.Bucket], series: Series) -> Column:
    first, last = int(buckets[0].start) // 3600, int(buckets[-1].end) // 3600
    starts = [int(b.start) // 3600 for b in buckets]
    place = _placer(starts)
    if series.math == "count":
        counts = [0] * len(buckets)
        name = keep.ANY if series.event == ANY_EVENT else series.event
        for hour, events in rows.hour_counts(tx, account.id, name, first, last):
            counts[place(int(hour))] += int(events)
        return Column(series, None, counts, sum(counts), "rollup")
    assert series.property is not None
    stats = [Stats() for _ in buckets]
    total = Stats()
    for hour, n, sum_, low, high in rows.hour_numbers(
        tx, account.id, _names(series), series.property, first, last
    ):
        for target in (stats[place(int(hour))], total):
            target.merge(int(n), float(sum_), float(low), float(high))
    return Column(
        series, None, [s.value(series.math) for s in stats], total.value(series.math), "rollup"
    )


def _placer(starts: list[int]) -> Any:
    def place(value: int) -> int:
        return bisect.bisect_right(starts, value) - 1

    return place


@dataclass
class Stats:
    n: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def merge(self, n: int, total: float, low: float, high: float) -> None:
        self.n += n
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)

    def value(self, math_name: str) -> Any:
        if math_name == "sum":
            return number(self.total)
        if not self.n:
            return None
        if math_name == "avg":
            return self.total / self.n
        return number(self.low if math_name == "min" else self.high)


def number(value: float) -> int | float:
    """A whole float as an int (sums of whole numbers read as they were sent)."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _from_activity(
    tx: Tx, account: Account, span: periods.Range, buckets: list[periods.Bucket], series: Series
) -> Column:
    name = keep.ANY if series.event == ANY_EVENT else series.event
    first_day, last_day = span.days
    window = ACTIVE_WINDOWS.get(series.math)
    lookback = window - 1 if window else 0
    gaps = activity.Gaps(tx, account.id, name, first_day - lookback, last_day)
    if window is None:
        data = [gaps.distinct(b.start_day, b.end_day) for b in buckets]
        total = gaps.distinct(first_day, last_day)
        exact = last_day - first_day <= keep.MAX_GAP
    else:
        data = [gaps.distinct(b.end_day - window, b.end_day) for b in buckets]
        total = data[-1]
        exact = True
    return Column(series, None, data, total, "rollup", exact=exact and span.whole_days)


# --- raw scans -------------------------------------------------------------------------------


class Cell:
    """What a raw scan gathers for one series, breakdown value and bucket."""

    __slots__ = ("count", "customers", "values")

    def __init__(self) -> None:
        self.count = 0
        self.customers: set[int] = set()
        self.values: list[float] = []


@dataclass
class Gathered:
    """What a raw scan of one series gathered, by breakdown value (``None`` without one):
    per bucket (``cells``), or per local day (``days``, for the active-customer windows)."""

    series: Series
    cells: dict[str | None, dict[int, Cell]]
    days: dict[str | None, dict[int, set[int]]]

    def values(self) -> set[str | None]:
        return set(self.cells) | set(self.days)


def _gather(
    tx: Tx,
    account: Account,
    plan: Plan,
    span: periods.Range,
    buckets: list[periods.Bucket],
    series: Series,
    breakdown: str | None,
) -> Gathered:
    window = ACTIVE_WINDOWS.get(series.math)
    start = span.start.timestamp() - (window * 86400 if window else 0)
    raw.check_span(start, span.end.timestamp())
    first_day = buckets[0].end_day - window if window else 0  # the first window's first day
    db = tx.db
    bounds = [db.time_value(b.start) for b in buckets]  # compared as the store keeps times
    filters = raw.compile_filters(plan.filters)
    need_metadata = bool(filters) or breakdown is not None or series.property is not None
    cells: dict[str | None, dict[int, Cell]] = defaultdict(lambda: defaultdict(Cell))
    days: dict[str | None, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    zone = account.timezone
    names = _scan_names(tx, account, series)
    for moment, _, profile, _, metadata in raw.scan(
        tx,
        account.id,
        names,
        start,
        span.end.timestamp(),
        budget=plan.budget,
        metadata=need_metadata,
    ):
        if filters and not raw.passes(filters, metadata):
            continue
        value = None if breakdown is None else breakdown_value(metadata, breakdown)
        if window is not None:
            day = periods.local_day(db.seconds(moment), zone)
            if day < first_day:
                continue  # in no bucket's window
            found_days = days[value]
            if len(days) > MAX_BREAKDOWN_VALUES:
                raise _too_many(breakdown or "")
            found_days[day].add(profile)
            continue
        if moment < bounds[0]:
            continue
        by_bucket = cells[value]
        if len(cells) > MAX_BREAKDOWN_VALUES:
            raise _too_many(breakdown or "")
        cell = by_bucket[bisect.bisect_right(bounds, moment) - 1]
        cell.count += 1
        cell.customers.add(profile)
        if series.property is not None:
            found: Any = metadata.get(series.property)
            kind = type(found)
            if (kind is int or kind is float) and -1e300 < found < 1e300:
                cell.values.append(float(found))
    return Gathered(series, cells, days)


def _columns_of(
    gathered: Gathered,
    values: list[str | None],
    shown: list[str | None],
    buckets: list[periods.Bucket],
) -> list[Column]:
    """A column per value; ``$other`` folds every value not in ``shown``."""
    window = ACTIVE_WINDOWS.get(gathered.series.math)
    columns = []
    for value in values:
        if value == OTHER:
            rest = [v for v in gathered.values() if v not in set(shown)]
            cells, days = _folded(gathered.cells, rest), _folded_days(gathered.days, rest)
        else:
            cells, days = gathered.cells.get(value, {}), gathered.days.get(value, {})
        columns.append(_raw_column(gathered.series, value, cells, days, buckets, window))
    return columns


def _scan_names(tx: Tx, account: Account, series: Series) -> list[str] | None:
    return raw.all_names(tx, account.id) if series.event == ANY_EVENT else [series.event]


def breakdown_value(metadata: dict[str, Any], key: str) -> str:
    if key not in metadata:
        return NONE
    value = metadata[key]
    if isinstance(value, str):
        return value[:200]
    return msgspec.json.encode(value).decode()[:200]


def _too_many(key: str) -> Exception:
    return errors.QueryTooLarge(
        f"Query too large: the breakdown property {key!r} has more than"
        f" {MAX_BREAKDOWN_VALUES:,} values in the range."
    )


def _ranked(gathered: Gathered, buckets: list[periods.Bucket], limit: int) -> list[str | None]:
    """The ``limit`` values with the largest totals of the first series (ties: by value)."""
    totals = {
        value: _columns_of(gathered, [value], [], buckets)[0].total for value in gathered.values()
    }
    return sorted(totals, key=lambda v: (-(_rank(totals[v])), str(v)))[:limit]


def _rank(total: Any) -> float:
    return -math.inf if total is None else float(total)


def _folded(
    cells: dict[str | None, dict[int, Cell]], values: Iterable[str | None]
) -> dict[int, Cell]:
    folded: dict[int, Cell] = defaultdict(Cell)
    for value in values:
        for index, cell in cells.get(value, {}).items():
            into = folded[index]
            into.count += cell.count
            into.customers |= cell.customers
            into.values.extend(cell.values)
    return folded


def _folded_days(
    days: dict[str | None, dict[int, set[int]]], values: Iterable[str | None]
) -> dict[int, set[int]]:
    folded: dict[int, set[int]] = defaultdict(set)
    for value in values:
        for day, customers in days.get(value, {}).items():
            folded[day] |= customers
    return folded


def _raw_column(
    series: Series,
    value: str | None,
    group: dict[int, Cell],
    days: dict[int, set[int]],
    buckets: list[periods.Bucket],
    window: int | None,
) -> Column:
    """One column from what a scan gathered: per bucket, or per day for active windows."""
    if window is not None:
        data = [_active(days, b.end_day - window, b.end_day) for b in buckets]
        return Column(series, value, data, data[-1] if data else 0, "raw")
    cells = [group.get(index) or Cell() for index in range(len(buckets))]
    if series.math == "count":
        data = [c.count for c in cells]
        return Column(series, value, data, sum(data), "raw")
    if series.math == "uniqueCustomers":
        everyone: set[int] = set()
        for c in cells:
            everyone |= c.customers
        return Column(series, value, [len(c.customers) for c in cells], len(everyone), "raw")
    every = [v for c in cells for v in c.values]
    data = [measure(series.math, c.values) for c in cells]
    return Column(series, value, data, measure(series.math, every), "raw")


def _active(days: dict[int, set[int]], start: int, end: int) -> int:
    seen: set[int] = set()
    for day in range(start, end):
        seen |= days.get(day, set())
    return len(seen)


def measure(math_name: str, values: list[float]) -> Any:
    """A value measure of numbers (``None`` for none, but a sum of none is 0)."""
    if math_name == "sum":
        return number(math.fsum(values)) if values else 0
    if not values:
        return None
    if math_name == "avg":
        return math.fsum(values) / len(values)
    if math_name == "min":
        return number(min(values))
    if math_name == "max":
        return number(max(values))
    return percentile(sorted(values), PERCENTILES[math_name])


def percentile(ordered: list[float], share: float) -> float:
    """Linear interpolation between closest ranks (PostgreSQL's ``percentile_cont``)."""
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _broken_down(
    tx: Tx,
    account: Account,
    plan: Plan,
    span: periods.Range,
    buckets: list[periods.Bucket],
    series_list: list[Series],
    fixed: list[str | None] | None,
) -> list[Column]:
    """Every series broken down by the same values: the first series' top ``limit``, and
    ``$other`` (for every series) when any series has events of other values. ``fixed``: the
    compared period's values, kept as they are."""
    gathered = [
        _gather(tx, account, plan, span, buckets, series, plan.breakdown) for series in series_list
    ]
    if fixed is None:
        shown = _ranked(gathered[0], buckets, plan.limit)
        other = any(v not in set(shown) for g in gathered for v in g.values())
        values = shown + ([OTHER] if other else [])
    else:
        values = fixed
        shown = [v for v in fixed if v != OTHER]
    return [column for g in gathered for column in _columns_of(g, values, shown, buckets)]

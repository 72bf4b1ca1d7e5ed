"""``kind: retention | lifecycle | stickiness``: how customers come back, from the activity
kept per customer and local day (``analytics.keep``), never from the raw events.

All three are exact for ranges from local midnight to local midnight (they count whole days)
and say ``exact: false`` otherwise.
"""

from __future__ import annotations

import bisect
from datetime import timedelta
from typing import Any

from kudos.analytics import activity, keep, periods
from kudos.analytics.query import ANY_EVENT, FIRST_SEEN, MAX_PERIODS, Query, Reader, envelope
from kudos.analytics.raw import Budget
from kudos.domain.model import Account
from kudos.storage import analytics as rows
from kudos.storage.db import Tx

_CHECK_EVERY = 8192


def _activity_name(event: str) -> str:
    return keep.ANY if event in (ANY_EVENT, FIRST_SEEN) else event


# --- retention -------------------------------------------------------------------------------


def parse_retention(reader: Reader) -> dict[str, Any]:
    reader.known("kind", "cohortEvent", "returnEvent", "period", "periods", "dateRange")
    return {
        "cohort": reader.event("cohortEvent", anything=FIRST_SEEN, default=FIRST_SEEN),
        "returns": reader.event("returnEvent", default=ANY_EVENT),
        "period": reader.choice("period", ("day", "week", "month"), default="week"),
        "periods": reader.integer("periods", 1, MAX_PERIODS, default=8),
    }


def retention(tx: Tx, account: Account, query: Query) -> dict[str, Any]:
    fields, span = query.fields, query.span
    period, most = fields["period"], fields["periods"]
    count = _count(span, period)
    last_day = span.days[1]
    # The periods that start before the range's end: the cohorts' and those they return in.
    listed = [p for p in periods.aligned_days(span, period, count + most) if p[0] < last_day]
    cohorts = listed[:count]
    starts = [p[0] for p in listed]
    budget = Budget()
    cohort_name = _activity_name(fields["cohort"])
    first, last = cohorts[0][0], cohorts[-1][1]
    sizes = [0] * len(cohorts)
    for _, day in rows.firsts(tx, account.id, cohort_name, first, last):
        sizes[bisect.bisect_right(starts, int(day)) - 1] += 1
    retained = [[size] + [0] * (most - 1) for size in sizes]
    bounds = [*starts, listed[-1][1]]
    stride = {"day": 1, "week": 7}.get(period)
    back = _activity_name(fields["returns"])
    with tx.db.time_budget(tx, budget.left()):
        found = rows.returns(tx, account.id, cohort_name, back, bounds, stride, cohorts_end=last)
    for cohort, later, customers in found:
        after = int(later) - int(cohort)
        if int(cohort) < len(cohorts) and 0 < after < most:
            retained[int(cohort)][after] += int(customers)
    return envelope(
        tx,
        account,
        query,
        exact=span.whole_days,
        period=period,
        cohorts=[
            {
                "start": periods.day_date(start).isoformat(),
                "size": sizes[index],
                "retained": retained[index][: len(listed) - index],
            }
            for index, (start, _) in enumerate(cohorts)
        ],
    )


def _count(span: periods.Range, interval: str) -> int:
    return len(periods.buckets(span, interval))


# --- lifecycle -------------------------------------------------------------------------------


def parse_lifecycle(reader: Reader) -> dict[str, Any]:
    reader.known("kind", "event", "interval", "dateRange")
    return {
        "event": reader.event("event", default=ANY_EVENT),
        "interval": reader.choice("interval", ("day", "week", "month", "auto"), default="auto"),
    }


def lifecycle(tx: Tx, account: Account, query: Query) -> dict[str, Any]:
    span, interval = query.span, _interval(query)
    buckets = periods.buckets(span, interval)
    before = periods.align(span.start, interval) - timedelta(microseconds=1)
    first_start = periods.day_number(periods.align(before, interval))
    starts = [first_start] + [b.start_day for b in buckets]
    gaps = activity.Gaps(
        tx, account.id, _activity_name(query.fields["event"]), first_start, buckets[-1].end_day
    )
    new, returning, resurrecting, dormant = [], [], [], []
    for index, bucket in enumerate(buckets):
        previous = starts[index]
        n, r, s = gaps.kinds(bucket.start_day, bucket.end_day, previous)
        new.append(n)
        returning.append(r)
        resurrecting.append(s)
        dormant.append(-(gaps.distinct(previous, bucket.start_day) - r))
    return envelope(
        tx,
        account,
        query,
        exact=span.whole_days,
        interval=interval,
        buckets=[b.label for b in buckets],
        new=new,
        returning=returning,
        resurrecting=resurrecting,
        dormant=dormant,
    )


def _interval(query: Query) -> str:
    chosen: str = query.fields["interval"]
    if chosen == "auto":
        chosen = periods.auto_interval(query.span)
        if chosen == "hour":
            chosen = "day"
    return chosen


# --- stickiness ------------------------------------------------------------------------------


def parse_stickiness(reader: Reader) -> dict[str, Any]:
    reader.known("kind", "event", "interval", "dateRange")
    return {
        "event": reader.event("event", default=ANY_EVENT),
        "interval": reader.choice("interval", ("day", "week"), default="day"),
    }


def stickiness(tx: Tx, account: Account, query: Query) -> dict[str, Any]:
    span, interval = query.span, query.fields["interval"]
    buckets = periods.buckets(span, interval)
    starts = [b.start_day for b in buckets]
    first, last = span.days
    budget = Budget()
    active: dict[int, int] = {}
    cursor = rows.active(tx, account.id, _activity_name(query.fields["event"]), first, last)
    for number, (profile, day) in enumerate(cursor):
        if number % _CHECK_EVERY == 0:
            budget.check()
        active[profile] = active.get(profile, 0) | 1 << (bisect.bisect_right(starts, day) - 1)
    customers = [0] * len(buckets)
    for mask in active.values():
        customers[mask.bit_count() - 1] += 1
    return envelope(
        tx,
        account,
        query,
        exact=span.whole_days,
        interval=interval,
        intervals=len(buckets),
        customers=customers,
    )

"""The analytics oracle: every query kind answered in plain Python over the raw events.

Written from the contract (docs of issue 14) alone, never from the implementation: no import of
``kudos.analytics``; the only code shared is the campaign rules' ``predicate``, which the
contract names as the semantics of a filter. Slow and obvious on purpose: every bucket scans
every event.

Where the contract leaves a choice open, the choice made here is written next to the code
(look for "Reading:"); the tests avoid generating the cases such a reading decides, unless the
reading is the only sensible one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kudos.rules.engine import predicate
from kudos.rules.schema import Condition

MICROSECOND = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
WINDOW_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
PERCENTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
NUMERIC_MATHS = frozenset({"sum", "avg", "min", "max", *PERCENTILES})
ACTIVE_DAYS = {"weeklyActive": 7, "monthlyActive": 30}
# Maths that the contract computes from per-customer-per-day activity (interval day or more).
DAY_BASED_MATHS = frozenset({"uniqueCustomers", *ACTIVE_DAYS})
OTHER, NONE = "$other", "$none"


@dataclass(frozen=True)
class Event:
    """One stored event, with the profile its customerId belongs to now."""

    id: int
    at: datetime  # aware, UTC: the event's received_at
    customer_id: str
    profile: str  # any stable name of the profile as it is now
    name: str
    metadata: dict[str, Any]

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.at, self.id)


@dataclass(frozen=True)
class Bucket:
    label: str
    start: datetime  # aligned start (may be before the range's start)
    end: datetime  # aligned end (may be after the range's end)


# --- the account's calendar -------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Local days, ISO weeks and months of one time zone; UTC hours."""

    zone: ZoneInfo

    def midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), self.zone).astimezone(UTC)

    def day_of(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def is_midnight(self, at: datetime) -> bool:
        return self.midnight(self.day_of(at)) == at

    def align(self, interval: str, at: datetime) -> datetime:
        """The start of the bucket of ``interval`` holding ``at``."""
        if interval == "hour":
            return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        day = self.day_of(at)
        if interval == "day":
            return self.midnight(day)
        if interval == "week":
            return self.midnight(day - timedelta(days=day.weekday()))
        if interval == "month":
            return self.midnight(day.replace(day=1))
        raise ValueError(interval)

    def shift(self, interval: str, start: datetime, count: int) -> datetime:
        """The aligned start ``count`` buckets after (or before) the aligned ``start``."""
        if interval == "hour":
            return start + count * HOUR
        day = self.day_of(start)
        if interval == "day":
            return self.midnight(day + timedelta(days=count))
        if interval == "week":
            return self.midnight(day + timedelta(days=7 * count))
        return self.midnight(add_months(day, count))

    def label(self, interval: str, start: datetime) -> str:
        if interval == "hour":
            return self.local(start).isoformat()
        return self.day_of(start).isoformat()

    def bucket(self, interval: str, start: datetime) -> Bucket:
        return Bucket(self.label(interval, start), start, self.shift(interval, start, 1))

    def buckets(self, interval: str, low: datetime, high: datetime) -> list[Bucket]:
        """Every aligned bucket that overlaps [low, high), in order."""
        found, start = [], self.align(interval, low)
        while start < high:
            found.append(self.bucket(interval, start))
            start = found[-1].end
        return found


def add_months(day: date, months: int) -> date:
    """Reading: a day of month the target month lacks is clipped to its last day (the tests
    only generate days 1 to 28, where no reading is needed)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


# --- date ranges ------------------------------------------------------------------------------


def parse_point(text: str, calendar: Calendar) -> datetime:
    """A ``from``/``to``: a date is its local midnight; a date-time without offset is local."""
    if len(text) == 10:
        return calendar.midnight(date.fromisoformat(text))
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=calendar.zone)
    return moment.astimezone(UTC)


def parse_range(
    spec: dict[str, Any] | None, calendar: Calendar, now: datetime
) -> tuple[datetime, datetime]:
    """[from, to) of a ``dateRange`` (default: the last 30 days)."""
    spec = spec or {"last": "30d"}
    if "last" not in spec:
        return parse_point(spec["from"], calendar), parse_point(spec["to"], calendar)
    count, unit = int(spec["last"][:-1]), spec["last"][-1]
    if unit == "h":
        hour = calendar.local(now).replace(minute=0, second=0, microsecond=0)
        high = hour.astimezone(UTC) + HOUR
        return high - count * HOUR, high  # Reading: N elapsed hours
    today = calendar.day_of(now)
    high = calendar.midnight(today + timedelta(days=1))
    end_day = today + timedelta(days=1)
    if unit == "d":
        return calendar.midnight(end_day - timedelta(days=count)), high
    if unit == "w":
        return calendar.midnight(end_day - timedelta(days=7 * count)), high
    if unit == "m":
        return calendar.midnight(add_months(end_day, -count)), high
    raise ValueError(unit)


def auto_interval(low: datetime, high: datetime) -> str:
    """Reading: the range's length is elapsed time (the tests only ask for ``auto`` where local
    days would choose the same)."""
    length = high - low
    if length <= timedelta(days=2):
        return "hour"
    if length <= timedelta(days=31):
        return "day"
    if length <= timedelta(days=180):
        return "week"
    return "month"


def is_exact_range(low: datetime, high: datetime, calendar: Calendar) -> bool:
    return calendar.is_midnight(low) and calendar.is_midnight(high)


def range_fields(low: datetime, high: datetime, calendar: Calendar) -> dict[str, str]:
    return {"from": calendar.local(low).isoformat(), "to": calendar.local(high).isoformat()}


# --- events, filters, numbers -----------------------------------------------------------------

Test = Callable[[dict[str, Any]], bool]


def compile_filters(filters: Iterable[dict[str, Any]]) -> Test:
    """AND of the filters; an event without a filter's key fails it."""
    tests = [
        (f["key"], predicate(Condition(key=f["key"], op=f["op"], value=f.get("value"))))
        for f in filters
    ]
    return lambda metadata: all(key in metadata and test(metadata[key]) for key, test in tests)


def named(event: Event, name: str) -> bool:
    return name == "$any" or event.name == name


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers(events: Iterable[Event], key: str) -> list[float]:
    return [e.metadata[key] for e in events if is_number(e.metadata.get(key))]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def aggregate(math_name: str, values: list[float]) -> float | None:
    if math_name == "sum":
        return sum(values)
    if not values:
        return None
    if math_name == "avg":
        return sum(values) / len(values)
    if math_name == "min":
        return min(values)
    if math_name == "max":
        return max(values)
    return percentile(values, PERCENTILES[math_name])


def within(events: Iterable[Event], low: datetime, high: datetime) -> list[Event]:
    return [e for e in events if low <= e.at < high]


def breakdown_value(event: Event, key: str) -> str:
    """A string as is; any other JSON value as its JSON text; absent: ``$none``."""
    if key not in event.metadata:
        return NONE
    value = event.metadata[key]
    return value if isinstance(value, str) else json.dumps(value)


# --- trends -----------------------------------------------------------------------------------


def trends(events: list[Event], body: dict[str, Any], calendar: Calendar, now: datetime) -> Any:
    """The expected answer of a trends query (the fields the contract fixes)."""
    low, high = parse_range(body.get("dateRange"), calendar, now)
    interval = body.get("interval", "auto")
    if interval == "auto":
        interval = auto_interval(low, high)
        if interval == "hour" and any(s["math"] in ACTIVE_DAYS for s in body["series"]):
            interval = "day"  # a rolling week or month ends with a day
    keep = compile_filters(body.get("filters", []))
    kept = [e for e in events if keep(e.metadata)]
    groups = _breakdown_groups(kept, {**body, "interval": interval}, low, high, calendar)
    previous = _previous_period(low, high, calendar) if body.get("compare") else None
    series = []
    for spec in body["series"]:
        matching = [e for e in kept if named(e, spec["event"])]
        for value, selected in groups(matching):
            one = {
                "event": spec["event"],
                "math": spec["math"],
                "property": spec.get("property"),
                "breakdownValue": value,
            }
            trend = _trend(selected, spec, calendar, interval, low, high)
            one.update(data=trend["data"], total=trend["total"])
            if previous is not None:
                one["previous"] = _trend(selected, spec, calendar, interval, *previous)
            series.append(one)
    day_based = interval != "hour" and any(s["math"] in DAY_BASED_MATHS for s in body["series"])
    return {
        "kind": "trends",
        "timezone": calendar.zone.key,
        "exact": is_exact_range(low, high, calendar) or not day_based,
        "interval": interval,
        **range_fields(low, high, calendar),
        "buckets": [b.label for b in calendar.buckets(interval, low, high)],
        "series": series,
    }


def _trend(
    events: list[Event],
    spec: dict[str, Any],
    calendar: Calendar,
    interval: str,
    low: datetime,
    high: datetime,
) -> dict[str, Any]:
    """One series over [low, high): its buckets, data and total."""
    buckets = calendar.buckets(interval, low, high)
    math_name, key = spec["math"], spec.get("property")
    data: list[Any] = []
    for bucket in buckets:
        inside = within(events, max(low, bucket.start), min(high, bucket.end))
        if math_name in ACTIVE_DAYS:
            window = within(events, *_window(math_name, bucket, high, calendar))
            data.append(len({e.profile for e in window}))
        else:
            data.append(_measure(math_name, key, inside))
    everything = within(events, low, high)
    if math_name in ACTIVE_DAYS:
        total = data[-1]
    elif math_name == "count" or math_name == "sum":
        total = sum(data)
    else:
        total = _measure(math_name, key, everything)
    return {"buckets": [b.label for b in buckets], "data": data, "total": total}


def _measure(math_name: str, key: str | None, events: list[Event]) -> Any:
    if math_name == "count":
        return len(events)
    if math_name == "uniqueCustomers":
        return len({e.profile for e in events})
    assert key is not None
    return aggregate(math_name, numbers(events, key))


Groups = Callable[[list[Event]], list[tuple[str | None, list[Event]]]]


def _breakdown_groups(
    kept: list[Event], body: dict[str, Any], low: datetime, high: datetime, calendar: Calendar
) -> Groups:
    """How each series' events split into breakdown values, in the answer's order: the top
    values by the first series' total (ties by text), then ``$other``.

    Reading: ``$other`` is listed when some event that a series counts (in the range, or in
    the window of a weekly or monthly active customers series) has a value outside the top
    ones; so it may show zeros for the first series, or stand alone when the first series
    counts no event."""
    breakdown = body.get("breakdown")
    if not breakdown:
        return lambda events: [(None, events)]
    key, limit = breakdown["property"], breakdown.get("limit", 25)
    first = body["series"][0]
    firsts = [e for e in within(kept, low, high) if named(e, first["event"])]
    values = {breakdown_value(e, key) for e in firsts}
    totals = {}
    for value in values:
        selected = [e for e in firsts if breakdown_value(e, key) == value]
        totals[value] = _measure(first["math"], first.get("property"), selected)
    ranked = sorted(values, key=lambda v: (-totals[v], v))
    top = ranked[:limit]
    counted = []
    for spec in body["series"]:
        since = _counted_since(spec["math"], low, high, calendar, body["interval"])
        counted += [e for e in within(kept, since, high) if named(e, spec["event"])]
    other = any(breakdown_value(e, key) not in top for e in counted)

    def groups(events: list[Event]) -> list[tuple[str | None, list[Event]]]:
        found: list[tuple[str | None, list[Event]]] = [
            (value, [e for e in events if breakdown_value(e, key) == value]) for value in top
        ]
        if other:
            found.append((OTHER, [e for e in events if breakdown_value(e, key) not in top]))
        return found

    return groups


def _counted_since(
    math_name: str, low: datetime, high: datetime, calendar: Calendar, interval: str
) -> datetime:
    """Where the events a series counts start: ``from``, or the first bucket's window."""
    if math_name not in ACTIVE_DAYS:
        return low
    first = calendar.buckets(interval, low, high)[0]
    return _window(math_name, first, high, calendar)[0]


def _window(
    math_name: str, bucket: Bucket, high: datetime, calendar: Calendar
) -> tuple[datetime, datetime]:
    """The N days ending with the bucket's last day, its end clipped to ``to``.

    Reading: the last day is that of the clipped end (a week cut short by ``to`` still looks
    back N whole days from where it ends)."""
    end = min(high, bucket.end)
    last_day = calendar.day_of(end - MICROSECOND)
    return calendar.midnight(last_day - timedelta(days=ACTIVE_DAYS[math_name] - 1)), end


def _previous_period(
    low: datetime, high: datetime, calendar: Calendar
) -> tuple[datetime, datetime]:
    """Reading (the contract does not define ``previousPeriod``): the same number of local days
    just before ``from`` when both ends are local midnights, else the same elapsed time."""
    if is_exact_range(low, high, calendar):
        days = (calendar.day_of(high) - calendar.day_of(low)).days
        return calendar.midnight(calendar.day_of(low) - timedelta(days=days)), low
    return low - (high - low), low


# --- funnel -----------------------------------------------------------------------------------


def funnel(events: list[Event], body: dict[str, Any], calendar: Calendar, now: datetime) -> Any:
    low, high = parse_range(body.get("dateRange"), calendar, now)
    steps = body["steps"]
    tests = [(s["event"], compile_filters(s.get("filters", []))) for s in steps]
    window = timedelta(seconds=body["window"]["value"] * WINDOW_UNITS[body["window"]["unit"]])
    paths: list[list[Event]] = []  # per customer reaching step 1: the path that counts
    for own in by_profile(events).values():
        best: list[Event] = []
        for index, start in enumerate(own):
            if not (low <= start.at < high and _step(start, tests[0])):
                continue
            path = _greedy(own, index, tests, window)
            if len(path) > len(best):  # the first start reaching the furthest step
                best = path
        if best:
            paths.append(best)
    counts = [sum(1 for p in paths if len(p) > k) for k in range(len(steps))]
    answer = []
    for k, step in enumerate(steps):
        seconds = [(p[k].at - p[k - 1].at).total_seconds() for p in paths if k and len(p) > k]
        answer.append(
            {
                "event": step["event"],
                "count": counts[k],
                "conversionFromFirst": _ratio(counts[k], counts[0]),
                "conversionFromPrevious": _ratio(counts[k], counts[k - 1] if k else counts[0]),
                "medianSecondsFromPrevious": median(seconds) if seconds else None,
            }
        )
    return {
        "kind": "funnel",
        "timezone": calendar.zone.key,
        "exact": True,
        **range_fields(low, high, calendar),
        "window": body["window"],
        "steps": answer,
    }


def _step(event: Event, test: tuple[str, Test]) -> bool:
    return named(event, test[0]) and test[1](event.metadata)


def _greedy(
    own: list[Event], index: int, tests: list[tuple[str, Test]], window: timedelta
) -> list[Event]:
    """From the step-1 event at ``index``: each next step at its earliest matching event."""
    start = own[index]
    path, position = [start], index
    for test in tests[1:]:
        found = next(
            (
                i
                for i in range(position + 1, len(own))
                if own[i].at - start.at <= window and _step(own[i], test)
            ),
            None,
        )
        if found is None:
            break
        path.append(own[found])
        position = found
    return path


def _ratio(count: int, divisor: int) -> float:
    return count / divisor if divisor else 0


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def by_profile(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Each profile's events in (time, id) order."""
    found: dict[str, list[Event]] = {}
    for event in sorted(events, key=lambda e: e.order):
        found.setdefault(event.profile, []).append(event)
    return found


# --- retention --------------------------------------------------------------------------------


def retention(events: list[Event], body: dict[str, Any], calendar: Calendar, now: datetime) -> Any:
    """Reading: every aligned period overlapping the range is a cohort, listed even when
    empty; a return counts anywhere in its whole period (even past ``to``)."""
    low, high = parse_range(body.get("dateRange"), calendar, now)
    period, periods = body["period"], body["periods"]
    cohort_event, return_event = body["cohortEvent"], body["returnEvent"]
    firsts: dict[str, datetime] = {}
    for profile, own in by_profile(events).items():
        wanted = "$any" if cohort_event == "$firstSeen" else cohort_event
        first = next((e for e in own if named(e, wanted)), None)
        if first is not None:
            firsts[profile] = calendar.align(period, first.at)
    cohorts = []
    for bucket in calendar.buckets(period, low, high):
        members = {p for p, start in firsts.items() if start == bucket.start}
        retained = [len(members)]
        for k in range(1, periods):
            start = calendar.shift(period, bucket.start, k)
            if start >= high:
                break
            end = calendar.shift(period, bucket.start, k + 1)
            back = {e.profile for e in within(events, start, end) if named(e, return_event)}
            retained.append(len(members & back))
        cohorts.append({"start": bucket.label, "size": len(members), "retained": retained})
    return {
        "kind": "retention",
        "timezone": calendar.zone.key,
        "exact": is_exact_range(low, high, calendar),
        "period": period,
        "cohorts": cohorts,
    }


# --- lifecycle --------------------------------------------------------------------------------


def lifecycle(events: list[Event], body: dict[str, Any], calendar: Calendar, now: datetime) -> Any:
    """Reading: a bucket's activity is that inside [from, to) (as in trends); the bucket
    before ``from`` counts whole (the tests align ranges to the interval, where both agree)."""
    low, high = parse_range(body.get("dateRange"), calendar, now)
    interval = body["interval"]
    matching = [e for e in events if named(e, body["event"])]
    first_bucket: dict[str, datetime] = {}
    for profile, own in by_profile(matching).items():
        first_bucket[profile] = calendar.align(interval, own[0].at)
    buckets = calendar.buckets(interval, low, high)
    answer: dict[str, list[Any]] = {"new": [], "returning": [], "resurrecting": [], "dormant": []}
    for bucket in buckets:
        before = calendar.shift(interval, bucket.start, -1)
        inside = within(matching, max(low, bucket.start), min(high, bucket.end))
        active = {e.profile for e in inside}
        since = before if bucket.start <= low else max(low, before)
        was = {e.profile for e in within(matching, since, bucket.start)}
        new = {p for p in active if first_bucket[p] == bucket.start}
        answer["new"].append(len(new))
        answer["returning"].append(len((active - new) & was))
        answer["resurrecting"].append(len(active - new - was))
        answer["dormant"].append(-len(was - active))
    return {
        "kind": "lifecycle",
        "timezone": calendar.zone.key,
        "exact": is_exact_range(low, high, calendar),
        "buckets": [b.label for b in buckets],
        **answer,
    }


# --- stickiness -------------------------------------------------------------------------------


def stickiness(events: list[Event], body: dict[str, Any], calendar: Calendar, now: datetime) -> Any:
    low, high = parse_range(body.get("dateRange"), calendar, now)
    buckets = calendar.buckets(body["interval"], low, high)
    matching = [e for e in events if named(e, body["event"])]
    active_in: dict[str, int] = {}
    for bucket in buckets:
        for profile in {
            e.profile for e in within(matching, max(low, bucket.start), min(high, bucket.end))
        }:
            active_in[profile] = active_in.get(profile, 0) + 1
    customers = [0] * len(buckets)
    for count in active_in.values():
        customers[count - 1] += 1
    return {
        "kind": "stickiness",
        "timezone": calendar.zone.key,
        "exact": is_exact_range(low, high, calendar),
        "intervals": len(buckets),
        "customers": customers,
    }


ORACLES: dict[str, Callable[[list[Event], dict[str, Any], Calendar, datetime], Any]] = {
    "trends": trends,
    "funnel": funnel,
    "retention": retention,
    "lifecycle": lifecycle,
    "stickiness": stickiness,
}


def answer(events: list[Event], body: dict[str, Any], zone: str, now: datetime) -> Any:
    """The expected answer of any query."""
    return ORACLES[body["kind"]](events, body, Calendar(ZoneInfo(zone)), now)

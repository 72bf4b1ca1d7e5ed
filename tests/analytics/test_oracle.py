"""Every analytics query kind answers what the oracle (``oracle.py``) computes from the raw events.

Hypothesis makes the events: a few customers over three weeks in an account's time zone (UTC,
and zones with DST changes of an hour or half an hour, or a half-hour offset), many of them
at a local midnight or a DST change give or take a microsecond, some customers linked by an
email mid-way (channel merging joins their profiles and every earlier event). They are written
by the real ingest work, with chosen ``received_at`` times, in batches as the writer runs them
(so the analytics kept at ingest are the real ones); then queries of every kind and math are
answered by ``kudos.analytics.query.run`` and compared with the oracle, figure by figure. One
store per test (SQLite, and PostgreSQL when configured), one fresh account per example; no
sleeping, no wall clock: every range and ``now`` is explicit.

``KUDOS_ANALYTICS_EXAMPLES`` sets the examples per test (25); ``KUDOS_ANALYTICS_SHRINK=1``
shrinks a failure to a minimal one (slow: every try writes an account).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from kudos.analytics import query, rebuild
from kudos.domain.identity import normalize_email
from kudos.domain.model import Account, Credentials
from kudos.domain.payload import EventBatch
from kudos.services import accounts
from kudos.services.ingest import IngestContext, IngestEvents, IngestHooks
from kudos.services.security import KeyPair
from kudos.storage import profiles as profile_rows
from kudos.storage.db import Tx
from tests.analytics import oracle
from tests.analytics.conftest import Store
from tests.conftest import IN_CI

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
# The first day of each example's data; the three weeks from each hold DST changes (2026: New
# York Mar 8 and Nov 1, Paris Mar 29 and Oct 25, Lord Howe Apr 5 and Oct 4) or a year's end
# (2026 has an ISO week 53).
BASES = (date(2026, 3, 2), date(2026, 3, 20), date(2026, 9, 28), date(2026, 10, 19))
YEAR_END = date(2026, 12, 20)
DATA_DAYS = 21
NAMES = ("view", "cart", "buy", "signup")
EMAILS = ("ann@x.io", "Ann@X.io ", "bob@x.io")  # the first two are one identifier
MATHS = (
    "count",
    "uniqueCustomers",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "p90",
    "p95",
    "p99",
    "weeklyActive",
    "monthlyActive",
)
EXAMPLES = int(os.environ.get("KUDOS_ANALYTICS_EXAMPLES", "25"))
# Shrinking a failure writes thousands of accounts (minutes): asked for when wanted.
PHASES = (
    tuple(Phase)
    if os.environ.get("KUDOS_ANALYTICS_SHRINK")
    else (Phase.explicit, Phase.reuse, Phase.generate)
)


def examples(count: int = EXAMPLES) -> Callable[[Any], Any]:
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=IN_CI,
        phases=PHASES,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- the events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    at: datetime
    customer_id: str
    email: str | None
    events: tuple[tuple[str, dict[str, Any]], ...]

    def __repr__(self) -> str:
        email = f", email={self.email!r}" if self.email else ""
        return f"Request({stamp(self.at)!r}, {self.customer_id!r}{email}, {self.events!r})"


@dataclass(frozen=True)
class Scenario:
    zone: str
    base: date
    requests: tuple[Request, ...]  # in time order: the order they are written
    batches: tuple[int, ...]  # where the requests split into the writer's batches

    @property
    def calendar(self) -> oracle.Calendar:
        return oracle.Calendar(ZoneInfo(self.zone))

    def profiles(self) -> dict[str, str]:
        """Each customerId's profile as channel merging (by email) leaves it: customerIds that
        sent the same normalised email share one."""
        found = {r.customer_id: f"solo:{r.customer_id}" for r in self.requests}
        for r in self.requests:
            key = normalize_email(r.email)
            if key is not None:
                found[r.customer_id] = f"email:{key}"
        return found

    def __repr__(self) -> str:
        lines = ",\n    ".join(map(repr, self.requests))
        return (
            f"Scenario(zone={self.zone!r}, base={self.base!r}, batches={self.batches!r},"
            f" requests=[\n    {lines}])"
        )


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=64)
def dst_changes(zone: str, first: date, days: int) -> tuple[datetime, ...]:
    """The instants the zone's offset changes in ``days`` from ``first`` (to the minute)."""
    calendar = oracle.Calendar(ZoneInfo(zone))
    start = calendar.midnight(first)
    found = []
    for minutes in range(0, days * 24 * 60, 30):
        before = start + timedelta(minutes=minutes)
        after = before + timedelta(minutes=30)
        if calendar.local(before).utcoffset() != calendar.local(after).utcoffset():
            low = before
            while calendar.local(low).utcoffset() == calendar.local(before).utcoffset():
                low += timedelta(minutes=1)
            found.append(low)
    return tuple(found)


@functools.lru_cache(maxsize=64)
def midnights(zone: str, first: date, days: int) -> tuple[datetime, ...]:
    """The local midnights of ``days`` days from ``first``, and the one after."""
    calendar = oracle.Calendar(ZoneInfo(zone))
    return tuple(calendar.midnight(first + timedelta(days=d)) for d in range(days + 1))


@st.composite
def instants(draw: st.DrawFn, zone: str, base: date) -> datetime:
    """Anywhere in the data's three weeks, or at a local midnight or DST change ± a little."""
    anchors = midnights(zone, base, DATA_DAYS)
    low, high = anchors[0], anchors[-1]
    changes = dst_changes(zone, base, DATA_DAYS)
    kind = draw(st.sampled_from(["any", "any", "midnight", "change"]))
    if kind == "any" or (kind == "change" and not changes):
        span = int((high - low) / timedelta(microseconds=1))
        return low + timedelta(microseconds=draw(st.integers(0, span - 1)))
    anchor = draw(st.sampled_from(anchors if kind == "midnight" else changes))
    micros = draw(
        st.one_of(st.sampled_from([0, -1, 1]), st.integers(-7_200_000_000, 7_200_000_000))
    )
    return anchor + timedelta(microseconds=micros)


AMOUNTS = st.one_of(
    st.integers(-20, 300),
    st.integers(-80, 1200).map(lambda quarters: quarters / 4),  # exact in binary: sums are too
    st.booleans(),
    st.sampled_from(["12", "3.5"]),  # numeric strings: no number for the maths
    st.none(),
)
PLANS = st.sampled_from(["free", "pro", "Pro", "team", 1, 2.5, True, False, None])
TAGS = st.sampled_from(["red", "Red shoe", "blue"])
METADATA = st.fixed_dictionaries({}, optional={"amount": AMOUNTS, "plan": PLANS, "tag": TAGS})
# Gaps between a customer's requests in one visit: often none (same time: order by id), often
# seconds or minutes (minute windows of funnels), sometimes hours or days.
GAPS = st.one_of(
    st.just(timedelta(0)),
    st.integers(1, 900).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 4 * 86400).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def scenarios(draw: st.DrawFn, *, zones: tuple[str, ...] = ZONES) -> Scenario:
    """Customers' visits (a few requests close together), and habits (a visit every day, two
    days or week, give or take a few hours: what retention, lifecycle and stickiness see)."""
    zone = draw(st.sampled_from(zones))
    base = draw(st.sampled_from((*BASES, YEAR_END)))
    customers = [
        (f"c{i}", draw(st.one_of(st.none(), st.sampled_from(EMAILS))))
        for i in range(draw(st.integers(2, 5)))
    ]
    visits: list[tuple[tuple[str, str | None], datetime, int]] = []  # customer, start, requests
    for _ in range(draw(st.integers(1, 8))):
        visits.append((draw(st.sampled_from(customers)), draw(instants(zone, base)), 4))
    for customer in customers:
        if not draw(st.booleans()):
            continue
        at = draw(instants(zone, base))
        every = timedelta(days=draw(st.sampled_from([1, 1, 2, 7])))
        for _ in range(draw(st.integers(2, 6))):
            visits.append((customer, at, 2))
            at += every + timedelta(minutes=draw(st.integers(-300, 300)))
    requests: list[Request] = []
    for (customer_id, email), at, most in visits:
        for _ in range(draw(st.integers(1, most))):
            at += draw(GAPS)
            names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
            events = tuple((name, draw(METADATA)) for name in names)
            sent = email if email is not None and draw(st.booleans()) else None
            requests.append(Request(at, customer_id, sent, events))
    requests.sort(key=lambda r: r.at)
    cuts = draw(st.lists(st.integers(1, len(requests)), max_size=3, unique=True))
    return Scenario(zone, base, tuple(requests), tuple(sorted(cuts)))


@dataclass
class Written:
    account: Account
    events: list[oracle.Event]


def write(store: Store, scenario: Scenario) -> Written:
    """A fresh account in the scenario's zone, merging by email, with the scenario's events
    written by the ingest work as the writer runs it, batch by batch."""
    name = f"shop-{uuid.uuid4().hex[:12]}"

    def create(tx: Tx) -> tuple[KeyPair, Account]:
        keys = accounts.create(tx, store.keyring, name)
        zone = scenario.zone
        configured = accounts.configure(
            tx, name, timezone=zone, channel_merging="email", rate_limit="off"
        )
        return keys, configured

    keys, account = store.run(create)
    context = IngestContext(keyring=store.keyring, clock=lambda: 0.0)
    works = [
        IngestEvents(
            context=context,
            batch=EventBatch(r.customer_id, r.events, email=r.email),
            credentials=Credentials(api_key=keys.api_key, secret_key=None),
            received_at=stamp(r.at),
        )
        for r in scenario.requests
    ]
    bounds = [0, *scenario.batches, len(works)]
    for start, end in itertools.pairwise(bounds):
        if start < end:
            store.run(lambda tx, batch=works[start:end]: apply_batch(tx, batch))
    profiles = scenario.profiles()
    events = [
        oracle.Event(event_id, r.at, r.customer_id, profiles[r.customer_id], name, metadata)
        for r, work in zip(scenario.requests, works, strict=True)
        for event_id, (name, metadata) in zip(work.event_ids, r.events, strict=True)
    ]
    stored = dict(store.run(lambda tx: profile_rows.ids_for_customers(tx, account.id, [*profiles])))
    assert same_partition(stored, profiles), "the generator's merges are not the store's"
    return Written(account, events)


def apply_batch(tx: Tx, works: list[IngestEvents]) -> None:
    """One batch as ``Writer._apply_all`` runs it (no request of these fails)."""
    hooks = IngestHooks()
    hooks.begin()
    for work in works:
        work.prepare(tx)
    if tx.db.concurrent_writers:
        tx.db.lock(tx, [key for work in works for key in work.lock_keys()])
    hooks.prefetch(tx, list(works))
    for work in works:
        work.apply(tx)
    tx.flush_staged()
    for work in works:
        hooks.item_applied(work)
    hooks.flush(tx)


def same_partition(left: dict[str, Any], right: dict[str, Any]) -> bool:
    def groups(mapping: dict[str, Any]) -> set[frozenset[str]]:
        found: dict[Any, set[str]] = {}
        for key, group in mapping.items():
            found.setdefault(group, set()).add(key)
        return {frozenset(g) for g in found.values()}

    return left.keys() == right.keys() and groups(left) == groups(right)


# --- the queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    date_range: dict[str, str] | None  # None: the default (the last 30 days)
    now: datetime
    length: timedelta  # about: for choosing an interval


@st.composite
def spans(
    draw: st.DrawFn,
    scenario: Scenario,
    *,
    min_days: int = 1,
    max_days: int = 21,
    exact: bool = False,
    align: str | None = None,
    early: bool = False,
) -> Span:
    """A ``dateRange`` near the data: local dates (exact), date-times with or without an
    offset, or the last N hours, days or weeks before a ``now``; ``align``: whole weeks or
    months of local dates; ``early``: often starting near the data's first day."""
    calendar = scenario.calendar
    offsets = st.integers(-3, DATA_DAYS - 1)
    if early:  # where customers are first seen
        offsets = st.one_of(st.integers(-3, 2), offsets)
    first = scenario.base + timedelta(days=draw(offsets))
    days = st.integers(min_days, max_days)
    last = first + timedelta(days=draw(st.one_of(st.integers(min_days, min_days + 2), days)))
    if align == "week":
        first -= timedelta(days=first.weekday())
        last += timedelta(days=(7 - last.weekday()) % 7)
    elif align == "month":
        first = first.replace(day=1)
        if last.day != 1:
            last = oracle.add_months(last.replace(day=1), 1)
    now = calendar.midnight(scenario.base) + timedelta(days=DATA_DAYS + 10)
    length = calendar.midnight(last) - calendar.midnight(first)
    form = "date" if exact or align else draw(st.sampled_from(["date", "date", "at", "last"]))
    if form == "date":
        return Span({"from": first.isoformat(), "to": last.isoformat()}, now, length)
    if form == "at":
        ends = sorted(
            [draw(moments(scenario, first)), draw(moments(scenario, last))],
            key=lambda text: oracle.parse_point(text, calendar),
        )
        elapsed = oracle.parse_point(ends[1], calendar) - oracle.parse_point(ends[0], calendar)
        if not elapsed:
            return Span({"from": first.isoformat(), "to": last.isoformat()}, now, length)
        return Span({"from": ends[0], "to": ends[1]}, now, elapsed)
    now = draw(instants(scenario.zone, scenario.base))
    near_change = any(
        abs(now - c) < timedelta(hours=3)
        for c in dst_changes(scenario.zone, scenario.base, DATA_DAYS + 2)
    )
    units = ["d", "w"] if near_change else ["h", "d", "w"]
    if max_days >= 31 and (calendar.day_of(now) + timedelta(days=1)).day <= 28:
        units.append("m")  # (past the 28th, months need a reading: ``oracle.add_months``)
    unit = draw(st.sampled_from(units))
    most = {"h": 60, "d": max_days, "w": max(1, max_days // 7), "m": 1}[unit]
    spelled = f"{draw(st.integers(1, most))}{unit}"
    low, high = oracle.parse_range({"last": spelled}, calendar, now)
    if spelled == "30d" or (max_days >= 30 and draw(st.integers(0, 5)) == 0):
        low, high = oracle.parse_range(None, calendar, now)
        return Span(None, now, high - low)
    return Span({"last": spelled}, now, high - low)


@st.composite
def moments(draw: st.DrawFn, scenario: Scenario, day: date) -> str:
    """A time on ``day``: local (no offset), or with an offset (not necessarily the zone's)."""
    hour = draw(st.sampled_from([0, *range(4, 23)]))  # never in a DST gap or overlap
    minute = draw(st.sampled_from([0, 0, 15, 30, 59]))
    local = datetime(day.year, day.month, day.day, hour, minute)
    if draw(st.booleans()):
        return local.isoformat()
    instant = local.replace(tzinfo=ZoneInfo(scenario.zone))
    offset = draw(st.sampled_from(["zone", "Z", "+05:00", "-03:30"]))
    if offset == "zone":
        return instant.isoformat()
    if offset == "Z":
        return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hours, minutes = int(offset[1:3]), int(offset[4:])
    sign = 1 if offset[0] == "+" else -1
    fixed = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return instant.astimezone(fixed).isoformat()


def interval_for(draw: st.DrawFn, length: timedelta, *, hours: bool = True) -> str:
    """An interval with a sensible number of buckets; ``auto`` only where elapsed time and
    local days choose the same (the contract does not say which it measures). No hours for
    weekly or monthly active customers (refused: test_api)."""
    choices = ["day", "week"]
    if hours and length <= timedelta(days=3, hours=2):
        choices.append("hour")
    if length >= timedelta(days=20):
        choices.append("month")
    zero = datetime(2000, 1, 1, tzinfo=UTC)
    near = {oracle.auto_interval(zero, zero + length + timedelta(hours=h)) for h in (-2, 0, 2)}
    if len(near) == 1:
        choices.append("auto")
    return draw(st.sampled_from(choices))


FILTERS = st.one_of(
    st.fixed_dictionaries(
        {
            "key": st.just("amount"),
            "op": st.sampled_from(["gte", "gt", "lte", "lt"]),
            "value": st.integers(-10, 300),
        }
    ),
    st.tuples(st.integers(-20, 150), st.integers(0, 200)).map(
        lambda pair: {"key": "amount", "op": "between", "value": sorted(pair)}
    ),
    st.fixed_dictionaries(
        {
            "key": st.just("plan"),
            "op": st.sampled_from(["equals", "notEquals"]),
            "value": st.sampled_from(["pro", "free,team", 1, "true"]),
        }
    ),
    st.fixed_dictionaries(
        {"key": st.just("tag"), "op": st.just("contains"), "value": st.sampled_from(["red", "e"])}
    ),
    st.fixed_dictionaries(
        {"key": st.sampled_from(["amount", "plan", "tag"]), "op": st.just("exists")}
    ),
)


@st.composite
def series(draw: st.DrawFn, *, maths: tuple[str, ...] = MATHS) -> dict[str, Any]:
    one = {"event": draw(st.sampled_from([*NAMES, "$any"])), "math": draw(st.sampled_from(maths))}
    if one["math"] in oracle.NUMERIC_MATHS:
        one["property"] = draw(st.sampled_from(["amount", "amount", "plan"]))
    return one


def series_key(one: dict[str, Any]) -> tuple[Any, ...]:
    return (one["event"], one["math"], one.get("property"))


# --- comparing --------------------------------------------------------------------------------


def same(actual: Any, expected: Any, path: str = "answer") -> None:
    """``actual`` holds every field of ``expected`` with the same value (numbers within
    1e-9, relative or absolute); a mismatch names its path."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        for key, value in expected.items():
            assert key in actual, f"{path}: no {key!r} (has {sorted(actual)})"
            same(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{path}: {actual!r}, expected {expected!r}"
        for index, (got, wanted) in enumerate(zip(actual, expected, strict=True)):
            same(got, wanted, f"{path}[{index}]")
    elif expected is None or isinstance(expected, bool | str):
        assert actual == expected and type(actual) is type(expected), (
            f"{path}: {actual!r}, expected {expected!r}"
        )
    else:
        assert oracle.is_number(actual), f"{path}: {actual!r}, expected {expected!r}"
        # Seconds between two microsecond times: Unix times as floats hold them to ~0.2 µs.
        tolerance = 1e-6 if path.endswith("SecondsFromPrevious") else 1e-9
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=tolerance), (
            f"{path}: {actual!r}, expected {expected!r}"
        )


def ask(store: Store, written: Written, body: dict[str, Any], now: datetime) -> Any:
    note(f"query: {body!r} at now={stamp(now)}")
    return store.run(lambda tx: query.run(tx, written.account, body, now=now.timestamp()))


def check(store: Store, written: Written, body: dict[str, Any], now: datetime) -> None:
    """The implementation's answer of ``body`` is the oracle's.

    Where the range's ends are not local midnights, the contract lets day-based figures use
    whole days and say ``"exact": false``; such figures are not compared, but an answer that
    says ``"exact": true`` must match the exact oracle in every figure."""
    expected = oracle.answer(written.events, body, written.account.timezone, now)
    actual = ask(store, written, body, now)
    loose = not expected["exact"] and not (isinstance(actual, dict) and actual.get("exact"))
    if not expected["exact"] and not loose:
        expected["exact"] = True
    if body["kind"] == "trends":
        check_trends(actual, expected, loose=loose)
        return
    if loose and body["kind"] in ("retention", "lifecycle", "stickiness"):
        expected = {k: expected[k] for k in ("kind", "timezone", "exact")}
    note(f"expected: {expected!r}")
    same(actual, expected)


def check_trends(actual: Any, expected: dict[str, Any], *, loose: bool) -> None:
    """Series are matched by (event, math, property, breakdownValue), then their order."""
    wanted = expected.pop("series")
    note(f"expected series: {wanted!r}")
    same(actual, expected)
    assert actual.get("source") in ("rollup", "raw", "mixed"), f"answer.source: {actual!r}"
    got = actual["series"]
    assert isinstance(got, list) and len(got) == len(wanted), (
        f"answer.series: {[key_of(s) for s in got]}, expected {[key_of(s) for s in wanted]}"
    )
    found = {key_of(s): s for s in got}
    for one in wanted:
        key = key_of(one)
        assert key in found, f"answer.series: no {key} (has {list(found)})"
        if loose and expected["interval"] != "hour" and one["math"] in oracle.DAY_BASED_MATHS:
            one = {k: v for k, v in one.items() if k not in ("data", "total", "previous")}
        same(found[key], one, f"answer.series{list(key)}")
        if one["breakdownValue"] is None:
            label = f"{one['event']} · {one['math']}"
            if one["property"] is not None:
                label += f"({one['property']})"
            assert found[key].get("label") == label, f"answer.series{list(key)}.label"
    assert [key_of(s) for s in got] == [key_of(s) for s in wanted], "answer.series: order"


def key_of(one: dict[str, Any]) -> tuple[Any, ...]:
    return (one.get("event"), one.get("math"), one.get("property"), one.get("breakdownValue"))


# --- the queries of each kind -------------------------------------------------------------------

Query = tuple[dict[str, Any], datetime]  # a body and the ``now`` it is asked at


def with_range(body: dict[str, Any], span: Span) -> Query:
    if span.date_range is not None:
        body["dateRange"] = span.date_range
    return body, span.now


@st.composite
def trends_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    """Any maths (up to three series), interval and kind of range; filters or not."""
    span = draw(spans(scenario, max_days=31))
    chosen = draw(st.lists(series(), min_size=1, max_size=3, unique_by=series_key))
    windows = any(s["math"] in oracle.ACTIVE_DAYS for s in chosen)
    body: dict[str, Any] = {
        "kind": "trends",
        "series": chosen,
        "interval": interval_for(draw, span.length, hours=not windows),
    }
    filters = draw(st.lists(FILTERS, max_size=2))
    if filters:
        body["filters"] = filters
    return with_range(body, span)


@st.composite
def active_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    """weeklyActive, monthlyActive and uniqueCustomers over local days, weeks and months."""
    maths = ("weeklyActive", "monthlyActive", "uniqueCustomers")
    body = {
        "kind": "trends",
        "series": draw(st.lists(series(maths=maths), min_size=1, max_size=3, unique_by=series_key)),
        "interval": draw(st.sampled_from(["day", "week", "month"])),
    }
    return with_range(body, draw(spans(scenario, exact=True)))


@st.composite
def breakdown_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    """Reading: the first series ranks by count, uniqueCustomers or sum (the contract does not
    say where a null total, such as an avg of no values, ranks)."""
    span = draw(spans(scenario, max_days=14))
    first = draw(series(maths=("count", "uniqueCustomers", "sum")))
    more = draw(st.lists(series(), max_size=2))
    body: dict[str, Any] = {
        "kind": "trends",
        "series": list({series_key(s): s for s in [first, *more]}.values()),
        "interval": interval_for(
            draw, span.length, hours=not any(s["math"] in oracle.ACTIVE_DAYS for s in more)
        ),
        "breakdown": {"property": draw(st.sampled_from(["plan", "tag", "amount"]))},
    }
    limit = draw(st.one_of(st.none(), st.integers(1, 4)))
    if limit is not None:
        body["breakdown"]["limit"] = limit
    filters = draw(st.lists(FILTERS, max_size=1))
    if filters:
        body["filters"] = filters
    return with_range(body, span)


@st.composite
def compare_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    body: dict[str, Any] = {
        "kind": "trends",
        "series": draw(st.lists(series(), min_size=1, max_size=2, unique_by=series_key)),
        "interval": draw(st.sampled_from(["day", "week"])),
        "compare": "previousPeriod",
    }
    if draw(st.booleans()):
        body["breakdown"] = {"property": "plan", "limit": draw(st.integers(1, 3))}
        body["series"][0] = {"event": body["series"][0]["event"], "math": "count"}
    return with_range(body, draw(spans(scenario, max_days=10, exact=True)))


@st.composite
def funnel_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    steps = []
    for _ in range(draw(st.integers(2, 4))):
        step: dict[str, Any] = {"event": draw(st.sampled_from(NAMES))}
        filters = draw(st.lists(FILTERS, max_size=1))
        if filters:
            step["filters"] = filters
        steps.append(step)
    body = {
        "kind": "funnel",
        "steps": steps,
        "window": {
            "value": draw(st.integers(1, 3)),
            "unit": draw(st.sampled_from(["minute", "hour", "day", "week"])),
        },
    }
    return with_range(body, draw(spans(scenario)))


@st.composite
def retention_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    period = draw(st.sampled_from(["day", "week", "month"]))
    body = {
        "kind": "retention",
        "cohortEvent": draw(st.sampled_from(["$firstSeen", *NAMES])),
        "returnEvent": draw(st.sampled_from(["$any", *NAMES])),
        "period": period,
        "periods": draw(st.integers(1, 8)),
    }
    least, most = {"day": (3, 14), "week": (14, 35), "month": (31, 45)}[period]
    return with_range(body, draw(spans(scenario, min_days=least, max_days=most, early=True)))


@st.composite
def lifecycle_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    """Ranges of whole buckets (see ``oracle.lifecycle``)."""
    interval = draw(st.sampled_from(["day", "week", "month"]))
    body = {
        "kind": "lifecycle",
        "event": draw(st.sampled_from(["$any", *NAMES])),
        "interval": interval,
    }
    days = {"day": 14, "week": 28, "month": 40}[interval]
    align = None if interval == "day" else interval
    return with_range(body, draw(spans(scenario, max_days=days, align=align)))


@st.composite
def stickiness_queries(draw: st.DrawFn, scenario: Scenario) -> Query:
    interval = draw(st.sampled_from(["day", "week"]))
    body = {
        "kind": "stickiness",
        "event": draw(st.sampled_from(["$any", *NAMES])),
        "interval": interval,
    }
    return with_range(body, draw(spans(scenario, max_days=21 if interval == "day" else 35)))


QUERIES = (
    trends_queries,
    active_queries,
    breakdown_queries,
    compare_queries,
    funnel_queries,
    retention_queries,
    lifecycle_queries,
    stickiness_queries,
)


# --- the tests ---------------------------------------------------------------------------------


def agrees(
    store: Store, queries: Callable[[Scenario], st.SearchStrategy[Query]], asked: int
) -> None:
    """For random events, ``asked`` random queries of ``queries`` answer as the oracle does."""

    @examples()
    @given(scenario=scenarios(), data=st.data())
    def agreement(scenario: Scenario, data: st.DataObject) -> None:
        note(repr(scenario))
        written = write(store, scenario)
        for _ in range(asked):
            check(store, written, *data.draw(queries(scenario)))

    agreement()


def test_trends_match_the_oracle(store: Store) -> None:
    agrees(store, trends_queries, asked=3)


def test_active_customers_match_the_oracle(store: Store) -> None:
    """Windows reaching back before ``from``, clipped at ``to``, across DST days."""
    agrees(store, active_queries, asked=3)


def test_trends_breakdown_matches_the_oracle(store: Store) -> None:
    """Top values by the first series' total (ties by text), the rest in ``$other``."""
    agrees(store, breakdown_queries, asked=3)


def test_trends_compare_with_the_previous_period(store: Store) -> None:
    agrees(store, compare_queries, asked=1)


def test_funnel_matches_the_oracle(store: Store) -> None:
    """Greedy paths from every step-1 event in range, windows of minutes to weeks, ties in time
    ordered by id, later steps past ``to``, medians of the counted paths."""
    agrees(store, funnel_queries, asked=3)


def test_retention_matches_the_oracle(store: Store) -> None:
    agrees(store, retention_queries, asked=3)


def test_lifecycle_matches_the_oracle(store: Store) -> None:
    agrees(store, lifecycle_queries, asked=3)


def test_stickiness_matches_the_oracle(store: Store) -> None:
    agrees(store, stickiness_queries, asked=3)


def test_a_rebuild_in_a_new_time_zone_matches_the_oracle(store: Store) -> None:
    """Events kept in one zone, the account moved to another and its analytics rebuilt: every
    kind of query answers for the new zone's days."""

    @examples(EXAMPLES // 2)
    @given(scenario=scenarios(), zone=st.sampled_from(ZONES), data=st.data())
    def moved(scenario: Scenario, zone: str, data: st.DataObject) -> None:
        note(repr(scenario))
        written = write(store, scenario)
        name = written.account.name
        store.run(lambda tx: accounts.configure(tx, name, timezone=zone))
        rebuild.rebuild(store.db, written.account.id)
        written.account = store.run(lambda tx: accounts.named(tx, name))
        relocated = Scenario(zone, scenario.base, scenario.requests, scenario.batches)
        for queries in data.draw(st.permutations(QUERIES))[:3]:
            check(store, written, *data.draw(queries(relocated)))

    moved()


# --- the oracle itself, on examples worked by hand ----------------------------------------------


def event(event_id: int, at: str, profile: str, name: str, **metadata: Any) -> oracle.Event:
    moment = datetime.fromisoformat(at).astimezone(UTC)
    return oracle.Event(event_id, moment, profile, profile, name, metadata)


def test_the_oracle_keeps_local_days_across_dst() -> None:
    paris = oracle.Calendar(ZoneInfo("Europe/Paris"))
    low, high = oracle.parse_range({"from": "2026-03-28", "to": "2026-03-31"}, paris, _NOW)
    days = paris.buckets("day", low, high)
    assert [d.label for d in days] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert [(d.end - d.start) / timedelta(hours=1) for d in days] == [24, 23, 24]
    autumn = paris.buckets(
        "day", *oracle.parse_range({"from": "2026-10-25", "to": "2026-10-26"}, paris, _NOW)
    )
    assert (autumn[0].end - autumn[0].start) / timedelta(hours=1) == 25
    lord_howe = oracle.Calendar(ZoneInfo("Australia/Lord_Howe"))
    day = lord_howe.bucket("day", lord_howe.midnight(date(2026, 4, 5)))
    assert (day.end - day.start) / timedelta(hours=1) == 24.5
    wednesday = paris.midnight(date(2026, 3, 4))
    assert paris.label("week", paris.align("week", wednesday)) == "2026-03-02"
    assert paris.bucket("month", paris.midnight(date(2026, 3, 1))).end == paris.midnight(
        date(2026, 4, 1)
    )


def test_the_oracle_labels_utc_hours_in_local_time() -> None:
    kolkata = oracle.Calendar(ZoneInfo("Asia/Kolkata"))
    span = {"from": "2026-11-01", "to": "2026-11-01T02:00:00"}
    hours = kolkata.buckets("hour", *oracle.parse_range(span, kolkata, _NOW))
    assert [h.label for h in hours] == [
        "2026-10-31T23:30:00+05:30",
        "2026-11-01T00:30:00+05:30",
        "2026-11-01T01:30:00+05:30",
    ]


def test_the_oracle_reads_last_days_up_to_the_next_local_midnight() -> None:
    new_york = oracle.Calendar(ZoneInfo("America/New_York"))
    now = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    low, high = oracle.parse_range({"last": "7d"}, new_york, now)
    assert (low, high) == (
        datetime(2026, 3, 4, 5, 0, tzinfo=UTC),  # EST
        datetime(2026, 3, 11, 4, 0, tzinfo=UTC),  # EDT
    )
    low, high = oracle.parse_range({"last": "3h"}, new_york, now)
    assert (low, high) == (
        datetime(2026, 3, 10, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
    )
    assert oracle.range_fields(low, high, new_york) == {
        "from": "2026-03-10T10:00:00-04:00",
        "to": "2026-03-10T13:00:00-04:00",
    }


def test_the_oracle_interpolates_percentiles_and_names_breakdown_values() -> None:
    assert oracle.aggregate("p90", [4, 1, 3, 2]) == 3.7
    assert oracle.aggregate("median", [4, 1, 3, 2]) == 2.5
    assert oracle.aggregate("p99", [7]) == 7
    assert oracle.aggregate("sum", []) == 0
    assert oracle.aggregate("avg", []) is None
    values: list[dict[str, Any]] = [
        {"plan": "pro"},
        {"plan": 1},
        {"plan": 2.5},
        {"plan": True},
        {"plan": None},
        {},
    ]
    named = [
        oracle.breakdown_value(oracle.Event(1, _NOW, "c", "c", "e", m), "plan") for m in values
    ]
    assert named == ["pro", "1", "2.5", "true", "null", "$none"]
    numeric: list[dict[str, Any]] = [
        {"amount": 2},
        {"amount": True},
        {"amount": "3"},
        {"amount": 0.5},
        {},
    ]
    events = [oracle.Event(1, _NOW, "c", "c", "e", m) for m in numeric]
    assert oracle.numbers(events, "amount") == [2, 0.5]


def test_the_oracle_follows_greedy_funnel_paths() -> None:
    events = [
        event(1, "2026-03-02T00:00:00+00:00", "a", "view"),
        event(2, "2026-03-02T00:00:00+00:00", "a", "cart"),  # same time, later id: after
        event(3, "2026-03-02T00:01:40+00:00", "a", "view"),
        event(4, "2026-03-02T00:03:20+00:00", "a", "buy"),
        event(5, "2026-03-02T00:00:50+00:00", "b", "view"),
        event(6, "2026-03-02T00:01:00+00:00", "b", "view"),
        event(7, "2026-03-02T00:01:10+00:00", "b", "cart"),
        event(8, "2026-03-02T00:06:40+00:00", "b", "buy"),
    ]
    body = {
        "kind": "funnel",
        "steps": [{"event": "view"}, {"event": "cart"}, {"event": "buy"}],
        "window": {"value": 5, "unit": "minute"},
        "dateRange": {"from": "2026-03-02", "to": "2026-03-03"},
    }
    steps = oracle.answer(events, body, "UTC", _NOW)["steps"]
    assert [s["count"] for s in steps] == [2, 2, 1]
    assert [s["medianSecondsFromPrevious"] for s in steps] == [None, 10, 200]
    assert [s["conversionFromFirst"] for s in steps] == [1, 1, 0.5]
    assert [s["conversionFromPrevious"] for s in steps] == [1, 1, 0.5]
    body["window"] = {"value": 1, "unit": "minute"}
    steps = oracle.answer(events, body, "UTC", _NOW)["steps"]
    assert [s["count"] for s in steps] == [2, 2, 0]
    assert steps[2]["medianSecondsFromPrevious"] is None


def test_the_oracle_counts_retention_lifecycle_stickiness_and_active_customers() -> None:
    events = [
        event(1, "2026-03-01T12:00:00+00:00", "p3", "view"),
        event(2, "2026-03-02T12:00:00+00:00", "p1", "view"),
        event(3, "2026-03-03T12:00:00+00:00", "p1", "view"),
        event(4, "2026-03-03T13:00:00+00:00", "p2", "view"),
        event(5, "2026-03-04T12:00:00+00:00", "p3", "view"),
        event(6, "2026-03-05T12:00:00+00:00", "p2", "view"),
    ]
    span = {"from": "2026-03-02", "to": "2026-03-05"}
    retention = {
        "kind": "retention",
        "cohortEvent": "$firstSeen",
        "returnEvent": "$any",
        "period": "day",
        "periods": 3,
        "dateRange": span,
    }
    assert oracle.answer(events, retention, "UTC", _NOW)["cohorts"] == [
        {"start": "2026-03-02", "size": 1, "retained": [1, 1, 0]},
        {"start": "2026-03-03", "size": 1, "retained": [1, 0]},
        {"start": "2026-03-04", "size": 0, "retained": [0]},
    ]
    lifecycle = {"kind": "lifecycle", "event": "$any", "interval": "day", "dateRange": span}
    found = oracle.answer(events, lifecycle, "UTC", _NOW)
    assert [found[k] for k in ("new", "returning", "resurrecting", "dormant")] == [
        [1, 1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [-1, 0, -2],
    ]
    stickiness = {"kind": "stickiness", "event": "$any", "interval": "day", "dateRange": span}
    found = oracle.answer(events, stickiness, "UTC", _NOW)
    assert (found["intervals"], found["customers"]) == (3, [2, 1, 0])
    trends = {
        "kind": "trends",
        "series": [{"event": "$any", "math": "weeklyActive"}, {"event": "view", "math": "count"}],
        "dateRange": span,
        "interval": "day",
    }
    found = oracle.answer(events, trends, "UTC", _NOW)
    assert [(s["data"], s["total"]) for s in found["series"]] == [([2, 3, 3], 3), ([1, 2, 1], 4)]


_NOW = datetime(2026, 6, 1, tzinfo=UTC)

"""The analytics benchmark's shop: customers, their sessions and the events they send.

Deterministic from a ``Shape`` (sizes, seed, the build's end time): the whole plan (who comes
back on which day) is drawn at once, and each day's events from a random generator of that
day's own, so a build interrupted after day k resumes at day k + 1 with the same data.

Customers join over the range (a base in the first week, then more and more each day), come
back in sessions (a Poisson number per day, most often in the days after they joined, on
weekends and in the afternoon and evening, UTC), and some stop for good. A session browses
(login, search, view_product, wishlist_add), may fill a cart (add_to_cart), check out and
place an order, and now and then reviews, shares or refers a friend. A few customers also use
the app under a second customerId, which later merges into their profile (an email).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

DAY = 86_400
US = 1_000_000
CATEGORIES = ("shoes", "shirts", "pants", "bags", "hats", "watches", "toys", "books", "games")
QUERIES = ("red shoes", "summer dress", "gift", "sale", "running", "leather bag", "kids", "tv")
CHANNELS = ("web", "app", "pos")
CHANNEL_WEIGHTS = (0.55, 0.35, 0.10)
CURRENCIES = ("USD", "EUR", "GBP")
CURRENCY_WEIGHTS = (0.7, 0.2, 0.1)
# Share of each UTC hour in a day's sessions: night trough, lunch and evening peaks.
HOUR_WEIGHTS = (
    *(0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.2, 2.0, 3.0, 3.5, 4.0, 4.5),
    *(5.0, 5.0, 4.5, 4.2, 4.5, 5.2, 6.0, 6.5, 6.0, 4.5, 3.0, 1.5),
)
WEEKDAY_FACTORS = (0.95, 0.9, 0.9, 0.95, 1.05, 1.25, 1.2)  # Monday first
BASE_SHARE = 0.35  # of the customers joined in the first week (the shop's existing base)
MEAN_LIFETIME_DAYS = 40.0  # before a customer stops coming back
DECAY_DAYS = 10.0  # how fast the first days' enthusiasm fades
PRODUCTS = 2_000
MAX_WEIGHT = 30.0  # the most active customer: this many times the mean rate
APP_MERGE_SHARE = 0.7  # of the customers with an app customerId that later merge it


@dataclass(frozen=True)
class Shape:
    """What a build holds: its sizes, its seed and the moment it ends (Unix seconds)."""

    events: int
    customers: int
    days: int
    seed: int
    end: float
    app_share: float = 0.02  # customers that also send events from an app customerId

    @property
    def first_midnight(self) -> int:
        """The UTC midnight that starts day 0 (the last day is the one holding ``end``)."""
        return (int(self.end) // DAY - self.days + 1) * DAY

    def midnight(self, day: int) -> int:
        return self.first_midnight + day * DAY

    def day_limit_us(self, day: int) -> int:
        """Microseconds of the day that may hold events (the last day ends at ``end``)."""
        return min(DAY * US, int((self.end - self.midnight(day)) * US))


@dataclass(slots=True)
class Customer:
    index: int
    join: int  # the day of their first session
    stop: int  # the first day without sessions (may be past the range)
    weight: float  # their rate, as a multiple of the mean
    channel: str
    currency: str
    category: str
    app_from: int | None = None  # first day they may use the app customerId
    app_created: int | None = None  # the day their app profile appears
    merged_on: int | None = None  # the day their app profile merges into this one


# A session in the plan: customer index << 2 | kind.
MAIN, APP, APP_MERGED = 0, 1, 2


@dataclass
class Plan:
    """Every customer, and every day's sessions."""

    shape: Shape
    customers: list[Customer]
    sessions: list[list[int]]  # per day
    prices: list[float]
    product_categories: list[str]

    def customer_id(self, index: int, kind: int) -> str:
        return f"c{index:07d}" if kind == MAIN else f"c{index:07d}-app"


@dataclass
class Day:
    """One day of a build: its events in time order and the rows they bring along."""

    day: int
    # (profile id offset kind, customer index, customerId, name, metadata JSON, received_at)
    events: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    # customer index, kind, created_at: customerIds (and their profiles) first seen today
    new_customers: list[tuple[int, int, str]] = field(default_factory=list)
    # customer index, merged_at: app profiles merged into the customer's today
    merges: list[tuple[int, str]] = field(default_factory=list)
    names: Counter[str] = field(default_factory=Counter)
    keys: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def make_plan(shape: Shape) -> Plan:
    """Draw the customers and the day of every session, sized for ``shape.events``."""
    rng = random.Random(f"{shape.seed}:plan")
    customers = sorted(
        (_draw_customer(rng, shape, index) for index in range(shape.customers)),
        key=lambda c: c.join,
    )
    for index, customer in enumerate(customers):  # indexes in join order: profile ids too
        customer.index = index
    factors = [_day_factor(shape, day) for day in range(shape.days)]
    rate = _rate(shape, customers, factors, _mean_session_events(shape.seed))
    sessions: list[list[int]] = [[] for _ in range(shape.days)]
    for customer in customers:
        _plan_sessions(rng, customer, rate * customer.weight, factors, sessions)
    products = random.Random(f"{shape.seed}:products")
    prices = [round(int(math.exp(products.gauss(3.4, 0.7))) + 0.99, 2) for _ in range(PRODUCTS)]
    product_categories = [products.choice(CATEGORIES) for _ in range(PRODUCTS)]
    return Plan(shape, customers, sessions, prices, product_categories)


def _draw_customer(rng: random.Random, shape: Shape, index: int) -> Customer:
    if rng.random() < BASE_SHARE:
        join = rng.randrange(min(7, shape.days))
    else:  # more customers join each day: a density growing linearly over the range
        join = min(shape.days - 1, int(shape.days * math.sqrt(rng.random())))
    sigma = 1.0
    weight = min(MAX_WEIGHT, rng.lognormvariate(-sigma * sigma / 2, sigma))
    customer = Customer(
        index=index,
        join=join,
        stop=join + 1 + int(rng.expovariate(1 / MEAN_LIFETIME_DAYS)),
        weight=weight,
        channel=rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
        currency=rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0],
        category=rng.choice(CATEGORIES),
    )
    if rng.random() < shape.app_share:
        customer.app_from = join + 1 + rng.randrange(30)
    return customer


def _day_factor(shape: Shape, day: int) -> float:
    """How busy a day is (weekday), times the share of it that may hold events."""
    midnight = shape.midnight(day)
    weekday = datetime.fromtimestamp(midnight, UTC).weekday()
    limit = shape.day_limit_us(day) / US / 3600
    whole = int(limit)
    share = sum(HOUR_WEIGHTS[:whole]) + (HOUR_WEIGHTS[whole] * (limit - whole) if whole < 24 else 0)
    return WEEKDAY_FACTORS[weekday] * share / sum(HOUR_WEIGHTS)


def _intensity(join: int, day: int, factors: list[float]) -> float:
    """Expected sessions on a day after joining, for a customer of weight and rate 1."""
    return (0.3 + 0.7 * math.exp(-(day - join) / DECAY_DAYS)) * factors[day]


def _rate(
    shape: Shape, customers: list[Customer], factors: list[float], per_session: float
) -> float:
    """The rate of a customer of weight 1 that makes ``shape.events`` in all."""
    sessions = shape.events / per_session
    joins = sum(factors[c.join] > 0 for c in customers)
    # Sum of intensities after each join day, for a weight of 1, by join and stop day.
    after: dict[tuple[int, int], float] = {}
    total = 0.0
    for customer in customers:
        last = min(customer.stop, shape.days)
        key = (customer.join, last)
        if key not in after:
            days = range(customer.join + 1, last)
            after[key] = sum(_intensity(customer.join, day, factors) for day in days)
        total += customer.weight * after[key]
    if sessions <= joins or total == 0:
        raise ValueError(
            f"{shape.events:,} events are too few for {shape.customers:,} customers: each "
            f"joins with a session of ~{per_session:.1f} events (use fewer customers)"
        )
    return (sessions - joins) / total


def _plan_sessions(
    rng: random.Random,
    customer: Customer,
    rate: float,
    factors: list[float],
    sessions: list[list[int]],
) -> None:
    """The customer's sessions at ``rate`` (their own): one on their join day, then a Poisson
    number each day until they stop (drawn by thinning a process at their highest rate), the
    app ones marked as such."""
    days = [customer.join]
    peak = rate * max(factors)
    moment, last = float(customer.join + 1), min(customer.stop, len(factors))
    while peak > 0:
        moment += rng.expovariate(peak)
        day = int(moment)
        if day >= last:
            break
        if rng.random() * peak < rate * _intensity(customer.join, day, factors):
            days.append(day)
    kinds = [MAIN] * len(days)
    if customer.app_from is not None:
        _plan_app(rng, customer, days, kinds)
    for day, kind in zip(days, kinds, strict=True):
        sessions[day].append(customer.index << 2 | kind)


def _plan_app(rng: random.Random, customer: Customer, days: list[int], kinds: list[int]) -> None:
    """Half the sessions from ``app_from`` on use the app customerId; most of those customers
    merge it into their profile on the first later day they use it again."""
    assert customer.app_from is not None
    for number, day in enumerate(days):
        if day >= customer.app_from and rng.random() < 0.5:
            kinds[number] = APP
            if customer.app_created is None:
                customer.app_created = day
            elif customer.merged_on is None and day != customer.app_created:
                customer.merged_on = day if rng.random() < APP_MERGE_SHARE else -1
            if customer.merged_on is not None and 0 <= customer.merged_on <= day:
                kinds[number] = APP_MERGED
    if customer.merged_on == -1:
        customer.merged_on = None  # decided against: the two profiles stay apart


@functools.cache
def _mean_session_events(seed: int) -> float:
    """Events per session, measured on sample sessions (what sizes the plan)."""
    rng = random.Random(f"{seed}:sample")
    prices = [20.0] * PRODUCTS
    categories = list(itertools.islice(itertools.cycle(CATEGORIES), PRODUCTS))
    customer = Customer(0, 0, 1, 1.0, "web", "USD", "shoes")
    counts = [len(list(_session(rng, customer, prices, categories, "o"))) for _ in range(20_000)]
    return sum(counts) / len(counts)


# --- one day -----------------------------------------------------------------------------------

_HOUR_CUMULATIVE = list(itertools.accumulate(HOUR_WEIGHTS))
_CLOCK = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_encode = msgspec.json.Encoder().encode


def make_day(plan: Plan, day: int) -> Day:
    """The day's events in time order, with the customerIds and merges they bring."""
    shape = plan.shape
    rng = random.Random(f"{shape.seed}:day:{day}")
    limit = shape.day_limit_us(day)
    timed: list[tuple[int, int, int, str, dict[str, Any]]] = []
    for number, session in enumerate(plan.sessions[day]):
        index, kind = session >> 2, session & 3
        customer = plan.customers[index]
        visit = list(
            _session(rng, customer, plan.prices, plan.product_categories, f"o{day}-{number}-")
        )
        start = _session_start(rng)
        if start + visit[0][0] >= limit:  # would start after the day (or the build) ended
            if limit <= visit[0][0]:
                continue
            start = rng.randrange(limit - visit[0][0])
        for offset, name, metadata in visit:
            if start + offset >= limit:
                break
            timed.append((start + offset, index, kind, name, metadata))
    timed.sort(key=lambda row: row[0])
    return _day_rows(plan, day, timed)


def _day_rows(plan: Plan, day: int, timed: list[tuple[int, int, int, str, dict[str, Any]]]) -> Day:
    prefix = datetime.fromtimestamp(plan.shape.midnight(day), UTC).strftime("%Y-%m-%dT")
    out = Day(day)
    seen: set[int] = set()
    customers = plan.customers
    # Counted by shape (name, keys, types), as ingest does: few shapes, each counted in C.
    shapes: Counter[tuple[str, tuple[str, ...], tuple[type, ...]]] = Counter()
    append = out.events.append
    for moment, index, kind, name, metadata in timed:
        second, micro = divmod(moment, US)
        stamp = f"{prefix}{_CLOCK[second]}.{micro:06d}Z"
        who = index << 2 | kind
        if who not in seen:
            seen.add(who)
            _first_today(out, customers[index], kind, day, stamp)
        customer_id = f"c{index:07d}" if kind == MAIN else f"c{index:07d}-app"
        append((who, customer_id, name, _encode(metadata).decode(), stamp))
        shapes[(name, tuple(metadata), tuple(map(type, metadata.values())))] += 1
    for (name, keys, types), count in shapes.items():
        out.names[name] += count
        for key, kind_of in zip(keys, types, strict=True):
            out.keys[(name, key, _TYPES[kind_of])] += count
    return out


_TYPES = {str: "string", int: "number", float: "number", bool: "boolean"}


def _first_today(out: Day, customer: Customer, kind: int, day: int, stamp: str) -> None:
    """A customerId's first event of the day: maybe its first ever, or its merge."""
    if kind == MAIN and customer.join == day:
        out.new_customers.append((customer.index, MAIN, stamp))
    elif kind == APP and customer.app_created == day:
        out.new_customers.append((customer.index, APP, stamp))
    elif kind == APP_MERGED and customer.merged_on == day:
        out.merges.append((customer.index, stamp))


def _session_start(rng: random.Random) -> int:
    """A start in microseconds of the day, following the hours' weights."""
    hour = bisect.bisect(_HOUR_CUMULATIVE, rng.random() * _HOUR_CUMULATIVE[-1])
    return int((hour + rng.random()) * 3600 * US)


def _session(
    rng: random.Random,
    customer: Customer,
    prices: list[float],
    categories: list[str],
    order_prefix: str,
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(microseconds since the session's start, name, metadata) of one visit."""
    clock = 0

    def step() -> int:
        nonlocal clock
        clock += int((3 + rng.expovariate(1 / 40)) * US)
        return clock

    random_ = rng.random
    if random_() < 0.45:
        yield step(), "login", {"method": "password" if random_() < 0.7 else "google"}
    cart: list[tuple[str, float, int]] = []
    for _ in range(1 + int(rng.expovariate(1 / 3))):
        if random_() < 0.2:
            yield step(), "search", {"query": rng.choice(QUERIES), "results": rng.randrange(60)}
        product = int(PRODUCTS * random_() ** 2)
        product_id, price = f"p{product}", prices[product]
        category = customer.category if random_() < 0.6 else categories[product]
        yield (
            step(),
            "view_product",
            {"productId": product_id, "category": category, "price": price},
        )
        if random_() < 0.12:
            quantity = 1 if random_() < 0.8 else 2
            cart.append((product_id, price, quantity))
            yield (
                step(),
                "add_to_cart",
                {"productId": product_id, "price": price, "quantity": quantity},
            )
        elif random_() < 0.03:
            yield step(), "wishlist_add", {"productId": product_id}
    if cart and random_() < 0.55:
        yield from _checkout(rng, customer, cart, order_prefix, step)
    if random_() < 0.03:
        rating = rng.choices((1, 2, 3, 4, 5), (0.05, 0.05, 0.15, 0.35, 0.4))[0]
        yield step(), "write_review", {"productId": f"p{rng.randrange(PRODUCTS)}", "rating": rating}
    if random_() < 0.015:
        yield step(), "share", {"network": rng.choice(("facebook", "x", "whatsapp"))}
    if random_() < 0.004:
        yield step(), "refer_friend", {"channel": "email" if random_() < 0.5 else "link"}


def _checkout(
    rng: random.Random,
    customer: Customer,
    cart: list[tuple[str, float, int]],
    order_prefix: str,
    step: Any,
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    amount = round(sum(price * quantity for _, price, quantity in cart), 2)
    items = sum(quantity for _, _, quantity in cart)
    yield step(), "checkout", {"amount": amount, "items": items}
    if rng.random() < 0.15:
        yield step(), "apply_coupon", {"code": rng.choice(("WELCOME10", "SUMMER", "VIP"))}
        amount = round(amount * 0.9, 2)
    if rng.random() < 0.72:
        channel = customer.channel if rng.random() < 0.8 else rng.choice(CHANNELS)
        yield (
            step(),
            "place_order",
            {
                "orderId": f"{order_prefix}{rng.randrange(10**9)}",
                "amount": amount,
                "items": items,
                "channel": channel,
                "currency": customer.currency,
            },
        )

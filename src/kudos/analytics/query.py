"""``POST /analytics/query``: the request union, checked whole, and its dispatch by ``kind``.

A bad query is refused with every problem named by its path (``QueryInvalid``, 3030), as a
program's validation does: ``series[1].math: unknown math "mode"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kudos import errors
from kudos.analytics import periods
from kudos.domain.model import Account
from kudos.domain.payload import MAX_EVENT_NAME
from kudos.rules.schema import SIMPLE_OPERATORS, Condition, condition_problem
from kudos.storage import analytics as rows
from kudos.storage.db import Tx

ANY_EVENT = "$any"
FIRST_SEEN = "$firstSeen"
COUNT_MATHS = ("count", "uniqueCustomers", "weeklyActive", "monthlyActive")
VALUE_MATHS = ("sum", "avg", "min", "max", "median", "p90", "p95", "p99")
MATHS = COUNT_MATHS + VALUE_MATHS
KINDS = ("trends", "funnel", "retention", "lifecycle", "stickiness")
MAX_SERIES = 5
MAX_FILTERS = 10
MAX_STEPS = 10
MAX_BREAKDOWN = 100
DEFAULT_BREAKDOWN = 25
MAX_PERIODS = 60
WINDOW_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
MAX_WINDOW_SECONDS = 90 * 86400
VALUE_PROBLEM = "a string, number or boolean, or a list of them"


@dataclass
class Problems:
    """Problems found so far, each with its path."""

    found: list[str] = field(default_factory=list)

    def add(self, path: str, problem: str) -> None:
        self.found.append(f"{path}: {problem}")

    def raise_any(self) -> None:
        if self.found:
            raise errors.QueryInvalid(self.found)


@dataclass(frozen=True)
class Series:
    event: str
    math: str
    property: str | None


@dataclass(frozen=True)
class Step:
    event: str
    filters: list[Condition]


class Reader:
    """Reads a request's fields, noting what is wrong with each."""

    def __init__(self, body: dict[str, Any], problems: Problems, path: str = "") -> None:
        self.body, self.problems, self.path = body, problems, path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def known(self, *keys: str) -> None:
        for key in self.body:
            if key not in keys:
                self.problems.add(self.at(str(key)), "unknown field")

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.body.get(key, default)
        if value not in options:
            shown = ", ".join(options)
            self.problems.add(
                self.at(key),
                f"one of {shown}" if value is None else f"unknown {key} {value!r} (one of {shown})",
            )
            return options[0]
        return str(value)

    def event(self, key: str, *, anything: str | None = None, default: str | None = None) -> str:
        value = self.body.get(key, default)
        if not isinstance(value, str) or not 0 < len(value) <= MAX_EVENT_NAME:
            self.problems.add(self.at(key), f"an event name of 1 to {MAX_EVENT_NAME} characters")
            return ""
        if value.startswith("$") and value not in (ANY_EVENT, anything):
            self.problems.add(self.at(key), f"unknown special event {value!r}")
        return value

    def integer(self, key: str, low: int, high: int, default: int | None = None) -> int:
        value = self.body.get(key, default)
        if type(value) is not int or not low <= value <= high:
            self.problems.add(self.at(key), f"a whole number from {low} to {high}")
            return low
        return value

    def filters(self, key: str = "filters") -> list[Condition]:
        raw = self.body.get(key, [])
        if not isinstance(raw, list) or len(raw) > MAX_FILTERS:
            self.problems.add(self.at(key), f"a list of at most {MAX_FILTERS} conditions")
            return []
        conditions = []
        for index, item in enumerate(raw):
            where = f"{self.at(key)}[{index}]"
            try:
                condition = Condition.model_validate(item)
            except ValidationError as exc:
                seen: set[str] = set()
                for error in exc.errors():
                    field = str(error["loc"][0]) if error["loc"] else ""
                    if field not in seen:  # a union's value fails once per member: say it once
                        seen.add(field)
                        message = VALUE_PROBLEM if field == "value" else error["msg"]
                        self.problems.add(f"{where}.{field}" if field else where, message)
                continue
            if condition.op not in SIMPLE_OPERATORS:
                self.problems.add(f"{where}.op", f"{condition.op} aggregates: not a filter")
                continue
            problem = condition_problem(condition)
            if problem is not None:
                self.problems.add(f"{where}.value", problem)
                continue
            conditions.append(condition)
        return conditions


@dataclass
class Query:
    """A checked request: what every kind shares, and the kind's own fields."""

    kind: str
    span: periods.Range
    reader: Reader
    fields: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Tx, Account, Query], dict[str, Any]]


def run(tx: Tx, account: Account, body: Any, *, now: float | None = None) -> dict[str, Any]:
    """Check a query and answer it (``now``: the clock, injected by tests)."""
    from kudos.analytics import engagement, funnel, trends

    if not isinstance(body, dict):
        raise errors.QueryInvalid(["(body): a JSON object with a kind"])
    problems = Problems()
    reader = Reader(body, problems)
    kind = reader.choice("kind", KINDS)
    problems.raise_any()
    try:
        span = periods.parse_range(body.get("dateRange"), account.timezone, _now(now))
    except errors.QueryInvalid as exc:
        problems.found.extend(exc.problems)
        span = periods.Range(account.timezone, *_placeholder(account.timezone))
    handlers: dict[str, tuple[Callable[[Reader], dict[str, Any]], Handler]] = {
        "trends": (trends.parse, trends.answer),
        "funnel": (funnel.parse, funnel.answer),
        "retention": (engagement.parse_retention, engagement.retention),
        "lifecycle": (engagement.parse_lifecycle, engagement.lifecycle),
        "stickiness": (engagement.parse_stickiness, engagement.stickiness),
    }
    parse, answer = handlers[kind]
    fields = parse(reader)
    problems.raise_any()
    return answer(tx, account, Query(kind, span, reader, fields))


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _placeholder(zone: str) -> tuple[Any, Any]:
    tz = periods.zone_of(zone)
    start = periods.parse_moment("2000-01-01", tz, "")
    return start, periods.parse_moment("2000-01-02", tz, "")


def envelope(tx: Tx, account: Account, query: Query, **answer: Any) -> dict[str, Any]:
    """What every answer says besides its figures: its kind, zone, range and exactness."""
    start, end = query.span.iso()
    stale = rows.stale_reason(tx, account.id)
    exact = bool(answer.pop("exact", True)) and stale is None
    head: dict[str, Any] = {
        "kind": query.kind,
        "timezone": account.timezone,
        "from": start,
        "to": end,
        "exact": exact,
    }
    if stale is not None:
        head["notes"] = [
            f"analytics are incomplete ({stale}):"
            f" run `kudos analytics rebuild --account {account.name}`"
        ]
    head.update(answer)
    return head

"""``kind: funnel``: how many customers go through ordered steps within a window.

A raw scan of the steps' events over the range plus the window (later steps may come after
the range's end). Each customer's events are ordered by (time, id); from every step-1 event
inside the range, each next step is the earliest matching event after the previous step's,
at most ``window`` after the step-1 event. A customer counts at every step up to the furthest
one any of their step-1 events reaches; the first such start gives their times between steps.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from typing import Any

from kudos.analytics import raw
from kudos.analytics.query import (
    ANY_EVENT,
    MAX_STEPS,
    MAX_WINDOW_SECONDS,
    WINDOW_UNITS,
    Query,
    Reader,
    Step,
    envelope,
)
from kudos.domain.model import Account
from kudos.storage.db import Tx

Event = tuple[float, int, int]  # seconds, id, the steps it matches (a bit per step)


def parse(reader: Reader) -> dict[str, Any]:
    reader.known("kind", "steps", "window", "dateRange")
    body, problems = reader.body, reader.problems
    steps: list[Step] = []
    raw_steps = body.get("steps")
    if not isinstance(raw_steps, list) or not 2 <= len(raw_steps) <= MAX_STEPS:
        problems.add("steps", f"a list of 2 to {MAX_STEPS} steps")
        raw_steps = []
    for index, item in enumerate(raw_steps):
        if not isinstance(item, dict):
            problems.add(f"steps[{index}]", "an object with event (and filters)")
            continue
        one = Reader(item, problems, f"steps[{index}]")
        one.known("event", "filters")
        steps.append(Step(one.event("event"), one.filters()))
    window = body.get("window", {"value": 14, "unit": "day"})
    seconds = 0
    if not isinstance(window, dict):
        problems.add("window", "an object with value and unit")
    else:
        one = Reader(window, problems, "window")
        one.known("value", "unit")
        unit = one.choice("unit", tuple(WINDOW_UNITS), default="day")
        value = one.integer("value", 1, 10**6)
        seconds = value * WINDOW_UNITS[unit]
        if seconds > MAX_WINDOW_SECONDS:
            problems.add("window", "at most 90 days")
    return {"steps": steps, "window": window, "seconds": seconds}


def answer(tx: Tx, account: Account, query: Query) -> dict[str, Any]:
    steps: list[Step] = query.fields["steps"]
    window: int = query.fields["seconds"]
    start, end = query.span.start.timestamp(), query.span.end.timestamp()
    raw.check_span(start, end + window, "a funnel")
    budget = raw.Budget()
    tests = [(s.event, raw.compile_filters(s.filters)) for s in steps]
    names = (
        raw.all_names(tx, account.id)
        if any(s.event == ANY_EVENT for s in steps)
        else (sorted({s.event for s in steps}))
    )
    by_customer: dict[int, list[Event]] = defaultdict(list)
    for seconds, event_id, profile, name, metadata in raw.scan(
        tx,
        account.id,
        names,
        start,
        end + window,
        budget=budget,
        metadata=any(s.filters for s in steps),
    ):
        mask = 0
        for index, (event, filters) in enumerate(tests):
            if event in (ANY_EVENT, name) and (not filters or raw.passes(filters, metadata)):
                mask |= 1 << index
        by_customer[profile].append((seconds, event_id, mask))
    counts = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    for number, events in enumerate(by_customer.values()):
        if number % 1024 == 0:
            budget.check()
        path = _furthest(events, len(steps), start, end, window)
        for step in range(len(path)):
            counts[step] += 1
            if step:
                gaps[step].append(path[step] - path[step - 1])
    return envelope(
        tx,
        account,
        query,
        window=query.fields["window"],
        steps=[
            {
                "event": step.event,
                "count": counts[k],
                "conversionFromFirst": _share(counts[k], counts[0]),
                "conversionFromPrevious": _share(counts[k], counts[k - 1] if k else counts[0]),
                "medianSecondsFromPrevious": statistics.median(gaps[k]) if k and gaps[k] else None,
            }
            for k, step in enumerate(steps)
        ],
    )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _furthest(
    events: list[Event], steps: int, start: float, end: float, window: int
) -> list[float]:
    """The times of the furthest path any of the customer's step-1 events in [start, end)
    begins (the first start that reaches that far)."""
    events.sort()
    positions = [[i for i, e in enumerate(events) if e[2] >> k & 1] for k in range(steps)]
    best: list[float] = []
    for first in positions[0]:
        began = events[first][0]
        if not start <= began < end:
            continue
        path, at = [began], first
        for k in range(1, steps):
            found = positions[k]
            j = bisect.bisect_right(found, at)
            if j == len(found) or events[found[j]][0] - began > window:
                break
            at = found[j]
            path.append(events[at][0])
        if len(path) > len(best):
            best = path
            if len(best) == steps:
                break
    return best

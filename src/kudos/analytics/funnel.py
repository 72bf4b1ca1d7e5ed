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
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

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
from kudos.storage.db import Row, Tx

_decode = msgspec.json.Decoder().decode
# The steps a mask names, for every mask of up to MAX_STEPS steps.
_STEPS_OF = [tuple(k for k in range(MAX_STEPS) if mask >> k & 1) for mask in range(1 << MAX_STEPS)]
Event = tuple[Any, int, int]  # time as stored, id, the steps it matches (a bit per step)


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
    # A step without filters matches by name alone: a name's steps are known up front.
    by_name: dict[str, int] = defaultdict(int)
    filtered: list[tuple[int, str, list[raw.Filter]]] = []
    for index, (event, filters) in enumerate(tests):
        if filters:
            filtered.append((1 << index, event, filters))
        elif event != ANY_EVENT:
            by_name[event] |= 1 << index
    anything = sum(1 << i for i, (event, f) in enumerate(tests) if event == ANY_EVENT and not f)
    by_name = {name: mask | anything for name, mask in by_name.items()}
    groups: dict[int, list[Event]] = defaultdict(list)
    starters: set[int] = set()  # customers with a step-1 event in the range
    db = tx.db
    low, high, most = db.event_time(start), db.event_time(end), window * 1_000_000
    rows = raw.timeline(
        tx, account.id, names, start, end + window, budget=budget, metadata=bool(filtered)
    )
    if filtered:
        rows = _matched(rows, by_name, anything, filtered)
    masks, add_start = by_name.get, starters.add
    for at, event_id, profile, name in rows:  # the hot loop: locals, no attribute lookups
        mask = masks(name, anything) if name.__class__ is str else name
        if mask:
            groups[profile].append((at, event_id, mask))
            if mask & 1 and low <= at < high:
                add_start(profile)
    customers = _as_now(raw.Profiles(tx, account.id), groups, starters)
    counts = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    for number, events in enumerate(customers):
        if number % 1024 == 0:
            budget.check()
        path = _furthest(events, len(steps), low, high, most, db.micros)
        for step in range(len(path)):
            counts[step] += 1
            if step:
                gaps[step].append((path[step] - path[step - 1]) / 1_000_000)
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


def _matched(
    rows: Iterator[Row],
    by_name: dict[str, int],
    anything: int,
    filtered: list[tuple[int, str, list[raw.Filter]]],
) -> Iterator[Row]:
    """Rows with their steps' mask in place of the name, the filtered steps tested."""
    for at, event_id, profile, name, text in rows:
        mask = by_name.get(name, anything)
        metadata = _decode(text)
        for bit, event, filters in filtered:
            if event in (ANY_EVENT, name) and raw.passes(filters, metadata):
                mask |= bit
        yield at, event_id, profile, mask


def _as_now(
    profiles: raw.Profiles, groups: dict[int, list[Event]], starters: set[int]
) -> list[list[Event]]:
    """The events of each customer with a step-1 event in the range, merged profiles joined
    into the profile that absorbed them (events from before the merge count for it)."""
    joined: dict[int, list[Event]] = {}
    for profile, events in groups.items():
        now = profiles.of(profile)
        if now == profile and now not in joined:
            joined[now] = events
        else:
            joined.setdefault(now, []).extend(events)
    keep = {profiles.of(profile) for profile in starters}
    return [events for profile, events in joined.items() if profile in keep]


def _furthest(
    events: list[Event],
    steps: int,
    low: Any,
    high: Any,
    window: int,
    micros: Callable[[Any], int],
) -> list[int]:
    """The times (microseconds) of the furthest path any of the customer's step-1 events in
    [low, high) begins (the first start that reaches that far). Times come as stored; only
    those a path looks at are converted."""
    events.sort()
    positions: list[list[int]] = [[] for _ in range(steps)]
    for index, (_, _, mask) in enumerate(events):
        for step in _STEPS_OF[mask]:
            positions[step].append(index)
    times: dict[int, int] = {}

    def time_of(index: int) -> int:
        found = times.get(index)
        if found is None:
            found = times[index] = micros(events[index][0])
        return found

    best: list[int] = []
    for first in positions[0]:
        if not low <= events[first][0] < high:
            continue
        began = time_of(first)
        path, at = [began], first
        for k in range(1, steps):
            found = positions[k]
            j = bisect.bisect_right(found, at)
            if j == len(found) or time_of(found[j]) - began > window:
                break
            at = found[j]
            path.append(time_of(at))
        if len(path) > len(best):
            best = path
            if len(best) == steps:
                break
    return best

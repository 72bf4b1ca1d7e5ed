"""What analytics keeps as events are stored: one ``Keeper`` per write batch.

Ingest (``services.ingest.IngestHooks``) and ``kudos analytics rebuild`` both feed events
through a ``Keeper``, so what a rebuild derives is what ingest kept. Per batch it writes:

- ``analytics_hours``: events per name and UTC hour, and of every name (``ANY``);
- ``analytics_numbers``: per name, metadata key and hour, the count, sum, least and most of
  the key's JSON numbers (bools and numeric strings are not numbers here);
- ``activity_days``: a row per customer (profile), event name and local day, with the
  customer's previous active day of that name; name ``ANY`` ('') for any event. A customer
  costs at most one row per name and day: the writer remembers each one's latest day;
- ``activity_gaps``: those rows counted by day and gap (days since the previous active day,
  ``FIRST`` for the first, at most ``MAX_GAP``). Distinct customers over any run of days
  [a, b) are the rows in it whose gap reaches back before a: a sum over at most
  days by ``MAX_GAP`` small rows, however many customers (``analytics.activity``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from kudos.analytics import periods
from kudos.storage import analytics as rows
from kudos.storage.db import Tx

ANY = ""  # activity of any event name ('' is never an event's name)
FIRST = 0  # the gap of a customer's first active day
MAX_GAP = 400  # longer gaps are counted as this: windows of up to 400 days stay exact
_FINITE = 1e300  # larger numbers (ints past a double's range) are left out of the sums


class LastDays:
    """Where a ``Keeper`` remembers each ``(account, profile, name)``'s latest active day:
    the writer's shelf (kept across its batches where it is the only writer)."""

    # Whether a day this memory does not hold is known to have no row (a rebuild's memory,
    # until it forgets something): then nothing is read from the store.
    complete = False

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, key: tuple[int, int, str]) -> int | None:
        found: int | None = self.tx.recall(key, shelf="activity")
        return found

    def put(self, key: tuple[int, int, str], day: int) -> None:
        self.tx.remember(key, day, shelf="activity")

    def today(self, customer: tuple[int, int]) -> tuple[int, frozenset[str]] | None:
        """The latest day a customer is known active, with every name they sent that day
        (one lookup for a customer whose request repeats names already counted today)."""
        found: tuple[int, frozenset[str]] | None = self.tx.recall(customer, shelf="activity")
        return found

    def put_today(self, customer: tuple[int, int], day: int, names: frozenset[str]) -> None:
        self.tx.remember(customer, (day, names), shelf="activity")

    def seen(self, key: tuple[int, int, str, str]) -> int | None:
        """A day ``(account, profile, name, zone)`` is known to have a row for, once
        committed (kept across transactions where several processes write: a row, once
        there, stays; the zone in the key keeps a time-zone change from matching old days)."""
        found: int | None = self.tx.recall(key, shelf="seen")
        return found

    def see(self, key: tuple[int, int, str, str], day: int) -> None:
        if self.tx.db.concurrent_writers:  # a single writer's own memory knows more already
            self.tx.remember(key, day, shelf="seen")


class Keeper:
    """Aggregates a batch's events, then writes them in one statement per table."""

    __slots__ = ("days", "hours", "numbers", "zones")

    def __init__(self) -> None:
        self.hours: dict[tuple[int, str, int], int] = {}
        self.numbers: dict[tuple[int, str, str, int], list[float]] = {}
        self.zones: dict[int, str] = {}  # each account's time zone
        # (account, profile, local day): the names active then ('' for any)
        self.days: dict[tuple[int, int, int], set[str]] = {}

    def add(
        self,
        account_id: int,
        zone: str,
        profile_id: int,
        received_at: str,
        events: Iterable[tuple[str, Mapping[str, Any]]],
    ) -> None:
        """Count one request's events (all received at ``received_at``, a stored UTC time)."""
        hour, day = periods.hour_and_day(received_at, zone)
        self.zones[account_id] = zone
        hours = self.hours
        every = (account_id, ANY, hour)
        names = self.days.get((account_id, profile_id, day))
        if names is None:
            names = self.days[(account_id, profile_id, day)] = {ANY}
        for name, metadata in events:
            key = (account_id, name, hour)
            hours[key] = hours.get(key, 0) + 1
            names.add(name)
            hours[every] = hours.get(every, 0) + 1
            if metadata:
                self._numbers(account_id, name, hour, metadata)

    def _numbers(self, account_id: int, name: str, hour: int, metadata: Mapping[str, Any]) -> None:
        numbers = self.numbers
        for key, value in metadata.items():
            kind = type(value)
            if kind is not int and kind is not float:
                continue
            number = float(value) if -_FINITE < value < _FINITE else math.nan
            if number != number:  # out of range (NaN never arrives: the decoder refuses it)
                continue
            slot = (account_id, name, key, hour)
            found = numbers.get(slot)
            if found is None:
                numbers[slot] = [1, number, number, number]
            else:
                found[0] += 1
                found[1] += number
                if number < found[2]:
                    found[2] = number
                if number > found[3]:
                    found[3] = number

    def write(self, tx: Tx, last_days: LastDays) -> None:
        """Write the batch's rows (sorted: concurrent writers lock rows in one order)."""
        shard = tx.db.shard
        rows.add_hours(
            tx, [(a, n, h, shard, count) for (a, n, h), count in sorted(self.hours.items())]
        )
        rows.add_numbers(
            tx,
            [
                (a, n, k, h, shard, int(v[0]), v[1], v[2], v[3])
                for (a, n, k, h), v in sorted(self.numbers.items())
            ],
        )
        if self.days:
            _write_days(tx, self.days, self.zones, last_days, shard)


def _write_days(
    tx: Tx,
    days: dict[tuple[int, int, int], set[str]],
    zones: dict[int, str],
    last_days: LastDays,
    shard: int,
) -> None:
    """Add the rows of customers' new active days, and their gaps. A day after the latest
    known (ingest's case) takes it as its previous day; a day before it (a clock set back, a
    rebuild out of time order) is placed between its neighbours (``_insert_between``). Most
    days of a batch are known already (the customer was active earlier that day): those cost
    one lookup each, in memory where this process is the store's only writer."""
    fresh: list[tuple[int, int, str, int]] = []
    unknown: list[tuple[int, int, str]] = []
    counted: list[tuple[tuple[int, int], int, frozenset[str]]] = []
    for (account_id, profile_id, day), names in days.items():
        customer = (account_id, profile_id)
        known = last_days.today(customer)
        if known is not None and known[0] == day:
            if names <= known[1]:
                continue
            names = names - known[1]
            counted.append((customer, day, known[1].union(names)))
        else:
            counted.append((customer, day, frozenset(names)))
        for name in names:
            key = (account_id, profile_id, name)
            last = last_days.get(key)
            if last is None and last_days.seen((*key, zones[account_id])) == day:
                continue  # committed already (where several processes write)
            if last != day:
                fresh.append((account_id, profile_id, name, day))
                if last is None:
                    unknown.append(key)
    for customer, day, seen in counted:  # written below, in this transaction
        last_days.put_today(customer, day, seen)
    if not fresh:
        return
    if unknown and not last_days.complete:
        for key, day in rows.last_days(tx, sorted(set(unknown))).items():
            last_days.put(key, day)
            last_days.see((*key, zones[key[0]]), day)
    fresh.sort()  # concurrent writers (PostgreSQL) insert in one order
    new_rows: list[rows.DayRow] = []
    gaps: dict[tuple[int, str, int, int], int] = {}
    for account_id, profile_id, name, day in fresh:
        key = (account_id, profile_id, name)
        last = last_days.get(key)
        if last is not None and day < last:
            _insert_between(tx, key, day, gaps)
            continue
        if last == day:
            continue
        new_rows.append((account_id, name, day, profile_id, last))
        _count_gap(gaps, account_id, name, day, last, 1)
        last_days.put(key, day)
        last_days.see((*key, zones[account_id]), day)
    rows.insert_days(tx, new_rows)
    rows.add_gaps(
        tx,
        [(a, n, d, g, shard, c) for (a, n, d, g), c in sorted(gaps.items()) if c],
    )


def _insert_between(
    tx: Tx, key: tuple[int, int, str], day: int, gaps: dict[tuple[int, str, int, int], int]
) -> None:
    """Insert an active day before the customer's latest: the next day's gap shrinks."""
    account_id, profile_id, name = key
    found = rows.days_around(tx, account_id, profile_id, name, day)
    assert found is not None
    exists, prev, following = found
    if exists:
        return
    rows.insert_days(tx, [(account_id, name, day, profile_id, prev)])
    _count_gap(gaps, account_id, name, day, prev, 1)
    if following is not None:
        rows.set_prev(tx, account_id, name, following, profile_id, day)
        _count_gap(gaps, account_id, name, following, prev, -1)
        _count_gap(gaps, account_id, name, following, day, 1)


def gap_of(day: int, prev: int | None) -> int:
    return FIRST if prev is None else min(day - prev, MAX_GAP)


def _count_gap(
    gaps: dict[tuple[int, str, int, int], int],
    account_id: int,
    name: str,
    day: int,
    prev: int | None,
    change: int,
) -> None:
    slot = (account_id, name, day, gap_of(day, prev))
    gaps[slot] = gaps.get(slot, 0) + change

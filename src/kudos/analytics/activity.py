"""Distinct customers from the activity gaps, and what a merge does to them.

``activity_gaps`` counts each customer's active days (per event name) by day and gap, the
days since their previous active day (``keep.FIRST`` for the first). A customer active in a
window of days [a, b) has exactly one active day there whose previous one is before a (or
none): the rows of days d in [a, b) with gap > d - a. So distinct customers over any window
(a bucket, a rolling week, the whole range) are a sum over small rows, exact for windows of
up to ``keep.MAX_GAP`` days. Lifecycle sorts those same rows by how far back the gap reaches.
"""

from __future__ import annotations

from collections import defaultdict

from kudos.analytics import keep
from kudos.storage import analytics as rows
from kudos.storage.db import Tx


class Gaps:
    """The gap counts of one name over days [first, last)."""

    def __init__(self, tx: Tx, account_id: int, name: str, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.by_day: dict[int, dict[int, int]] = defaultdict(dict)
        for day, gap, customers in rows.gap_counts(tx, account_id, name, first, last):
            self.by_day[int(day)][int(gap)] = int(customers)

    def distinct(self, start: int, end: int) -> int:
        """Customers active in days [start, end) (within the rows read)."""
        total = 0
        for day in range(max(start, self.first), min(end, self.last)):
            reach = day - start
            for gap, customers in self.by_day.get(day, {}).items():
                if gap == keep.FIRST or gap > reach:
                    total += customers
        return total

    def kinds(self, start: int, end: int, previous_start: int) -> tuple[int, int, int]:
        """Of the customers active in [start, end): ``(new, returning, resurrecting)``: first
        active ever, active in [previous_start, start) too, or back after a longer gap."""
        new = returning = resurrecting = 0
        for day in range(max(start, self.first), min(end, self.last)):
            for gap, customers in self.by_day.get(day, {}).items():
                if gap == keep.FIRST:
                    new += customers
                elif gap <= day - start:
                    continue  # not their first active day of the bucket
                elif gap <= day - previous_start:
                    returning += customers
                else:
                    resurrecting += customers
        return new, returning, resurrecting


def merge(tx: Tx, account_id: int, *, winner: int, loser: int) -> None:
    """Give the loser's active days to the winner: per name, the two day lists become one,
    and the gaps of every row that changed are counted again."""
    found: dict[int, dict[str, dict[int, int | None]]] = {winner: {}, loser: {}}
    for profile_id, name, day, prev in rows.days_of(tx, account_id, [winner, loser]):
        found[int(profile_id)].setdefault(name, {})[int(day)] = prev
    lost = found[loser]
    if not lost:
        return
    kept = found[winner]
    gaps: dict[tuple[str, int, int], int] = {}
    new_rows: list[rows.DayRow] = []
    for name, loser_days in lost.items():
        winner_days = kept.get(name, {})
        for days in (winner_days, loser_days):
            for day, prev in days.items():
                _count(gaps, name, day, keep.gap_of(day, prev), -1)
        previous: int | None = None
        for day in sorted(winner_days.keys() | loser_days.keys()):
            new_rows.append((account_id, name, day, winner, previous))
            _count(gaps, name, day, keep.gap_of(day, previous), 1)
            previous = day
        tx.take((account_id, winner, name), shelf="activity")
        tx.take((account_id, loser, name), shelf="activity")
    rows.delete_days_of(tx, account_id, loser)
    rows.delete_days_named(tx, account_id, winner, sorted(lost))
    rows.insert_days(tx, new_rows)
    shard = tx.db.shard
    rows.add_gaps(
        tx,
        [(account_id, n, d, g, shard, c) for (n, d, g), c in sorted(gaps.items()) if c],
    )


def _count(gaps: dict[tuple[str, int, int], int], name: str, day: int, gap: int, n: int) -> None:
    gaps[(name, day, gap)] = gaps.get((name, day, gap), 0) + n

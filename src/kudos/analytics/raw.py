"""Raw scans: a query's events read from the events table, for what no rollup answers
(filters, breakdowns, percentiles, funnels, unique customers per hour).

A scan reads one or a few names' events over a range through the ``events_name_time`` index,
is bounded (``MAX_RAW_DAYS`` of range, a time budget that stops it with ``QueryTimeout``)
and yields each event's time (Unix seconds), its customer as a profile *now* (merged
profiles followed to the one that absorbed them) and, when asked, its metadata.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from kudos import errors
from kudos.rules import engine as rules_engine
from kudos.rules.schema import Condition
from kudos.storage import events as event_rows
from kudos.storage.db import Row, Tx

MAX_RAW_DAYS = 92  # a raw scan's range (the same events index serves longer ones, slowly)
TIME_BUDGET_SECONDS = 5.0
_CHECK_EVERY = 8192
_decode = msgspec.json.Decoder().decode

Filter = tuple[str, Any]  # a metadata key and the test its value must pass


class Budget:
    """A query's time budget: ``check`` raises ``QueryTimeout`` once it is spent."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = TIME_BUDGET_SECONDS if seconds is None else seconds
        self.deadline = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise errors.QueryTimeout()

    def left(self) -> float:
        return max(0.01, self.deadline - time.monotonic())


def check_span(start: float, end: float, what: str = "a raw scan") -> None:
    if end - start > MAX_RAW_DAYS * 86400 + 3 * 3600:  # a DST day's hours of slack
        raise errors.QueryTooLarge(
            f"Query too large: {what} reads at most {MAX_RAW_DAYS} days of events; shorten the"
            " range (counts, sums and unique customers without filters or breakdown read"
            " rollups over any range)."
        )


def all_names(tx: Tx, account_id: int) -> list[str] | None:
    """Every event name the account's catalog records (``$any``'s scan, through the names
    index), or ``None`` when the catalog is full: names past it are scanned too, then."""
    if event_rows.names_full(tx, account_id):
        return None
    found = [row[0] for row in event_rows.names_page(tx, account_id, after=None, limit=10_000)]
    return found or [""]


def compile_filters(conditions: Sequence[Condition]) -> list[Filter]:
    return [(c.key, rules_engine.predicate(c)) for c in conditions]


def passes(filters: list[Filter], metadata: dict[str, Any]) -> bool:
    # A plain loop (as the campaign engine's): all() over a generator costs a frame per event.
    for key, test in filters:  # noqa: SIM110
        if key not in metadata or not test(metadata[key]):
            return False
    return True


class Profiles:
    """Profile ids as they are now: a merged profile maps to the one that absorbed it."""

    def __init__(self, tx: Tx, account_id: int) -> None:
        merged: dict[int, int] = dict(
            tx.all(
                "SELECT id, merged_into FROM profiles WHERE account_id = ?"
                " AND merged_into IS NOT NULL",
                (account_id,),
            )
        )
        self.current: dict[int, int] = {}
        for profile_id in merged:
            seen, target = 0, profile_id
            while target in merged and seen < 64:
                target, seen = merged[target], seen + 1
            self.current[profile_id] = target

    def of(self, profile_id: int) -> int:
        return self.current.get(profile_id, profile_id)


def timeline(
    tx: Tx,
    account_id: int,
    names: Sequence[str] | None,
    start: float,
    end: float,
    *,
    budget: Budget,
    metadata: bool = False,
) -> Iterator[Row]:
    """``(time, event id, profile at ingest, name[, metadata JSON text])`` of the events of
    ``names`` (every name: ``None``) received in [start, end): plain rows, for a caller that
    goes over hundreds of thousands (``Profiles`` maps merged profiles once per customer, not
    per row). The time sorts as time does; ``Database.micros`` converts it."""
    return _rows(tx, account_id, names, start, end, "{event_time}", metadata, budget)


def scan(
    tx: Tx,
    account_id: int,
    names: Sequence[str] | None,
    start: float,
    end: float,
    *,
    budget: Budget,
    metadata: bool = False,
) -> Iterator[tuple[Any, int, int, str, dict[str, Any]]]:
    """``(time, event id, profile now, name, metadata or {})`` of the events of ``names``
    (every name: ``None``) received in [start, end), in no particular order. The time is as
    the store keeps it (``Database.time_value``'s form: compare it with values of that form,
    or convert it with ``Database.seconds``)."""
    current = Profiles(tx, account_id).current
    for row in _rows(tx, account_id, names, start, end, "received_at", metadata, budget):
        profile_id: int = row[2]
        data = _decode(row[4]) if metadata else None
        yield row[0], row[1], current.get(profile_id, profile_id), row[3], data or {}


def _rows(
    tx: Tx,
    account_id: int,
    names: Sequence[str] | None,
    start: float,
    end: float,
    time_column: str,
    metadata: bool,
    budget: Budget,
) -> Iterator[Row]:
    """The events' rows, streamed within the budget (checked every ``_CHECK_EVERY`` rows,
    and by the store itself while a statement runs)."""
    db = tx.db
    columns = f"{time_column}, id, profile_id, name" + (", {metadata_text}" if metadata else "")
    named = "" if names is None else f" AND name IN ({', '.join('?' for _ in names)})"
    params: list[Any] = [account_id, *(names or ()), db.time_value(start), db.time_value(end)]
    sql = (
        f"SELECT {columns} FROM events WHERE account_id = ?{named}"
        " AND received_at >= ? AND received_at < ?"
    )
    budget.check()
    with db.time_budget(tx, budget.left()):
        for count, row in enumerate(db.stream(tx, sql, params), 1):
            if not count % _CHECK_EVERY:
                budget.check()
            yield row

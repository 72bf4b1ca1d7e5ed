"""The loyalty figures: ``GET /analytics/summary``, ``/analytics/points`` and
``/analytics/campaigns/{id}``, read from the rollups only (a few hundred small rows).

Points are counted as the ledger moves them (``ledger_hours``): a credit when it becomes
available (a pending credit when its window ends), a debit when it is made. Outstanding points
at a moment are today's balances (``customer_rewards``) less what moved after that moment.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from decimal import Decimal
from typing import Any

from kudos import errors
from kudos.analytics import activity, keep, periods, raw
from kudos.domain import money
from kudos.domain.model import Account
from kudos.rules.engine import CompiledProgram
from kudos.storage import analytics as rows
from kudos.storage.db import Tx

REDEEMED = "Redemption"
EXPIRED = "Expiry"


def span_of(account: Account, start: str | None, end: str | None, now: float) -> periods.Range:
    """``from``/``to`` of a loyalty report (both, or neither: the last 30 days)."""
    if start is None and end is None:
        return periods.parse_range(None, account.timezone, now)
    if start is None or end is None:
        raise errors.QueryInvalid(["from, to: give both (or neither: the last 30 days)"])
    return periods.parse_range({"from": start, "to": end}, account.timezone, now, where="")


def summary(
    tx: Tx,
    account: Account,
    *,
    start: str | None = None,
    end: str | None = None,
    now: float,
    program: CompiledProgram | None = None,
) -> dict[str, Any]:
    """The figures of a range, each beside the previous period's."""
    span = span_of(account, start, end, now)
    before = span.previous()
    ledger = Ledger(tx, account.id, _hours(before)[0])
    current = _figures(tx, account, span, ledger)
    previous = _figures(tx, account, before, ledger)
    outstanding = {
        "value": ledger.standing(_hours(span)[1]),
        "previous": ledger.standing(_hours(before)[1]),
    }
    value = _point_value(program)
    first, last = span.iso()
    return {
        "timezone": account.timezone,
        "from": first,
        "to": last,
        "previousFrom": before.iso()[0],
        "exact": span.whole_days
        and all(m.timestamp() % 3600 == 0 for m in (span.start, span.end, before.start))
        and rows.stale_reason(tx, account.id) is None,
        "members": _paired(current["members"], previous["members"]),
        "events": {"value": current["events"], "previous": previous["events"]},
        "points": {
            **_paired(current["points"], previous["points"]),
            "outstanding": outstanding,
            "outstandingValue": None
            if value is None
            else {
                "amount": money.as_number(money.value_of(outstanding["value"], value)),
                "currency": program.program.currency if program is not None else None,
            },
            "pending": _pending(tx, account.id),
        },
        "tiers": _tiers(tx, account.id, program, current["members"]["enrolled"]),
    }


def _paired(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Each figure beside the previous period's (a source absent in one of them: 0)."""
    keys = [*current, *(key for key in previous if key not in current)]
    return {
        key: _paired(current[key], previous.get(key, {}))
        if isinstance(current.get(key), dict)
        else {"value": current.get(key, 0), "previous": previous.get(key, 0)}
        for key in keys
    }


def _figures(tx: Tx, account: Account, span: periods.Range, ledger: Ledger) -> dict[str, Any]:
    first_day, last_day = span.days
    gaps = activity.Gaps(tx, account.id, keep.ANY, min(first_day, last_day - 30), last_day)
    days = max(1, last_day - first_day)
    daily = sum(gaps.distinct(day, day + 1) for day in range(first_day, last_day)) / days
    first_hour, last_hour = _hours(span)
    flows = ledger.between(first_hour, last_hour)
    issued = sum(flows["+"].values())
    redeemed = flows["-"].get(REDEEMED, 0)
    enrolled = rows.members_before(tx, account.id, last_hour)
    return {
        "members": {
            "enrolled": enrolled,
            "new": enrolled - rows.members_before(tx, account.id, first_hour),
            "active": gaps.distinct(first_day, last_day),
            "activeDaily": round(daily, 2),
            "activeWeekly": gaps.distinct(last_day - 7, last_day),
            "activeMonthly": gaps.distinct(last_day - 30, last_day),
        },
        "events": sum(
            int(n) for _, n in rows.hour_counts(tx, account.id, keep.ANY, first_hour, last_hour)
        ),
        "points": {
            "issued": issued,
            "issuedBySource": dict(sorted(flows["+"].items())),
            "redeemed": redeemed,
            "expired": flows["-"].get(EXPIRED, 0),
            "otherDebits": sum(v for k, v in flows["-"].items() if k not in (REDEEMED, EXPIRED)),
            "redemptionRate": round(redeemed / issued, 4) if issued else None,
        },
    }


def _hours(span: periods.Range) -> tuple[int, int]:
    return int(span.start.timestamp()) // 3600, -(-int(span.end.timestamp()) // 3600)


class Ledger:
    """The account's points flows per hour from ``first`` (an hour) on, read once, and what
    the balances held before it; outstanding points at an hour follow from them."""

    def __init__(self, tx: Tx, account_id: int, first: int) -> None:
        self.first = first
        self.base = rows.ledger_standing(tx, account_id, first)
        self.flows = [
            (int(hour), kind, direction, int(points))
            for hour, kind, direction, points, _ in rows.ledger_flows(tx, account_id, first, None)
        ]

    def between(self, first: int, last: int) -> dict[str, dict[str, int]]:
        """Points moved in hours [first, last), by direction and kind."""
        found: dict[str, dict[str, int]] = {"+": defaultdict(int), "-": defaultdict(int)}
        for hour, kind, direction, points in self.flows:
            if first <= hour < last:
                found[direction][kind] += points
        return found

    def standing(self, hour: int) -> int:
        """Every credit less every debit before ``hour`` (at or after ``first``): the points
        the balances held then (the ledger moves every point a balance holds)."""
        moved = sum(p if d == "+" else -p for h, _, d, p in self.flows if h < hour)
        return self.base + moved


def _pending(tx: Tx, account_id: int) -> int:
    row = tx.one(
        "SELECT coalesce(sum(remaining), 0) FROM history WHERE account_id = ?"
        " AND pending_until IS NOT NULL",
        (account_id,),
    )
    return int(row[0]) if row else 0


def _point_value(program: CompiledProgram | None) -> Decimal | None:
    settings = program.program.redemption if program is not None else None
    return None if settings is None else money.decimal(settings.point_value)


def _tiers(
    tx: Tx, account_id: int, program: CompiledProgram | None, enrolled: int
) -> list[dict[str, Any]]:
    """Customers per tier now (those the program never rewarded are in no tier)."""
    names = {t.order: t.name for t in program.program.tiers} if program is not None else {}
    counted = {
        row[0]: int(row[1])
        for row in tx.all(
            "SELECT tier_order, count(*) FROM customer_rewards WHERE account_id = ?"
            " GROUP BY tier_order",
            (account_id,),
        )
    }
    out = [
        {"tier": names.get(order), "order": order, "customers": counted.get(order, 0)}
        for order in sorted(names)
    ]
    untiered = max(0, enrolled - sum(counted.get(order, 0) for order in names))
    return [{"tier": None, "order": None, "customers": untiered}, *out]


def points(
    tx: Tx,
    account: Account,
    *,
    start: str | None = None,
    end: str | None = None,
    interval: str = "auto",
    now: float,
    program: CompiledProgram | None = None,
) -> dict[str, Any]:
    """Points moved per bucket, and the outstanding points at each bucket's end."""
    span = span_of(account, start, end, now)
    chosen = periods.auto_interval(span) if interval == "auto" else interval
    buckets = periods.buckets(span, chosen)
    starts = [int(b.start) // 3600 for b in buckets]
    first, last = _hours(span)
    ledger = Ledger(tx, account.id, first)
    issued: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    debits: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    for hour, kind, direction, moved in ledger.flows:
        if hour < last:
            into = issued if direction == "+" else debits
            into[kind][bisect.bisect_right(starts, hour) - 1] += moved
    outstanding = [ledger.standing(-(-int(b.end) // 3600)) for b in buckets]
    value = _point_value(program)
    return {
        "timezone": account.timezone,
        "from": span.iso()[0],
        "to": span.iso()[1],
        "interval": chosen,
        "exact": all(b.start % 3600 == 0 and b.end % 3600 == 0 for b in buckets)
        and rows.stale_reason(tx, account.id) is None,
        "buckets": [b.label for b in buckets],
        "issued": [sum(column) for column in zip(*issued.values(), strict=True)]
        if issued
        else [0] * len(buckets),
        "issuedBySource": dict(sorted(issued.items())),
        "redeemed": debits.get(REDEEMED, [0] * len(buckets)),
        "expired": debits.get(EXPIRED, [0] * len(buckets)),
        "debitsByKind": dict(sorted(debits.items())),
        "outstanding": outstanding,
        "outstandingValue": None
        if value is None
        else [money.as_number(money.value_of(o, value)) for o in outstanding],
    }


def campaign(
    tx: Tx,
    account: Account,
    campaign_id: str,
    *,
    start: str | None = None,
    end: str | None = None,
    interval: str = "auto",
    now: float,
) -> dict[str, Any]:
    """A campaign's achievements, points and cap hits per bucket (participants: distinct
    customers it rewarded, from the history)."""
    span = span_of(account, start, end, now)
    chosen = periods.auto_interval(span) if interval == "auto" else interval
    buckets = periods.buckets(span, chosen)
    starts = [int(b.start) // 3600 for b in buckets]
    first, last = _hours(span)
    series = {name: [0] * len(buckets) for name in ("achievements", "points", "capHits")}
    for hour, achieved, given, capped in rows.campaign_flows(
        tx, account.id, campaign_id, first, last
    ):
        index = bisect.bisect_right(starts, int(hour)) - 1
        series["achievements"][index] += int(achieved)
        series["points"][index] += int(given)
        series["capHits"][index] += int(capped)
    return {
        "campaignId": campaign_id,
        "timezone": account.timezone,
        "from": span.iso()[0],
        "to": span.iso()[1],
        "interval": chosen,
        "exact": all(b.start % 3600 == 0 and b.end % 3600 == 0 for b in buckets),
        "buckets": [b.label for b in buckets],
        **series,
        "participants": _participants(tx, account.id, campaign_id, buckets),
        "totals": {name: sum(values) for name, values in series.items()},
    }


def _participants(
    tx: Tx, account_id: int, campaign_id: str, buckets: list[periods.Bucket]
) -> list[int]:
    """Distinct customers the campaign rewarded in each bucket (index ``history_campaign``:
    a row per reward in the range, within the raw scans' time budget)."""
    db = tx.db
    starts = [b.start for b in buckets]
    seen: list[set[int]] = [set() for _ in buckets]
    with db.time_budget(tx, raw.TIME_BUDGET_SECONDS):
        found = tx.all(
            "SELECT created_at, profile_id FROM history WHERE account_id = ?"
            " AND campaign_id = ? AND type = 'CampaignRewarded' AND created_at >= ?"
            " AND created_at < ?",
            (
                account_id,
                campaign_id,
                db.time_value(buckets[0].start),
                db.time_value(buckets[-1].end),
            ),
        )
    for created, profile in found:
        seen[bisect.bisect_right(starts, db.seconds(created)) - 1].add(int(profile))
    return [len(s) for s in seen]

"""The analytics benchmark's loyalty program, as the rows it leaves: a credit in the ledger
(``history``) for each order, a point per whole unit of its amount (the reward of a "points
per order" campaign), and each customer's totals with the progress of a 20-campaign program
(``customer_rewards``: one row per profile of about 0.7 KB). The summary reads both: the
ledger's hourly flows (``ledger_hours``, derived by the rebuild) and every balance.

A merge folds the app profile's totals into the customer's and moves its ledger entries, as
``services.rewards.combine_profiles`` does. Totals are kept in memory while loading and read
back from ``customer_rewards`` when a build resumes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kudos.storage.db import Tx

CAMPAIGN = "points-per-order"
CREDIT = ("CampaignRewarded", "Reward", "+")  # history's type, kind and direction
REASON = ("Points per order", CAMPAIGN, 1)  # its reason, campaign and campaign version
CAMPAIGNS = 20
HISTORY_COLUMNS = (
    "account_id, profile_id, type, kind, direction, points, remaining, reason, campaign_id,"
    " campaign_version, event_id, balance_before, balance_after, created_at"
)
SAVE_TOTALS = (
    "INSERT INTO customer_rewards (account_id, profile_id, points_balance, points_earned,"
    " score, spend, event_count, tier_order, progress, updated_at)"
    " VALUES (?, ?, ?, ?, 0, ?, ?, NULL, ?, ?)"
    " ON CONFLICT (account_id, profile_id) DO UPDATE SET"
    " points_balance = excluded.points_balance, points_earned = excluded.points_earned,"
    " spend = excluded.spend, event_count = excluded.event_count,"
    " progress = excluded.progress, updated_at = excluded.updated_at"
)


@dataclass(slots=True)
class Totals:
    balance: int = 0
    earned: int = 0
    spend: float = 0.0
    events: int = 0
    orders: int = 0


def progress(totals: Totals, day: str) -> str:
    """Campaign progress as the engine stores it (campaign → [achieved, day, day count,
    [count, sums, values]]): the size a 20-campaign program leaves, ~0.7 KB."""
    state = {
        f"c{number:02d}": [
            totals.orders // (number + 1),
            day,
            1,
            [totals.events % (number + 7), [round(totals.spend, 2)], []],
        ]
        for number in range(CAMPAIGNS)
    }
    return json.dumps(state, separators=(",", ":"))


class Program:
    """Every profile's totals, and the rows one day of events adds."""

    def __init__(self, account_id: int, totals: dict[int, Totals]) -> None:
        self.account_id = account_id
        self.totals = totals

    @classmethod
    def load(cls, tx: Tx, account_id: int) -> Program:
        """The totals a (partial) build left."""
        rows = tx.all(
            "SELECT profile_id, points_balance, points_earned, spend, event_count, progress"
            " FROM customer_rewards WHERE account_id = ?",
            (account_id,),
        )
        totals = {}
        for profile_id, balance, earned, spend, events, stored in rows:
            state = stored if isinstance(stored, dict) else json.loads(stored)
            orders = int(state["c00"][0])  # campaign 0 counts every order
            totals[int(profile_id)] = Totals(
                int(balance), int(earned), float(spend), events, orders
            )
        return cls(account_id, totals)

    def day(
        self, events: Sequence[tuple[Any, ...]], merges: Sequence[tuple[str, int, int]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The ledger rows and the saved totals of one day's ``events`` (id, account, profile,
        customerId, name, metadata, time), in time order; ``merges``: (time, winner, loser),
        each folded in at its time."""
        credits: list[tuple[Any, ...]] = []
        touched: dict[int, str] = {}
        totals = self.totals
        pending = sorted(merges, reverse=True)
        for event_id, account_id, profile_id, _, name, metadata, stamp in events:
            while pending and pending[-1][0] <= stamp:
                _, winner, loser = pending.pop()
                self._fold(winner, loser)
            found = totals.get(profile_id)
            if found is None:
                found = totals[profile_id] = Totals()
            found.events += 1
            touched[profile_id] = stamp
            if name != "place_order":
                continue
            amount = json.loads(metadata)["amount"]
            points = int(amount)
            found.spend += amount
            found.orders += 1
            if points > 0:
                before, found.balance = found.balance, found.balance + points
                credit = (account_id, profile_id, *CREDIT, points, points, *REASON, event_id)
                credits.append((*credit, before, found.balance, stamp))
                found.earned += points
        for _, winner, loser in pending:
            self._fold(winner, loser)
        saved = []
        for profile_id, stamp in sorted(touched.items()):
            t = totals[profile_id]
            figures = (t.balance, t.earned, t.spend, t.events)
            saved.append((self.account_id, profile_id, *figures, progress(t, stamp[:10]), stamp))
        return credits, saved

    def _fold(self, winner: int, loser: int) -> None:
        gone = self.totals.pop(loser, Totals())
        kept = self.totals.setdefault(winner, Totals())
        kept.balance += gone.balance
        kept.earned += gone.earned
        kept.spend += gone.spend
        kept.events += gone.events
        kept.orders += gone.orders

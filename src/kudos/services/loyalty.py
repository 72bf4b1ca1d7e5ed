"""Read-back of what campaigns did for a customer, in Gameball v4's shapes."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from kudos.domain.model import Account, iso, utc_now
from kudos.domain.payload import EventBatch
from kudos.rules.engine import CampaignCheck, Facts, evaluate_event
from kudos.services.customers import find_profile
from kudos.services.rewards import ProgramCache
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx


def balance(
    tx: Tx, account: Account, customer_id: str, *, now: str | None = None
) -> dict[str, Any]:
    """``GET …/customers/{id}/balance``: points that are in the balance, usable and expiring.

    Points whose expiry has passed leave the available balance at that moment, even before
    the worker writes their ``Expiry`` entry. kudos has no points-to-money rate: the
    ``…Value`` fields are 0 and ``currency`` is null.
    """
    profile = find_profile(tx, account, customer_id)
    totals = reward_rows.totals(tx, account.id, profile.id)
    now = now or utc_now()
    expired = 0
    upcoming: list[tuple[str, int]] = []
    for remaining, expires_at in reward_rows.expiring(tx, account.id, profile.id, now):
        moment = iso(expires_at)
        if moment <= now:
            expired += remaining
        else:
            upcoming.append((moment, remaining))
    next_day = upcoming[0][0][:10] if upcoming else None
    available = totals.points_balance - expired
    return {
        "customerId": customer_id,
        "totalPointsBalance": available,
        "totalPointsValue": 0,
        "availablePointsBalance": available,
        "availablePointsValue": 0,
        "pendingPoints": 0,
        "pendingPointsValue": 0,
        "currency": None,
        "pointsName": "points",
        "nextExpiringPointsAmount": sum(r for moment, r in upcoming if moment[:10] == next_day),
        "nextExpiringPointsValue": 0,
        "nextExpiringPointsDate": upcoming[0][0] if upcoming else None,
        "totalEarnedPoints": totals.points_earned,
    }


def preview(
    tx: Tx,
    account: Account,
    cache: ProgramCache,
    batch: EventBatch,
    *,
    now: str | None = None,
) -> dict[str, Any]:
    """``POST …/events/reward-preview``: what these events would earn, changing nothing.

    The same engine as Send Events runs on a copy of the customer's progress, event after
    event. Unlike Gameball's, every campaign an event concerns is listed (with ``eligible``
    false and the reason when it cannot be won now) and ``explanation`` shows each rule and
    condition with the value it saw. Tier changes the events would cause are not simulated.
    """
    profile = find_profile(tx, account, batch.customer_id)
    compiled = cache.get(tx, account.id)
    totals = reward_rows.totals(tx, account.id, profile.id)
    states = copy.deepcopy(totals.progress)
    now = now or utc_now()
    facts = Facts(
        now=datetime.fromisoformat(now.replace("Z", "+00:00")), tier_order=totals.tier_order
    )
    events = []
    for name, metadata in batch.events:
        if compiled is None or name not in compiled.by_event:
            events.append(_unknown_event(name))
            continue
        result = evaluate_event(compiled, states, name, metadata, facts, explain=True)
        campaigns = [_campaign_preview(check) for check in result.checks]
        events.append(
            {
                "eventName": name,
                "valid": True,
                "invalidReason": None,
                "totalPoints": sum(c["rewardPoints"] for c in campaigns),
                "campaigns": campaigns,
            }
        )
    return {
        "customerId": batch.customer_id,
        "totalPoints": sum(event["totalPoints"] for event in events),
        "events": events,
    }


def _unknown_event(name: str) -> dict[str, Any]:
    return {
        "eventName": name,
        "valid": False,
        "invalidReason": "EventNotFound",
        "totalPoints": 0,
        "campaigns": [],
    }


def _campaign_preview(check: CampaignCheck) -> dict[str, Any]:
    spec = check.campaign.spec
    reward = spec.reward
    gives_points = reward.points is not None or reward.points_per is not None
    return {
        "campaignId": spec.id,
        "campaignName": spec.name,
        "campaignEndDate": None if check.campaign.end is None else iso(check.campaign.end),
        "eligible": check.eligible,
        "reason": check.reason,
        "rewardType": "Points" if gives_points else None,
        "rewardPoints": check.points,
        "points": check.points,
        "timesAchieved": check.times,
        "progress": {
            "currentPercentage": check.progress_before,
            "wouldBePercentage": check.progress_after,
            "completionRewardPoints": reward.points,
            "completionRewardType": "Points" if gives_points else None,
        },
        "explanation": {
            "rules": [
                {
                    "event": rule.event,
                    "counted": rule.counted,
                    "count": rule.count,
                    "after": rule.after,
                    "conditions": [
                        {
                            "key": c.key,
                            "op": c.op,
                            "expected": c.expected,
                            "actual": c.actual,
                            "matched": c.matched,
                        }
                        for c in rule.conditions
                    ],
                }
                for rule in check.rules
            ]
        },
    }

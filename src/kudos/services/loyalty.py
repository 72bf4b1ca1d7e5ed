"""Read-back of what campaigns did for a customer, in Gameball v4's shapes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from kudos import errors
from kudos.domain import money
from kudos.domain.model import Account, Credentials, iso, utc_now
from kudos.domain.payload import EventBatch
from kudos.rules.engine import (
    ACHIEVED,
    CampaignCheck,
    CompiledCampaign,
    CompiledProgram,
    Facts,
    blocked_reason,
    evaluate_event,
    new_state,
    progress,
    state_of,
)
from kudos.rules.schema import EMPTY_PROGRAM, MAX_AWARD, Program
from kudos.services import accounts, identity, rewards
from kudos.services.customers import find_profile
from kudos.services.ingest import IngestContext
from kudos.services.rewards import ProgramCache
from kudos.storage import burn as burn_rows
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.profiles import decode_json


def balance(
    tx: Tx, account: Account, cache: ProgramCache, customer_id: str, *, now: str | None = None
) -> dict[str, Any]:
    """``GET …/customers/{id}/balance``: points that are in the balance, usable and expiring.

    Points whose expiry has passed leave the balance at that moment, even before the worker
    writes their ``Expiry`` entry; points that active holds reserve stay in the total but
    leave the available balance; pending points (a return window) are in neither. The
    ``…Value`` fields use the program's ``redemption.pointValue`` (0 without one).
    """
    profile = find_profile(tx, account, customer_id)
    totals = reward_rows.current_totals(tx, account.id, profile.id)
    now = now or utc_now()
    expired = 0
    upcoming: list[tuple[str, int]] = []
    for remaining, expires_at in reward_rows.expiring(tx, account.id, profile.id):
        moment = iso(expires_at)
        if moment <= now:
            expired += remaining
        else:
            upcoming.append((moment, remaining))
    next_day = upcoming[0][0][:10] if upcoming else None
    total = totals.points_balance - expired
    held = burn_rows.held_points(tx, account.id, profile.id, now)
    available = max(0, total - held)
    pending = burn_rows.pending_total(tx, account.id, profile.id)
    program = _program_of(tx, account, cache)
    value = _point_value(program)
    next_amount = sum(r for moment, r in upcoming if moment[:10] == next_day)
    return {
        "customerId": customer_id,
        "totalPointsBalance": total,
        "totalPointsValue": _worth(total, value),
        "availablePointsBalance": available,
        "availablePointsValue": _worth(available, value),
        "heldPoints": min(held, total),
        "pendingPoints": pending,
        "pendingPointsValue": _worth(pending, value),
        "currency": program.currency if program is not None else None,
        "pointsName": "points",
        "nextExpiringPointsAmount": next_amount,
        "nextExpiringPointsValue": _worth(next_amount, value),
        "nextExpiringPointsDate": upcoming[0][0] if upcoming else None,
        "totalEarnedPoints": totals.points_earned,
    }


def _program_of(tx: Tx, account: Account, cache: ProgramCache) -> Program | None:
    """The program in force, for its money settings (none when it cannot be loaded: the
    balance still reads)."""
    found = cache.lookup(tx, account.id)
    return found.program if isinstance(found, CompiledProgram) else None


def _point_value(program: Program | None) -> Decimal | None:
    if program is None or program.redemption is None:
        return None
    return money.decimal(program.redemption.point_value)


def _worth(points: int, value: Decimal | None) -> int | float:
    return 0 if value is None else money.as_number(money.value_of(points, value))


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
    totals = reward_rows.current_totals(tx, account.id, profile.id)
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


MAX_ADJUSTMENT = MAX_AWARD  # one manual credit or debit: no more than one campaign award


@dataclass(slots=True)
class AdjustPoints:
    """``POST /api/kudos/v1/customers/{id}/points`` as writer work: a manual credit or debit."""

    context: IngestContext
    credentials: Credentials
    customer_id: str
    points: int
    reason: str
    now: str = field(default_factory=utc_now)
    account: Account | None = None

    def prepare(self, tx: Tx) -> None:
        if self.points == 0 or abs(self.points) > MAX_ADJUSTMENT:
            raise errors.InvalidValue(
                f"Invalid value: 'points' must be a non-zero whole number of at most"
                f" {MAX_ADJUSTMENT:,} either way."
            )
        self.account = accounts.authenticate(tx, self.context.keyring, self.credentials)

    def lock_keys(self) -> list[str]:
        assert self.account is not None
        return identity.lock_key(self.account, self.customer_id, email=None, mobile=None)

    def apply(self, tx: Tx) -> dict[str, Any]:
        assert self.account is not None
        profile = find_profile(tx, self.account, self.customer_id)
        totals = rewards.adjust_points(
            tx,
            self.context.programs.get(tx, self.account.id),
            account_id=self.account.id,
            profile_id=profile.id,
            customer_id=self.customer_id,
            points=self.points,
            reason=self.reason,
            now=self.now,
        )
        return {
            "customerId": self.customer_id,
            "points": self.points,
            "pointsBalance": totals.points_balance,
            "totalEarnedPoints": totals.points_earned,
        }


ActivityType = Literal["CampaignRewarded", "TierUpgraded", "TierDowngraded", "Manual", "Expiry"]
MAX_PAGE = 200
DEFAULT_PAGE = 50
ACTIVITY_TYPES = frozenset(get_args(ActivityType))


def tier_progress(
    tx: Tx, account: Account, cache: ProgramCache, customer_id: str
) -> dict[str, Any]:
    """``GET …/customers/{id}/tier-progress``: the current and next tier, and the progress
    the tiering method counts."""
    profile = find_profile(tx, account, customer_id)
    totals = reward_rows.current_totals(tx, account.id, profile.id)
    compiled = cache.get(tx, account.id)
    tiers = sorted(compiled.program.tiers, key=lambda t: t.order) if compiled else []
    progress = rewards.tiering_progress(compiled.program, totals) if compiled else 0.0
    current = next((t for t in tiers if t.order == totals.tier_order), None)
    upcoming = next((t for t in tiers if t.min_progress > progress), None)
    return {
        "customerId": customer_id,
        "current": _tier(current),
        "next": _tier(upcoming),
        "progress": progress,
        "tieringMethod": compiled.program.tiering.method if compiled else "points",
    }


def _tier(tier: Any) -> dict[str, Any] | None:
    if tier is None:
        return None
    return {"order": tier.order, "name": tier.name, "minProgress": tier.min_progress}


def campaigns_progress(
    tx: Tx, account: Account, cache: ProgramCache, customer_id: str, *, now: str | None = None
) -> list[dict[str, Any]]:
    """``GET …/customers/{id}/reward-campaigns-progress``: every campaign of the program in
    force with how far the customer is and whether they can still win it."""
    profile = find_profile(tx, account, customer_id)
    compiled = cache.get(tx, account.id)
    if compiled is None:
        return []
    totals = reward_rows.current_totals(tx, account.id, profile.id)
    moment = datetime.fromisoformat((now or utc_now()).replace("Z", "+00:00"))
    facts = Facts(now=moment, tier_order=totals.tier_order)
    found = []
    for campaign in compiled.campaigns:
        state = state_of(campaign, totals.progress) or new_state(campaign)
        spec = campaign.spec
        found.append(
            {
                "rewardsCampaignId": spec.id,
                "rewardsCampaignName": spec.name,
                "isUnlocked": state[ACHIEVED] > 0,
                "completionPercentage": progress(campaign, state),
                "achievedCount": state[ACHIEVED],
                "canAchieve": blocked_reason(campaign, state, facts) is None,
                "rewardCampaignConfiguration": campaign_configuration(campaign),
            }
        )
    return found


def campaign_configuration(campaign: CompiledCampaign) -> dict[str, Any]:
    """A campaign as ``GET …/configurations/reward-campaigns`` describes it."""
    spec = campaign.spec
    return {
        "id": spec.id,
        "name": spec.name,
        "isRepeatable": spec.repeat.max_achievements != 1,
        "maxAchievement": spec.repeat.max_achievements,
        "perDay": spec.repeat.per_day,
        "activation": {
            "startDate": None if campaign.start is None else iso(campaign.start),
            "endDate": None if campaign.end is None else iso(campaign.end),
        },
        "availability": {"tags": list(spec.audience.tags), "minTier": spec.audience.min_tier},
        "rewards": spec.reward.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def configured_campaigns(tx: Tx, account: Account, cache: ProgramCache) -> list[dict[str, Any]]:
    compiled = cache.get(tx, account.id)
    return [campaign_configuration(c) for c in compiled.campaigns] if compiled else []


def configured_tiers(tx: Tx, account: Account, cache: ProgramCache) -> dict[str, Any]:
    compiled = cache.get(tx, account.id)
    program = compiled.program if compiled else EMPTY_PROGRAM
    return {
        "tieringMethod": program.tiering.method,
        "tiers": [
            {**(_tier(t) or {}), "entryRewardPoints": t.entry_reward_points}
            for t in sorted(program.tiers, key=lambda t: t.order)
        ],
    }


def activities(
    tx: Tx,
    account: Account,
    customer_id: str,
    *,
    activity_type: str | None,
    start_after: int | None,
    limit: int,
) -> dict[str, Any]:
    """``GET …/customers/{id}/activities``: newest first, cursor ``startAfter``."""
    _check_page(limit)
    if activity_type is not None and activity_type not in ACTIVITY_TYPES:
        raise errors.InvalidValue(
            f"Invalid value: 'activityType' is one of {', '.join(sorted(ACTIVITY_TYPES))}."
        )
    profile = find_profile(tx, account, customer_id)
    rows = reward_rows.activities_page(
        tx, account.id, profile.id, kind=activity_type, before=start_after, limit=limit + 1
    )
    return {
        "activities": [_activity(row, customer_id) for row in rows[:limit]],
        "count": min(len(rows), limit),
        "hasMore": len(rows) > limit,
    }


def _activity(row: Any, customer_id: str) -> dict[str, Any]:
    """A history row as an activity (see ``reward_rows.activities_page`` for its columns)."""
    row_id, kind, campaign_id, direction, points, reason, version, event_id = row[:8]
    times, score, badge, data, created_at = row[8:]
    found = {
        "activityId": row_id,
        "activityType": kind,
        "activityDate": iso(created_at),
        "customerId": customer_id,
        "campaignId": campaign_id,
        "points": -points if direction == "-" else points,
    }
    if kind == "CampaignRewarded":
        found |= {
            "campaignName": reason,
            "campaignVersion": version,
            "timesAchieved": times,
            "score": score,
            "badge": badge,
            "eventId": event_id,
        }
    elif kind == "Manual":
        found["reason"] = reason
    if data is not None:
        found |= decode_json(data)
    return found


TRANSACTION_TYPES = frozenset(
    {
        "Reward",
        "TierEntry",
        "Manual",
        "Expiry",
        "Redemption",
        "Refund",
        "Cancel",
        "PaymentReward",
        "ManualReward",
        "ManualDeduction",
    }
)


def transactions(
    tx: Tx,
    account: Account,
    customer_id: str,
    *,
    direction: str | None,
    start_after: int | None,
    limit: int,
    status: str | None = None,
    kind: str | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """``GET …/transactions?customerId=``: the points ledger, newest first, narrowed by
    ``direction``, ``status`` (Active, Pending, Expired) and ``type``."""
    _check_page(limit)
    if direction is not None and direction not in ("+", "-"):
        raise errors.InvalidValue("Invalid value: 'direction' is + or -.")
    if status is not None and status not in reward_rows.STATUSES:
        raise errors.InvalidValue(
            f"Invalid value: 'status' is one of {', '.join(reward_rows.STATUSES)}."
        )
    if kind is not None and kind not in TRANSACTION_TYPES:
        raise errors.InvalidValue(
            f"Invalid value: 'type' is one of {', '.join(sorted(TRANSACTION_TYPES))}."
        )
    profile = find_profile(tx, account, customer_id)
    now = now or utc_now()
    rows = reward_rows.ledger_page(
        tx,
        account.id,
        profile.id,
        direction=direction,
        before=start_after,
        limit=limit + 1,
        kind=kind,
        status=status,
        now=now,
    )
    return {
        "transactions": [ledger_entry(row, customer_id, now) for row in rows[:limit]],
        "count": min(len(rows), limit),
        "hasMore": len(rows) > limit,
    }


def ledger_entry(row: Any, customer_id: str, now: str) -> dict[str, Any]:
    """One ledger row (``storage.rewards.ledger_page``'s columns) as a Gameball transaction."""
    expires = None if row[11] is None else iso(row[11])
    expired = row[2] == "+" and expires is not None and expires <= now and row[4] > 0
    pending = row[14] is not None
    details = {} if row[15] is None else decode_json(row[15])
    return {
        "transactionId": row[0],
        "gameballTransactionId": str(row[0]),
        "clientTransactionId": row[13],
        "customerId": customer_id,
        "type": row[1],
        "direction": row[2],
        "points": row[3],
        "remainingPoints": row[4],
        "amount": details.get("amount"),
        "reason": row[5],
        "achievedRewardCampaignId": row[6],
        "campaignVersion": row[7],
        "eventId": row[8],
        "pointsBalanceBefore": row[9],
        "pointsBalanceAfter": row[10],
        "expiryDate": expires,
        "status": "Pending" if pending else "Expired" if expired else "Active",
        "pendingUntil": iso(row[14]) if pending else None,
        "transactionTime": iso(row[12]),
    }


def _check_page(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise errors.InvalidValue(f"Invalid value: 'limit' must be 1 to {MAX_PAGE}.")

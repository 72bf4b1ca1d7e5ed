"""``GET …/configurations/redemption`` and ``…/cashback``, in Gameball's shapes."""

from __future__ import annotations

from typing import Any

from kudos.domain import money
from kudos.rules.engine import CompiledProgram
from kudos.rules.schema import CashbackRate


def redemption(compiled: CompiledProgram | None) -> dict[str, Any]:
    """What a point is worth (``redemptionFactor`` null: redemption is not configured)."""
    program = compiled.program if compiled is not None else None
    settings = program.redemption if program is not None else None
    return {
        "redemptionFactor": None if settings is None else settings.point_value,
        "minPoints": 0 if settings is None else settings.min_points,
        "holdMinutes": 10 if settings is None else settings.hold_minutes,
        "currency": program.currency if program is not None else None,
        "redemptionRules": [],
    }


def cashback(compiled: CompiledProgram | None) -> dict[str, Any]:
    """The program's cashback rates (``defaultCashbackRule`` null: orders earn nothing by
    themselves)."""
    program = compiled.program if compiled is not None else None
    settings = program.cashback if program is not None else None
    if settings is None or program is None:
        return {"defaultCashbackRule": None, "tierCashbackRules": [], "returnWindowDays": 0}
    value = program.redemption.point_value if program.redemption is not None else None
    return {
        "defaultCashbackRule": _rule(settings, value),
        "tierCashbackRules": [
            {"tierName": name, **_rule(rate, value)} for name, rate in settings.by_tier.items()
        ],
        "returnWindowDays": settings.return_window_days,
    }


def _rule(rate: CashbackRate, point_value: float | None) -> dict[str, Any]:
    """Gameball's rule: ``rewardWalletFactor`` points per ``amountRewardThreshold`` paid, and
    ``rewardFactor`` the share of the amount given back (percent; null without a point
    value)."""
    factor = None
    if point_value is not None:
        share = money.decimal(rate.points) * money.decimal(point_value) / money.decimal(rate.every)
        factor = float(share * 100)
    return {
        "amountRewardThreshold": rate.every,
        "rewardWalletFactor": rate.points,
        "rewardRankFactor": 0,
        "rewardFactor": factor,
    }

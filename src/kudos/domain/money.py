"""Money and points: the burn side's arithmetic, exact and pure (docs/redemption.md).

Amounts are ``Decimal`` (at most ``MONEY_PLACES`` decimals, below ``MAX_MONEY``: a JSON
number holds them exactly), points are ``int``. The rules, one per direction:

- money to points to spend (a hold or redeem by ``amount``): the points the amount covers,
  rounded down; the amount answered is what those points are worth (never more than asked);
- money to points to earn (cashback): ``amount * points / every``, rounded down once for the
  whole, at most ``MAX_AWARD``; each line's share is shown with its decimals and rounded down
  on its own (lines are an explanation: the order's points are the whole's);
- a partial refund gives back and claws back in proportion to the amount refunded so far,
  rounded half up on the running total, so partial refunds that add up to the whole move
  exactly the points the whole would.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext

from kudos.rules.schema import MAX_AWARD, MAX_MONEY, MONEY_PLACES

QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
PRECISION = 60  # digits: MAX_MONEY * MAX_AWARD with every decimal, and room to spare
ZERO = Decimal(0)


def decimal(value: float | int | Decimal) -> Decimal:
    """A money value as typed (a float's shortest repr: 0.1 is 0.1, not its binary value)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def money_problem(value: Decimal, *, allow_zero: bool = False) -> str | None:
    """Why ``value`` is not an amount kudos takes, or ``None``."""
    if not value.is_finite():
        return "must be a finite number"
    if value < 0 or (value == 0 and not allow_zero):
        return "must be zero or more" if allow_zero else "must be more than zero"
    if value > MAX_MONEY:
        return f"must be at most {MAX_MONEY:,}"
    if value != value.quantize(QUANTUM, rounding=ROUND_FLOOR):
        return f"must have at most {MONEY_PLACES} decimals"
    return None


def points_covered(amount: Decimal, point_value: Decimal) -> int:
    """The whole points ``amount`` buys at ``point_value`` each (rounded down)."""
    with localcontext() as context:
        context.prec = PRECISION
        return int((amount / point_value).to_integral_value(rounding=ROUND_FLOOR))


def value_of(points: int, point_value: Decimal) -> Decimal:
    """What ``points`` are worth in money."""
    with localcontext() as context:
        context.prec = PRECISION
        return (Decimal(points) * point_value).normalize()


def earned(amount: Decimal, *, points: int, every: Decimal) -> Decimal:
    """Cashback points with their decimals: ``amount * points / every``."""
    with localcontext() as context:
        context.prec = PRECISION
        return amount * Decimal(points) / every


def whole(points: Decimal) -> int:
    """Decimal points rounded down, at most ``MAX_AWARD`` (one award's ceiling)."""
    return min(int(points.to_integral_value(rounding=ROUND_FLOOR)), MAX_AWARD)


def shares(weights: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """``total`` split in proportion to ``weights`` (equal parts when they are all zero)."""
    if not weights:
        return []
    with localcontext() as context:
        context.prec = PRECISION
        whole_weight = sum(weights, ZERO)
        if whole_weight == 0:
            return [total / len(weights)] * len(weights)
        return [total * weight / whole_weight for weight in weights]


def in_proportion(points: int, part: Decimal, whole_amount: Decimal) -> int:
    """``points * part / whole_amount`` rounded half up (all of them when the whole is 0)."""
    if whole_amount <= 0 or part >= whole_amount:
        return points
    with localcontext() as context:
        context.prec = PRECISION
        return int((Decimal(points) * part / whole_amount).to_integral_value(ROUND_HALF_UP))


def as_number(value: Decimal) -> int | float:
    """A money value for JSON: an integer when it is whole (``10``, not ``10.0``)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)

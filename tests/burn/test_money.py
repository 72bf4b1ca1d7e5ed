"""The burn side's arithmetic (``domain.money``): exact, pure, one rounding rule per direction."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kudos.domain import money
from kudos.rules.schema import MAX_AWARD


def test_a_float_point_value_is_read_as_typed_not_as_its_binary_value() -> None:
    assert money.decimal(0.1) == Decimal("0.1")
    assert money.decimal(0.3) == Decimal("0.3")
    assert money.decimal(7) == Decimal(7)


@pytest.mark.parametrize(
    ("amount", "value", "points", "worth"),
    [
        ("10", "0.1", 100, "10"),
        ("1", "0.3", 3, "0.9"),  # 3.33… points: three whole ones, worth 0.9
        ("0.99", "0.333333", 2, "0.666666"),
        ("0.05", "0.1", 0, "0"),  # below one point
        ("1000000000", "0.000001", 10**15, "1000000000"),
    ],
)
def test_an_amount_buys_the_whole_points_it_covers_and_is_worth_no_more(
    amount: str, value: str, points: int, worth: str
) -> None:
    covered = money.points_covered(Decimal(amount), Decimal(value))
    assert covered == points
    assert money.value_of(covered, Decimal(value)) == Decimal(worth)
    assert money.value_of(covered, Decimal(value)) <= Decimal(amount)


def test_cashback_is_floored_once_and_capped_at_one_award() -> None:
    assert money.whole(money.earned(Decimal("99.99"), points=1, every=Decimal(1))) == 99
    assert money.whole(money.earned(Decimal("10"), points=1, every=Decimal("3"))) == 3
    huge = money.earned(Decimal(10**9), points=10, every=Decimal(1))
    assert huge == Decimal(10**10)
    assert money.whole(huge) == MAX_AWARD


def test_line_shares_add_up_to_the_whole_with_their_decimals() -> None:
    shares = money.shares([Decimal(60), Decimal(40)], Decimal("91.25"))
    assert shares == [Decimal("54.75"), Decimal("36.5")]
    assert sum(shares) == Decimal("91.25")
    assert money.shares([Decimal(0), Decimal(0)], Decimal(10)) == [Decimal(5), Decimal(5)]
    assert money.shares([], Decimal(10)) == []


@pytest.mark.parametrize(
    ("points", "parts", "whole"),
    [
        (100, ["33.33", "33.33", "33.34"], "100"),
        (7, ["1", "1", "1"], "3"),
        (1, ["0.5", "0.5"], "1"),
        (999_999_999, ["0.000001", "999999999.999999"], "1000000000"),
    ],
)
def test_partial_refunds_move_in_proportion_and_add_up_to_the_full_refund(
    points: int, parts: list[str], whole: str
) -> None:
    refunded = Decimal(0)
    moved = 0
    steps = []
    for part in parts:
        refunded += Decimal(part)
        step = money.in_proportion(points, refunded, Decimal(whole)) - moved
        assert step >= 0
        steps.append(step)
        moved += step
    assert moved == points
    assert money.in_proportion(points, Decimal(whole), Decimal(whole)) == points


def test_proportion_of_a_zero_amount_is_everything() -> None:
    assert money.in_proportion(40, Decimal(0), Decimal(0)) == 40


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("Infinity"), "must be a finite number"),
        (Decimal("-1"), "must be more than zero"),
        (Decimal(0), "must be more than zero"),
        (Decimal("1000000000.000001"), "must be at most 1,000,000,000"),
        (Decimal("0.0000001"), "must have at most 6 decimals"),
    ],
)
def test_money_problems_are_named(value: Decimal, problem: str) -> None:
    assert money.money_problem(value) == problem


def test_money_that_is_fine_has_no_problem() -> None:
    assert money.money_problem(Decimal("0.000001")) is None
    assert money.money_problem(Decimal(0), allow_zero=True) is None
    assert money.money_problem(Decimal(10**9)) is None


def test_money_is_answered_as_an_integer_when_whole() -> None:
    assert money.as_number(Decimal("10.000")) == 10
    assert isinstance(money.as_number(Decimal("10.000")), int)
    assert money.as_number(Decimal("0.9")) == 0.9

"""Identifier normalisation for channel merging (pure)."""

from __future__ import annotations

import pytest

from kudos.domain.identity import merge_identifier, normalize_email, normalize_mobile


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"


@pytest.mark.parametrize(
    "raw", [None, "", "  ", "null", "NULL", "None", "n/a", "N/A", "undefined", "-", "no-at-sign"]
)
def test_placeholder_emails_are_no_identifier(raw: str | None) -> None:
    assert normalize_email(raw) is None


def test_mobiles_keep_only_a_leading_plus_and_digits() -> None:
    assert normalize_mobile(" +20 (100) 555-12 34 ") == "+201005551234"
    assert normalize_mobile("0100 555 1234") == "01005551234"


@pytest.mark.parametrize("raw", [None, "", "null", "none", "n/a", "0", "000000", "12", "abc"])
def test_placeholder_mobiles_are_no_identifier(raw: str | None) -> None:
    assert normalize_mobile(raw) is None


def test_the_account_mode_picks_the_identifier() -> None:
    assert merge_identifier("off", email="a@b.c", mobile="+123456") is None
    assert merge_identifier("email", email="A@B.C", mobile="+123456") == "a@b.c"
    assert merge_identifier("mobile", email="a@b.c", mobile="+12 34 56") == "+123456"

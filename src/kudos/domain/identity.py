"""Channel-merging identifiers: normalisation and placeholder filtering."""

from __future__ import annotations

import re
from typing import Literal

MergeMode = Literal["off", "email", "mobile"]
MERGE_MODES: tuple[MergeMode, ...] = ("off", "email", "mobile")

# Values shops send when they have no real identifier. Compared after normalisation (trimmed,
# lower-cased); docs/channel-merging.md lists them.
PLACEHOLDERS = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "-",
        "0",
        "test@test.com",
        "noemail@noemail.com",
        "no@email.com",
        "email@example.com",
    }
)

_NOT_MOBILE_CHARS = re.compile(r"[^0-9]")


def normalize_email(raw: str | None) -> str | None:
    """Trim and lower-case an email; ``None`` for placeholders and values without an ``@``."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in PLACEHOLDERS or "@" not in value:
        return None
    return value


def normalize_mobile(raw: str | None) -> str | None:
    """Reduce a mobile number to an optional leading ``+`` and digits; ``None`` for placeholders."""
    if raw is None:
        return None
    value = raw.strip()
    if value.lower() in PLACEHOLDERS:
        return None
    digits = _NOT_MOBILE_CHARS.sub("", value)
    if len(digits) < 4 or set(digits) == {"0"}:
        return None
    return ("+" if value.startswith("+") else "") + digits


def merge_identifier(mode: MergeMode, *, email: str | None, mobile: str | None) -> str | None:
    """The normalised identifier the account merges on, or ``None`` when there is none."""
    if mode == "email":
        return normalize_email(email)
    if mode == "mobile":
        return normalize_mobile(mobile)
    return None


def customer_lock_key(account_id: int, customer_id: str) -> str:
    """The key writers serialize on for one customerId (PostgreSQL advisory locks)."""
    return f"customer:{account_id}:{customer_id}"

"""Profiles, the customerIds that point at them, and merge records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from kudos.domain.identity import MergeMode
from kudos.domain.model import iso, utc_hour
from kudos.storage import analytics as analytics_rows
from kudos.storage.db import Row, Tx

_KEY_COLUMN = {"email": "email_key", "mobile": "mobile_key"}
_PROFILE_COLUMNS = (
    "p.id, p.created_at, p.updated_at, p.email, p.mobile, p.email_key, p.mobile_key, p.attributes"
)


@dataclass(slots=True)
class ProfileRow:
    id: int
    created_at: Any
    updated_at: Any
    email: str | None
    mobile: str | None
    email_key: str | None
    mobile_key: str | None
    attributes: dict[str, Any]

    def identifier(self, mode: MergeMode) -> str | None:
        return self.email_key if mode == "email" else self.mobile_key if mode == "mobile" else None


def decode_json(value: Any) -> Any:
    """A JSON column as Python (PostgreSQL's driver already decodes jsonb)."""
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def _profile(row: Row | None) -> ProfileRow | None:
    if row is None:
        return None
    return ProfileRow(
        id=row[0],
        created_at=row[1],
        updated_at=row[2],
        email=row[3],
        mobile=row[4],
        email_key=row[5],
        mobile_key=row[6],
        attributes=decode_json(row[7]),
    )


def by_customer_id(tx: Tx, account_id: int, customer_id: str) -> ProfileRow | None:
    row = tx.one(
        f"SELECT {_PROFILE_COLUMNS} FROM customer_ids c JOIN profiles p ON p.id = c.profile_id"
        " WHERE c.account_id = ? AND c.customer_id = ?",
        (account_id, customer_id),
    )
    return _profile(row)


def id_for_customer(tx: Tx, account_id: int, customer_id: str) -> int | None:
    row = tx.one(
        "SELECT profile_id FROM customer_ids WHERE account_id = ? AND customer_id = ?",
        (account_id, customer_id),
    )
    return None if row is None else int(row[0])


def ids_for_customers(tx: Tx, account_id: int, customer_ids: list[str]) -> list[tuple[str, int]]:
    """``(customer_id, profile_id)`` for those of ``customer_ids`` that exist."""
    rows = tx.db.select_in(
        tx,
        "SELECT customer_id, profile_id FROM customer_ids"
        " WHERE account_id = ? AND customer_id IN ({marks})",
        (account_id,),
        customer_ids,
    )
    return [(row[0], int(row[1])) for row in rows]


def by_identifier(tx: Tx, account_id: int, mode: MergeMode, key: str) -> ProfileRow | None:
    column = _KEY_COLUMN[mode]
    row = tx.one(
        f"SELECT {_PROFILE_COLUMNS} FROM profiles p"
        f" WHERE p.account_id = ? AND p.{column} = ? AND p.merged_into IS NULL",
        (account_id, key),
    )
    return _profile(row)


def insert(
    tx: Tx,
    account_id: int,
    *,
    email: str | None,
    mobile: str | None,
    email_key: str | None,
    mobile_key: str | None,
    attributes: dict[str, Any],
    now: str,
) -> int:
    row = tx.one(
        "INSERT INTO profiles (account_id, created_at, updated_at, email, mobile, email_key,"
        " mobile_key, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, now, now, email, mobile, email_key, mobile_key, encode(attributes)),
    )
    assert row is not None  # RETURNING always yields the new row
    _count_member(tx, account_id, now, 1)
    return int(row[0])


def _count_member(tx: Tx, account_id: int, created_at: Any, change: int) -> None:
    """A customer joins (or, merged away, leaves) the count of the hour it was created in
    (analytics' enrolled and new customers)."""
    tx.tally(
        analytics_rows.ADD_MEMBERS,
        (account_id, utc_hour(iso(created_at)), tx.db.shard),
        change,
    )


def update(tx: Tx, profile: ProfileRow, now: str) -> None:
    tx.execute(
        "UPDATE profiles SET updated_at = ?, email = ?, mobile = ?, email_key = ?,"
        " mobile_key = ?, attributes = ? WHERE id = ?",
        (
            now,
            profile.email,
            profile.mobile,
            profile.email_key,
            profile.mobile_key,
            encode(profile.attributes),
            profile.id,
        ),
    )


def add_customer_id(tx: Tx, account_id: int, customer_id: str, profile_id: int, now: str) -> None:
    tx.execute(
        "INSERT INTO customer_ids (account_id, customer_id, profile_id, created_at)"
        " VALUES (?, ?, ?, ?)",
        (account_id, customer_id, profile_id, now),
    )


def count_customer_ids(tx: Tx, account_id: int, profile_id: int) -> int:
    """How many customerIds point at the profile."""
    row = tx.one(
        "SELECT count(*) FROM customer_ids WHERE account_id = ? AND profile_id = ?",
        (account_id, profile_id),
    )
    return int(row[0]) if row else 0


def customer_ids_of(tx: Tx, account_id: int, profile_id: int) -> list[str]:
    rows = tx.all(
        "SELECT customer_id FROM customer_ids WHERE account_id = ? AND profile_id = ?"
        " ORDER BY created_at, customer_id",
        (account_id, profile_id),
    )
    return [row[0] for row in rows]


def absorb(
    tx: Tx, account_id: int, *, winner: int, loser: int, kind: str, identifier: str, now: str
) -> list[str]:
    """Point the loser's customerIds at the winner, retire the loser, record the merge."""
    moved = customer_ids_of(tx, account_id, loser)
    tx.execute(
        "UPDATE customer_ids SET profile_id = ? WHERE account_id = ? AND profile_id = ?",
        (winner, account_id, loser),
    )
    retired = tx.one(
        "UPDATE profiles SET merged_into = ?, email_key = NULL, mobile_key = NULL,"
        " updated_at = ? WHERE id = ? RETURNING created_at",
        (winner, now, loser),
    )
    if retired is not None:
        _count_member(tx, account_id, retired[0], -1)
    tx.execute(
        "INSERT INTO profile_merges (account_id, winner_id, loser_id, identifier_kind,"
        " identifier, customer_ids, merged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account_id, winner, loser, kind, identifier, encode(moved), now),
    )
    return moved


def merges_into(tx: Tx, account_id: int, profile_id: int) -> list[Row]:
    return tx.all(
        "SELECT loser_id, identifier_kind, identifier, customer_ids, merged_at"
        " FROM profile_merges WHERE account_id = ? AND winner_id = ? ORDER BY id",
        (account_id, profile_id),
    )


def encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()

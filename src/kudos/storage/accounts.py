"""Account rows."""

from __future__ import annotations

from kudos.domain.model import Account
from kudos.storage.db import Row, Tx

_COLUMNS = (
    "id, name, channel_merging, high_security, rate_limit, secret_key_hash, created_at, timezone"
)


def _account(row: Row | None) -> Account | None:
    if row is None:
        return None
    return Account(
        id=row[0],
        name=row[1],
        channel_merging=row[2],
        high_security=bool(row[3]),
        rate_limit=row[4],
        secret_key_hash=row[5],
        created_at=str(row[6]),
        timezone=row[7],
    )


def by_api_key_hash(tx: Tx, api_key_hash: str) -> Account | None:
    return _account(
        tx.one(f"SELECT {_COLUMNS} FROM accounts WHERE api_key_hash = ?", (api_key_hash,))
    )


def by_name(tx: Tx, name: str) -> Account | None:
    return _account(tx.one(f"SELECT {_COLUMNS} FROM accounts WHERE name = ?", (name,)))


def list_all(tx: Tx) -> list[tuple[Account, str]]:
    """Every account with its API-key hint, oldest first."""
    rows = tx.all(f"SELECT {_COLUMNS}, api_key_hint FROM accounts ORDER BY id")
    return [(_account(row[:8]), row[8]) for row in rows]  # type: ignore[misc]


def count(tx: Tx) -> int:
    row = tx.one("SELECT count(*) FROM accounts")
    return int(row[0]) if row else 0


def insert(
    tx: Tx,
    *,
    name: str,
    api_key_hash: str,
    api_key_hint: str,
    secret_key_hash: str,
    secret_key_encrypted: str,
    now: str,
) -> None:
    tx.execute(
        "INSERT INTO accounts (name, api_key_hash, api_key_hint, secret_key_hash,"
        " secret_key_encrypted, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (name, api_key_hash, api_key_hint, secret_key_hash, secret_key_encrypted, now),
    )


def replace_keys(
    tx: Tx,
    account_id: int,
    *,
    api_key_hash: str,
    api_key_hint: str,
    secret_key_hash: str,
    secret_key_encrypted: str,
    now: str,
) -> None:
    tx.execute(
        "UPDATE accounts SET api_key_hash = ?, api_key_hint = ?, secret_key_hash = ?,"
        " secret_key_encrypted = ?, keys_rotated_at = ? WHERE id = ?",
        (api_key_hash, api_key_hint, secret_key_hash, secret_key_encrypted, now, account_id),
    )


def update_settings(
    tx: Tx,
    account_id: int,
    *,
    channel_merging: str,
    high_security: bool,
    rate_limit: str,
    timezone: str,
) -> None:
    tx.execute(
        "UPDATE accounts SET channel_merging = ?, high_security = ?, rate_limit = ?,"
        " timezone = ? WHERE id = ?",
        (channel_merging, high_security, rate_limit, timezone, account_id),
    )


def name_of(tx: Tx, account_id: int) -> str:
    row = tx.one("SELECT name FROM accounts WHERE id = ?", (account_id,))
    return "" if row is None else str(row[0])

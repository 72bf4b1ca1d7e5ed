"""Accounts: creation, key rotation, settings, and authenticating a request's keys."""

from __future__ import annotations

from dataclasses import dataclass

from kudos import errors
from kudos.analytics.periods import checked_zone
from kudos.domain.identity import MERGE_MODES
from kudos.domain.model import Account, Credentials, utc_now
from kudos.domain.ratelimit import parse_policy
from kudos.services.security import KeyPair, Keyring
from kudos.storage import accounts as account_rows
from kudos.storage import analytics as analytics_rows
from kudos.storage.db import Tx

DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class AccountSummary:
    name: str
    api_key_hint: str
    channel_merging: str
    high_security: bool
    rate_limit: str
    created_at: str
    timezone: str


def create(tx: Tx, keyring: Keyring, name: str) -> KeyPair:
    """Create an account and return its keys (the only time the secret key is shown)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise errors.InvalidValue("Invalid value: account names are 1 to 100 characters.")
    if account_rows.by_name(tx, name) is not None:
        raise errors.InvalidValue(f"Invalid value: an account named {name!r} already exists.")
    pair = keyring.new_pair()
    account_rows.insert(tx, name=name, now=utc_now(), **_stored_keys(keyring, pair))
    return pair


def ensure_default(tx: Tx, keyring: Keyring) -> KeyPair | None:
    """Create the default account when there is none at all; return its keys if created."""
    if account_rows.count(tx) > 0:
        return None
    return create(tx, keyring, DEFAULT_ACCOUNT)


def rotate_keys(tx: Tx, keyring: Keyring, name: str) -> KeyPair:
    """Replace both keys; the old ones stop working with this commit."""
    account = named(tx, name)
    pair = keyring.new_pair()
    account_rows.replace_keys(tx, account.id, now=utc_now(), **_stored_keys(keyring, pair))
    return pair


def configure(
    tx: Tx,
    name: str,
    *,
    channel_merging: str | None = None,
    high_security: bool | None = None,
    rate_limit: str | None = None,
    timezone: str | None = None,
) -> Account:
    """Change an account's settings; unspecified ones stay as they are. A new time zone
    leaves the account's analytics stale (their days are local days) until a rebuild."""
    account = named(tx, name)
    merging = channel_merging if channel_merging is not None else account.channel_merging
    if merging not in MERGE_MODES:
        raise errors.InvalidValue("Invalid value: channel merging is off, email or mobile.")
    limit = rate_limit if rate_limit is not None else account.rate_limit
    try:
        parse_policy(limit)
    except ValueError as exc:
        raise errors.InvalidValue(f"Invalid value: {exc}.") from None
    security = account.high_security if high_security is None else high_security
    zone = account.timezone if timezone is None else checked_zone(timezone)
    if zone != account.timezone and analytics_rows.has_events(tx, account.id):
        analytics_rows.mark_stale(tx, account.id, "the time zone changed")
    account_rows.update_settings(
        tx,
        account.id,
        channel_merging=merging,
        high_security=security,
        rate_limit=limit,
        timezone=zone,
    )
    return named(tx, name)


def list_accounts(tx: Tx) -> list[AccountSummary]:
    return [
        AccountSummary(
            name=account.name,
            api_key_hint=hint,
            channel_merging=account.channel_merging,
            high_security=account.high_security,
            rate_limit=account.rate_limit,
            created_at=account.created_at,
            timezone=account.timezone,
        )
        for account, hint in account_rows.list_all(tx)
    ]


def lookup(tx: Tx, keyring: Keyring, api_key: str) -> Account | None:
    """The account whose API key this is, if any (no secret checked: a cheap gate, never the
    authority; ``authenticate`` is)."""
    return account_rows.by_api_key_hash(tx, keyring.api_key_hash(api_key))


def authenticate(tx: Tx, keyring: Keyring, credentials: Credentials) -> Account:
    """The account whose keys these are; raise ``AuthError`` / ``SecretKeyRequired``."""
    if not credentials.api_key:
        raise errors.AuthError()
    key_hash = keyring.api_key_hash(credentials.api_key)
    account: Account | None = tx.memo.get(key_hash)
    if account is None:
        account = account_rows.by_api_key_hash(tx, key_hash)
        if account is None:
            raise errors.AuthError()
        tx.memo[key_hash] = account
    secret = credentials.secret_key
    if secret is None:
        if credentials.secret_required or account.high_security:
            raise errors.SecretKeyRequired()
    elif not _secret_matches(tx, keyring, secret, account):
        raise errors.AuthError("Unauthorized: the secretkey does not match the apikey.")
    return account


def _secret_matches(tx: Tx, keyring: Keyring, secret: str, account: Account) -> bool:
    """The constant-time check, done once per transaction for each presented secret."""
    return tx.once((account.id, secret), keyring.check_secret, secret, account.secret_key_hash)


def named(tx: Tx, name: str) -> Account:
    account = account_rows.by_name(tx, name)
    if account is None:
        raise errors.AccountNotFound(f"No account named {name!r}.")
    return account


def _stored_keys(keyring: Keyring, pair: KeyPair) -> dict[str, str]:
    return {
        "api_key_hash": keyring.hash("api", pair.api_key),
        "api_key_hint": pair.api_key[:6] + "…",
        "secret_key_hash": keyring.hash("secret", pair.secret_key),
        "secret_key_encrypted": keyring.encrypt(pair.secret_key),
    }

"""Send Events as writer work: authenticate, rate-limit, resolve identity, append events.

``IngestEvents`` runs inside the writer's batch transaction (see ``storage.writer``):
``prepare`` authenticates and applies the rate limit, ``lock_keys`` names what must be
serialized across processes, and ``apply`` writes inside the request's savepoint. The event
catalog and daily rollups are aggregated over the whole batch by ``IngestHooks`` and written
once per batch. Campaign evaluation and webhook outbox rows join ``apply`` in later issues.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kudos import errors
from kudos.domain.catalog import merge_types, value_type
from kudos.domain.model import Account, Credentials, utc_now
from kudos.domain.payload import EventBatch
from kudos.domain.ratelimit import RateLimiter
from kudos.services import accounts, identity
from kudos.services.security import Keyring
from kudos.storage import events as event_rows
from kudos.storage import idempotency, profiles
from kudos.storage.db import Tx
from kudos.storage.profiles import ProfileRow, encode

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255


@dataclass
class IngestContext:
    """Process-wide collaborators for ingestion, built by the composition root."""

    keyring: Keyring
    limiter: RateLimiter = field(default_factory=RateLimiter)
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    replayed: bool
    profile_id: int | None


def request_hash(body: bytes) -> str:
    """The fingerprint an idempotency key is bound to."""
    return hashlib.sha256(body).hexdigest()


@dataclass(slots=True)
class IngestEvents:
    """One Send Events request, as writer work."""

    context: IngestContext
    batch: EventBatch
    credentials: Credentials
    idempotency_key: str | None = None
    body_hash: str | None = None
    received_at: str = field(default_factory=utc_now)
    account: Account | None = None

    def prepare(self, tx: Tx) -> None:
        self.account = accounts.authenticate(tx, self.context.keyring, self.credentials)
        account = self.account
        wait = self.context.limiter.hit(account.id, account.rate_limit, self.context.clock())
        if wait is not None:
            raise errors.RateLimited(retry_after=wait)

    def lock_keys(self) -> list[str]:
        account = self._account()
        keys = identity.lock_key(
            account, self.batch.customer_id, email=self.batch.email, mobile=self.batch.mobile
        )
        if self.idempotency_key is not None:
            keys.append(f"idempotency:{account.id}:{self.idempotency_key}")
        return keys

    def apply(self, tx: Tx) -> IngestOutcome:
        account = self._account()
        if self.idempotency_key is not None and self._seen_before(tx, account):
            return IngestOutcome(replayed=True, profile_id=None)
        profile = identity.resolve(
            tx, account, self.batch.customer_id, email=self.batch.email,
            mobile=self.batch.mobile, now=self.received_at,
        )
        if self.batch.attributes:
            _update_attributes(tx, profile, self.batch.attributes, self.received_at)
        event_rows.append(
            tx,
            (
                (account.id, profile.id, self.batch.customer_id, name, encode(metadata),
                 self.received_at)
                for name, metadata in self.batch.events
            ),
        )
        if self.idempotency_key is not None:
            assert self.body_hash is not None  # the API sets both together
            idempotency.remember(tx, account.id, self.idempotency_key, self.body_hash,
                                 self.received_at)
        return IngestOutcome(replayed=False, profile_id=profile.id)

    def _seen_before(self, tx: Tx, account: Account) -> bool:
        assert self.idempotency_key is not None
        found = idempotency.find(tx, account.id, self.idempotency_key)
        if found is None:
            return False
        first_hash, first_time = found
        if first_time < _iso_ago(self.received_at, IDEMPOTENCY_WINDOW):
            return False  # expired: the key starts over
        if first_hash != self.body_hash:
            raise errors.IdempotencyKeyReused()
        return True

    def _account(self) -> Account:
        assert self.account is not None, "prepare() runs before lock_keys() and apply()"
        return self.account


def _update_attributes(tx: Tx, profile: ProfileRow, attributes: dict[str, Any], now: str) -> None:
    profile.attributes = identity.merge_attributes(profile.attributes, attributes)
    profiles.update(tx, profile, now)


def _iso_ago(now_iso: str, delta: timedelta) -> str:
    now = datetime.fromisoformat(now_iso.replace("Z", "+00:00"))
    return (now - delta).astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class IngestHooks:
    """Aggregates the catalog and daily counts over a batch; one upsert per row per batch."""

    def __init__(self) -> None:
        self.begin()

    def begin(self) -> None:
        self._names: dict[tuple[int, str], list[Any]] = {}
        self._keys: dict[tuple[int, str, str], list[Any]] = {}
        self._daily: dict[tuple[int, str, str], int] = {}

    def item_applied(self, work: Any) -> None:
        if not isinstance(work, IngestEvents) or work.account is None:
            return
        account_id, seen = work.account.id, work.received_at
        day = seen[:10]
        for name, metadata in work.batch.events:
            _count(self._names, (account_id, name), seen, None)
            self._daily[(account_id, day, name)] = self._daily.get((account_id, day, name), 0) + 1
            for key, value in metadata.items():
                _count(self._keys, (account_id, name, key), seen, value_type(value))

    def flush(self, tx: Tx) -> None:
        if self._names:
            names = sorted(self._names.items())  # one lock order across concurrent writers
            event_rows.upsert_names(tx, [(*k, c, f, last) for k, (c, f, last, _) in names])
        if self._keys:
            keys = sorted(self._keys.items())
            event_rows.upsert_keys(tx, [(*k, t, c, f, last) for k, (c, f, last, t) in keys])
        if self._daily:
            event_rows.upsert_daily(tx, [(*k, c) for k, c in sorted(self._daily.items())])


def _count(table: dict[Any, list[Any]], key: Any, seen: str, kind: str | None) -> None:
    entry = table.get(key)
    if entry is None:
        table[key] = [1, seen, seen, kind]
        return
    entry[0] += 1
    entry[2] = seen
    if kind is not None:
        entry[3] = merge_types(entry[3], kind)

"""Send Events as writer work: authenticate, rate-limit, resolve identity, append events.

``IngestEvents`` runs inside the writer's batch transaction (see ``storage.writer``):
``prepare`` authenticates and applies the rate limit, ``lock_keys`` names what must be
serialized across processes, and ``apply`` writes (its events are staged for the batch's one
bulk insert, with ids the batch reserved) and runs the account's campaigns on them
(``services.rewards``). The event catalog and daily rollups are aggregated over the whole
batch by ``IngestHooks`` and written once per batch. ``apply`` also stages the webhook messages its
changes cause (``webhooks.outbox``), so they commit with them.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kudos import errors
from kudos.analytics import keep as analytics_keep
from kudos.domain.catalog import merge_types, type_name
from kudos.domain.model import Account, Credentials, iso_before, utc_now
from kudos.domain.payload import MAX_ID_LENGTH, EventBatch
from kudos.domain.ratelimit import RateLimiter
from kudos.services import accounts, identity, rewards
from kudos.services.maintenance import IDEMPOTENCY_WINDOW
from kudos.services.security import Keyring
from kudos.storage import burn as burn_rows
from kudos.storage import events as event_rows
from kudos.storage import idempotency
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.profiles import encode
from kudos.webhooks import outbox

MAX_IDEMPOTENCY_KEY = 255


@dataclass
class IngestContext:
    """Process-wide collaborators for ingestion, built by the composition root."""

    keyring: Keyring
    limiter: RateLimiter = field(default_factory=RateLimiter)
    # Program applies (``services.program``), counted apart from the Events requests.
    program_limiter: RateLimiter = field(default_factory=RateLimiter)
    # The burn side (Transactions and Orders), counted apart too.
    burn_limiter: RateLimiter = field(default_factory=RateLimiter)
    clock: Callable[[], float] = time.time
    programs: rewards.ProgramCache = field(default_factory=rewards.ProgramCache)
    analytics: bool = True  # keep analytics as events are stored (``analytics.keep``)


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
    event_ids: list[int] = field(default_factory=list)  # reserved by IngestHooks.prefetch
    # Answered from its idempotency key by the last ``apply``: it stored nothing, so the batch
    # counts nothing for it (``IngestHooks.item_applied``).
    replayed: bool = False
    profile_id: int = 0  # whose events they are, once applied (analytics counts them)

    def prepare(self, tx: Tx) -> None:
        if self.account is not None:  # a retried batch: already authenticated and counted
            return
        account = accounts.authenticate(tx, self.context.keyring, self.credentials)
        wait = self.context.limiter.hit(account.id, account.rate_limit, self.context.clock())
        if wait is not None:
            raise errors.RateLimited(retry_after=wait)
        self.account = account

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
        self.replayed = False  # a retried batch applies again: decide afresh
        if self.idempotency_key is not None and self._seen_before(tx, account):
            self.replayed = True
            return IngestOutcome(replayed=True, profile_id=None)
        batch = self.batch
        profile_id = self.profile_id = self._profile_id(tx, account)
        stored = self._stored_events()
        event_rows.append(
            tx,
            [
                (
                    event_id,
                    account.id,
                    profile_id,
                    batch.customer_id,
                    name,
                    encode(metadata),
                    self.received_at,
                )
                for event_id, name, metadata in stored
            ],
        )
        self._announce(tx, account, profile_id, stored)
        self._run_campaigns(tx, account, profile_id, stored)
        if self.idempotency_key is not None:
            assert self.body_hash is not None  # the API sets both together
            idempotency.remember(
                tx, account.id, self.idempotency_key, self.body_hash, self.received_at
            )
        return IngestOutcome(replayed=False, profile_id=profile_id)

    def _stored_events(self) -> list[rewards.StoredEvent]:
        """``(event id, name, metadata)`` of each event, with the ids the batch reserved."""
        pairs = zip(self.event_ids, self.batch.events, strict=True)
        return [(event_id, name, metadata) for event_id, (name, metadata) in pairs]

    def _announce(
        self, tx: Tx, account: Account, profile_id: int, stored: list[rewards.StoredEvent]
    ) -> None:
        """``event.received`` for each event, for the endpoints that opted in."""
        if not outbox.wants(tx, account.id, outbox.EVENT_RECEIVED):
            return
        for event_id, name, metadata in stored:
            data = {
                "customerId": self.batch.customer_id,
                "gbCustomerId": profile_id,
                "event": {"id": event_id, "name": name, "metadata": metadata},
                "receivedAt": self.received_at,
            }
            outbox.emit(tx, account.id, outbox.EVENT_RECEIVED, data, now=self.received_at)

    def _run_campaigns(
        self, tx: Tx, account: Account, profile_id: int, stored: list[rewards.StoredEvent]
    ) -> None:
        """Evaluate the account's program on these events, in this transaction (a program
        that cannot be loaded refuses the request with 5001 only if it names these events)."""
        names = [name for _, name, _ in stored]
        compiled = self.context.programs.for_events(tx, account.id, names)
        if compiled is not None:
            if ORDER_EVENT in names:
                stored = [
                    e for e in stored if _first_of_its_order(tx, account.id, e, self.received_at)
                ]
            rewards.apply_campaigns(
                tx,
                compiled,
                account_id=account.id,
                profile_id=profile_id,
                customer_id=self.batch.customer_id,
                events=stored,
                now=self.received_at,
            )

    def _profile_id(self, tx: Tx, account: Account) -> int:
        """The sender's profile: created, linked or merged; v2's playerAttributes merged in."""
        batch, now = self.batch, self.received_at
        if not batch.attributes:
            return identity.profile_id(
                tx, account, batch.customer_id, email=batch.email, mobile=batch.mobile, now=now
            )
        profile = identity.resolve(
            tx, account, batch.customer_id, email=batch.email, mobile=batch.mobile, now=now
        )
        identity.update_attributes(
            tx, account.id, batch.customer_id, profile, batch.attributes, now=now
        )
        return profile.id

    def _seen_before(self, tx: Tx, account: Account) -> bool:
        assert self.idempotency_key is not None
        found = idempotency.find(tx, account.id, self.idempotency_key)
        if found is None:
            return False
        first_hash, first_time = found
        if first_time < iso_before(self.received_at, IDEMPOTENCY_WINDOW):
            return False  # expired: the key starts over
        if first_hash != self.body_hash:
            raise errors.IdempotencyKeyReused()
        return True

    def _account(self) -> Account:
        assert self.account is not None, "prepare() runs before lock_keys() and apply()"
        return self.account


ORDER_EVENT = "place_order"
ORDER_KEYS = ("orderId", "order_id")


def order_id_of(metadata: dict[str, Any]) -> str | None:
    """The order a ``place_order`` event names (``orderId`` or ``order_id``), if any."""
    for key in ORDER_KEYS:
        value = metadata.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            text = str(value)
            if 0 < len(text) <= MAX_ID_LENGTH:
                return text
    return None


def _first_of_its_order(tx: Tx, account_id: int, event: rewards.StoredEvent, now: str) -> bool:
    """Whether campaigns may run on this event: a ``place_order`` naming an order whose
    campaigns already ran (``POST /orders``, or the same event sent again) counts once."""
    _, name, metadata = event
    if name != ORDER_EVENT:
        return True
    order_id = order_id_of(metadata)
    return order_id is None or burn_rows.claim_order(tx, account_id, order_id, now)


class FiresEvents:
    """Work that stores events of its own (an order's ``place_order``, through an
    ``IngestEvents`` it applies): the batch counts them as Send Events' own."""

    fired: IngestEvents | None = None


class IngestHooks:
    """Aggregates the catalog, daily counts and analytics (``analytics.keep``) over a batch;
    one upsert per row per batch.

    First and last seen are the batch's earliest and latest receive times: exact to the
    batch (a few milliseconds), at a fraction of the cost of tracking every request.
    """

    def __init__(self) -> None:
        self._works: list[IngestEvents] = []

    def begin(self) -> None:
        self._works = []

    def prefetch(self, tx: Tx, works: list[Any]) -> None:
        """Batch-wide lookups: one query for the profiles of the plain requests (no email or
        mobile), one for their reward rows where a program runs, and the ids of every event,
        so campaigns can cite them before the bulk insert."""
        wanted: dict[int, set[str]] = {}
        programs: dict[int, rewards.ProgramCache] = {}
        ingests = [w for w in works if isinstance(w, IngestEvents) and w.account is not None]
        for work in ingests:
            batch, account_id = work.batch, work.account.id  # type: ignore[union-attr]
            if batch.email is None and batch.mobile is None:
                wanted.setdefault(account_id, set()).add(batch.customer_id)
                programs[account_id] = work.context.programs
        identity.prefetch_profile_ids(tx, wanted)
        for account_id, customer_ids in wanted.items():
            if programs[account_id].runs(tx, account_id):  # never raises for one account
                known = (tx.recall((account_id, c)) for c in customer_ids)
                reward_rows.prefetch(tx, account_id, [p for p in known if p is not None])
        wanted_ids = sum(len(w.batch.events) for w in ingests)
        # None wanted (a batch of other work): no round trip for an empty range.
        ids = iter(tx.db.next_ids(tx, "events", wanted_ids) if wanted_ids else ())
        for work in ingests:
            work.event_ids = [next(ids) for _ in work.batch.events]

    def item_applied(self, work: Any) -> None:
        """Count a request that stored its events (a replay stored nothing)."""
        if isinstance(work, FiresEvents):
            work = work.fired
        if isinstance(work, IngestEvents) and work.account is not None and not work.replayed:
            self._works.append(work)

    def flush(self, tx: Tx) -> None:
        """Write the batch's counts: the catalog's (within its caps, see ``storage.events``)
        and the daily ones."""
        if not self._works:
            return
        first = min(work.received_at for work in self._works)
        last = max(work.received_at for work in self._works)
        # Count each event's shape (its keys and their Python types): built in C, and a batch
        # holds few distinct shapes; the per-key counts are derived from them below.
        shapes: Counter[tuple[int, str, str, tuple[str, ...], tuple[type, ...]]] = Counter()
        keeper = analytics_keep.Keeper()
        for work in self._works:
            account = work.account
            assert account is not None
            account_id, day = account.id, work.received_at[:10]
            if work.context.analytics:
                # The profile now: a later request of the batch may have merged it away.
                profile_id = tx.recall((account_id, work.batch.customer_id)) or work.profile_id
                keeper.add(
                    account_id,
                    account.timezone,
                    profile_id,
                    work.received_at,
                    work.batch.events,
                )
            for name, metadata in work.batch.events:
                shapes[
                    (account_id, day, name, tuple(metadata), tuple(map(type, metadata.values())))
                ] += 1
        daily: Counter[tuple[int, str, str]] = Counter()
        keys: Counter[tuple[int, str, str, str]] = Counter()
        for (account_id, day, name, key_names, types), count in shapes.items():
            daily[(account_id, day, name)] += count
            for key, kind in zip(key_names, types, strict=True):
                keys[(account_id, name, key, type_name(kind))] += count
        names: Counter[tuple[int, str]] = Counter()
        for (account_id, _, name), count in daily.items():
            names[(account_id, name)] += count
        # Sorted rows: concurrent writers (PostgreSQL) take row locks in one order.
        event_rows.upsert_names(tx, [(*key, n, first, last) for key, n in sorted(names.items())])
        event_rows.upsert_keys(
            tx, [(*key, kind, n, first, last) for key, (kind, n) in _typed(keys)]
        )
        event_rows.upsert_daily(tx, [(*key, n) for key, n in sorted(daily.items())])
        keeper.write(tx, analytics_keep.LastDays(tx))


def _typed(
    keys: Counter[tuple[int, str, str, str]],
) -> list[tuple[tuple[int, str, str], tuple[str, int]]]:
    """Fold the per-type counts of each key into one (merged type, total count)."""
    merged: dict[tuple[int, str, str], tuple[str, int]] = {}
    for (account_id, name, key, kind), count in keys.items():
        known = merged.get((account_id, name, key))
        if known is None:
            merged[(account_id, name, key)] = (kind, count)
        else:
            merged[(account_id, name, key)] = (merge_types(known[0], kind), known[1] + count)
    return sorted(merged.items())

"""Customer profiles: the create/update use case and the read-back views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kudos import errors
from kudos.domain.model import Account, Credentials, iso, utc_now
from kudos.domain.payload import MAX_ID_LENGTH, check_text
from kudos.services import accounts, identity
from kudos.services.ingest import IngestContext
from kudos.storage import events as event_rows
from kudos.storage import profiles
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx

MAX_EVENTS_PAGE = 1000
DEFAULT_EVENTS_PAGE = 50
# Metadata bytes (as stored JSON) one page of events carries at most; a page always holds one
# event, so any event (a request holds at most 1 MiB) can be read.
MAX_EVENTS_PAGE_BYTES = 2 * 1024 * 1024
# Sizes of events asked for at a time: first this many, doubling up to the maximum.
SIZES_CHUNK = 8
MAX_SIZES_CHUNK = 64


@dataclass(slots=True)
class UpsertCustomer:
    """``POST …/customers`` as writer work: create or update a profile, merging attributes."""

    context: IngestContext
    credentials: Credentials
    customer_id: str
    email: str | None
    mobile: str | None
    attributes: dict[str, Any]
    now: str = field(default_factory=utc_now)
    account: Account | None = None

    def prepare(self, tx: Tx) -> None:
        self.account = accounts.authenticate(tx, self.context.keyring, self.credentials)

    def lock_keys(self) -> list[str]:
        assert self.account is not None
        return identity.lock_key(
            self.account, self.customer_id, email=self.email, mobile=self.mobile
        )

    def apply(self, tx: Tx) -> int:
        assert self.account is not None
        profile = identity.resolve(
            tx, self.account, self.customer_id, email=self.email, mobile=self.mobile, now=self.now
        )
        if self.attributes:
            identity.update_attributes(
                tx, self.account.id, self.customer_id, profile, self.attributes, now=self.now
            )
        return profile.id


def get_customer(tx: Tx, account: Account, customer_id: str) -> dict[str, Any]:
    """The profile in Gameball's v4 shape, plus kudos' ``linkedCustomerIds``."""
    profile = find_profile(tx, account, customer_id)
    attributes = dict(profile.attributes)
    attributes["email"] = profile.email
    attributes["mobile"] = profile.mobile
    attributes.setdefault("custom", {})
    return {
        "customerId": customer_id,
        "gameballId": profile.id,
        "customerAttributes": attributes,
        "createdAt": iso(profile.created_at),
        "updatedAt": iso(profile.updated_at),
        "linkedCustomerIds": profiles.customer_ids_of(tx, account.id, profile.id),
        "badges": [
            {"badge": badge, "campaignId": campaign_id, "earnedAt": iso(earned_at)}
            for badge, campaign_id, earned_at in reward_rows.badges_of(tx, account.id, profile.id)
        ],
    }


def list_events(
    tx: Tx, account: Account, customer_id: str, *, limit: int, start_after: int | None
) -> dict[str, Any]:
    """One page of the profile's raw events, newest first, with ``hasMore``: at most ``limit``
    events, and no more metadata than ``MAX_EVENTS_PAGE_BYTES`` (but always one event)."""
    if not 1 <= limit <= MAX_EVENTS_PAGE:
        raise errors.InvalidValue(f"Invalid value: 'limit' must be 1 to {MAX_EVENTS_PAGE}.")
    profile = find_profile(tx, account, customer_id)
    linked = event_rows.linked_customers(tx, account.id, profile.id)
    ids, more = _page_ids(tx, account.id, linked, before=start_after, limit=limit)
    return {
        "events": [
            {
                "eventId": row[0],
                "name": row[1],
                "metadata": profiles.decode_json(row[2]),
                "customerId": row[3],
                "receivedAt": iso(row[4]),
            }
            for row in event_rows.by_ids(tx, account.id, ids)
        ],
        "hasMore": more,
    }


def _page_ids(
    tx: Tx, account_id: int, linked: event_rows.Linked, *, before: int | None, limit: int
) -> tuple[list[int], bool]:
    """The ids of a page's events, chosen by the size of their metadata before any is read,
    and whether more follow. Sizes come in chunks that grow from ``SIZES_CHUNK`` to
    ``MAX_SIZES_CHUNK`` rows: a page of a few large events asks for a few sizes (each costs
    reading its event in the store), a page of many small ones takes a few queries."""
    ids: list[int] = []
    total, chunk = 0, SIZES_CHUNK
    while True:
        wanted = min(chunk, limit + 1 - len(ids))  # one past the page tells ``hasMore``
        rows = event_rows.sizes(tx, account_id, linked, before=before, limit=wanted)
        for event_id, size in rows:
            if len(ids) == limit or (ids and total + size > MAX_EVENTS_PAGE_BYTES):
                return ids, True
            ids.append(event_id)
            total += size
        if len(rows) < wanted:
            return ids, False
        before, chunk = rows[-1][0], min(2 * chunk, MAX_SIZES_CHUNK)


def find_profile(tx: Tx, account: Account, customer_id: str) -> profiles.ProfileRow:
    if not _storable(customer_id):
        raise errors.CustomerNotFound(f"Customer {customer_id!r} not found.")
    profile = profiles.by_customer_id(tx, account.id, customer_id)
    if profile is None:
        raise errors.CustomerNotFound(f"Customer {customer_id!r} not found.")
    return profile


def _storable(customer_id: str) -> bool:
    """Whether any customerId could be this one (Send Events refuses the others)."""
    try:
        check_text(customer_id, "customerId")
    except errors.InvalidValue:
        return False
    return 0 < len(customer_id) <= MAX_ID_LENGTH

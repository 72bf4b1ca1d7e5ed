"""Identity resolution: which profile a customerId (plus email or mobile) belongs to.

With channel merging off, every customerId has its own profile and email/mobile are plain
attributes. With merging on ``email`` (or ``mobile``), the normalised identifier links
customerIds: a new customerId joins the profile that holds the identifier, and a request that
links two existing profiles merges them into the older one, in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from kudos import errors
from kudos.analytics import activity as analytics_activity
from kudos.domain import payload
from kudos.domain.identity import (
    MergeMode,
    customer_lock_key,
    merge_identifier,
    normalize_email,
    normalize_mobile,
)
from kudos.domain.model import Account
from kudos.services import rewards
from kudos.storage import profiles
from kudos.storage.db import Tx
from kudos.storage.profiles import ProfileRow
from kudos.webhooks import gameball, outbox

# What one profile holds at most, however many requests link, merge or update it (each
# request is bounded; the profile they add up to must be too): customerIds linked to it by
# channel merging, and its attributes as stored JSON. A request that would pass either is
# refused (3003) and changes nothing.
MAX_LINKED_CUSTOMER_IDS = 1000
MAX_ATTRIBUTES_BYTES = 64 * 1024


def lock_key(
    account: Account, customer_id: str, *, email: str | None, mobile: str | None
) -> list[str]:
    """The keys that serialize writers touching this customerId or its identifier."""
    keys = [customer_lock_key(account.id, customer_id)]
    identifier = merge_identifier(account.channel_merging, email=email, mobile=mobile)
    if identifier is not None:
        keys.append(f"identifier:{account.id}:{account.channel_merging}:{identifier}")
    return keys


def prefetch_profile_ids(tx: Tx, wanted: dict[int, set[str]]) -> None:
    """Look up many customerIds (by account) in one query each, for ``profile_id`` to recall;
    those without a profile are noted for this transaction (its locks keep them absent until
    it creates them), so ``profile_id`` creates theirs without looking again."""
    for account_id, customer_ids in wanted.items():
        unknown = [c for c in customer_ids if tx.recall((account_id, c)) is None]
        found = dict(profiles.ids_for_customers(tx, account_id, unknown))
        for customer_id in unknown:
            if customer_id in found:
                tx.remember((account_id, customer_id), found[customer_id])
            else:
                tx.memo[_absent(account_id, customer_id)] = True


def profile_id(
    tx: Tx, account: Account, customer_id: str, *, email: str | None, mobile: str | None, now: str
) -> int:
    """The profile id for ``customer_id``; a known id without email or mobile is one lookup."""
    if email is None and mobile is None:
        known: int | None = tx.recall((account.id, customer_id))
        if known is not None:
            return known
        if tx.memo.get(_absent(account.id, customer_id)):
            # Looked up by the batch's prefetch (created since, it would have been recalled).
            return _create(tx, account, customer_id, email=None, mobile=None, key=None, now=now).id
        known = profiles.id_for_customer(tx, account.id, customer_id)
        if known is not None:
            tx.remember((account.id, customer_id), known)
            return known
    return resolve(tx, account, customer_id, email=email, mobile=mobile, now=now).id


def _absent(account_id: int, customer_id: str) -> tuple[str, int, str]:
    """The memo key of a customerId the batch's prefetch found no profile for."""
    return ("no-profile", account_id, customer_id)


def resolve(
    tx: Tx,
    account: Account,
    customer_id: str,
    *,
    email: str | None,
    mobile: str | None,
    now: str,
) -> ProfileRow:
    """The profile for ``customer_id``, created, linked or merged as the account's mode says."""
    mode = account.channel_merging
    identifier = merge_identifier(mode, email=email, mobile=mobile)
    current = profiles.by_customer_id(tx, account.id, customer_id)
    holder = profiles.by_identifier(tx, account.id, mode, identifier) if identifier else None
    if current is None and holder is None:
        return _create(
            tx, account, customer_id, email=email, mobile=mobile, key=identifier, now=now
        )
    if current is None:
        assert holder is not None  # one of the two exists past the first branch
        payload.check_customer_id(customer_id, "customerId")
        _check_linked(profiles.count_customer_ids(tx, account.id, holder.id) + 1)
        profiles.add_customer_id(tx, account.id, customer_id, holder.id, now)
        tx.remember((account.id, customer_id), holder.id)
        current = holder
    merged = holder is not None and holder.id != current.id
    if merged:
        assert holder is not None
        current = _merge(
            tx, account, current, holder, customer_id=customer_id, identifier=identifier, now=now
        )
    changed = _set_key(current, mode, identifier)
    changed = _set_contact(current, email=email, mobile=mobile) or changed
    if changed:
        profiles.update(tx, current, now)
    if changed or merged:
        gameball.announce_profile(tx, account.id, customer_id, current.id, now=now)
    return current


def _create(
    tx: Tx,
    account: Account,
    customer_id: str,
    *,
    email: str | None,
    mobile: str | None,
    key: str | None,
    now: str,
) -> ProfileRow:
    payload.check_customer_id(customer_id, "customerId")  # whichever route creates it
    mode = account.channel_merging
    row = ProfileRow(
        id=0,
        created_at=now,
        updated_at=now,
        email=_contact_email(email),
        mobile=_contact_mobile(mobile),
        email_key=key if mode == "email" else None,
        mobile_key=key if mode == "mobile" else None,
        attributes={},
    )
    row.id = profiles.insert(
        tx,
        account.id,
        email=row.email,
        mobile=row.mobile,
        email_key=row.email_key,
        mobile_key=row.mobile_key,
        attributes=row.attributes,
        now=now,
    )
    profiles.add_customer_id(tx, account.id, customer_id, row.id, now)
    tx.remember((account.id, customer_id), row.id)
    outbox.emit(
        tx,
        account.id,
        outbox.CUSTOMER_CREATED,
        {
            "customerId": customer_id,
            "gbCustomerId": row.id,
            "email": row.email,
            "mobile": row.mobile,
            "createdAt": now,
        },
        now=now,
    )
    return row


def _merge(
    tx: Tx,
    account: Account,
    first: ProfileRow,
    second: ProfileRow,
    *,
    customer_id: str,
    identifier: str | None,
    now: str,
) -> ProfileRow:
    """Merge the newer profile into the older one; nothing of either is lost."""
    winner, loser = (first, second) if first.id < second.id else (second, first)
    _check_linked(
        profiles.count_customer_ids(tx, account.id, winner.id)
        + profiles.count_customer_ids(tx, account.id, loser.id)
    )
    attributes = _bounded(merge_attributes(loser.attributes, winner.attributes))
    moved = profiles.absorb(
        tx,
        account.id,
        winner=winner.id,
        loser=loser.id,
        kind=account.channel_merging,
        identifier=identifier or "",
        now=now,
    )
    for customer_id in moved:
        tx.remember((account.id, customer_id), winner.id)
    winner.attributes = attributes
    winner.email = winner.email or loser.email
    winner.mobile = winner.mobile or loser.mobile
    rewards.combine_profiles(
        tx, account.id, winner=winner.id, loser=loser.id, customer_id=customer_id, now=now
    )
    analytics_activity.merge(tx, account.id, winner=winner.id, loser=loser.id)
    profiles.update(tx, winner, now)
    outbox.emit(
        tx,
        account.id,
        outbox.CUSTOMER_MERGED,
        {
            "gbCustomerId": winner.id,
            "mergedGbCustomerId": loser.id,
            "movedCustomerIds": moved,
            "mergedBy": account.channel_merging,
        },
        now=now,
    )
    return winner


def update_attributes(
    tx: Tx,
    account_id: int,
    customer_id: str,
    profile: ProfileRow,
    attributes: dict[str, Any],
    *,
    now: str,
) -> None:
    """Merge ``attributes`` into the profile's and save it."""
    profile.attributes = _bounded(merge_attributes(profile.attributes, attributes))
    profiles.update(tx, profile, now)
    gameball.announce_profile(tx, account_id, customer_id, profile.id, now=now)


def _check_linked(count: int) -> None:
    """Refuse a link or merge that would give one profile more customerIds than it holds."""
    if count > MAX_LINKED_CUSTOMER_IDS:
        raise errors.InvalidValue(
            "Invalid value: this would link more than"
            f" {MAX_LINKED_CUSTOMER_IDS:,} customerIds to one profile (channel merging)."
        )


def _bounded(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes``, if a profile may hold them (``MAX_ATTRIBUTES_BYTES`` as JSON)."""
    if len(profiles.encode(attributes)) > MAX_ATTRIBUTES_BYTES:
        raise errors.InvalidValue(
            "Invalid value: a profile's attributes (custom ones included) hold at most"
            f" {MAX_ATTRIBUTES_BYTES // 1024} KiB as JSON; these would make it more."
        )
    return attributes


def merge_attributes(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``; the free-form ``custom`` object merges key by key, and a
    ``custom`` of ``null`` (or none at all) leaves the stored one as it is."""
    merged = {**base, **update}
    custom = update.get("custom")
    if custom is None:
        if "custom" in base:
            merged["custom"] = base["custom"]
        else:
            merged.pop("custom", None)
    elif isinstance(base.get("custom"), dict):
        merged["custom"] = {**base["custom"], **custom}
    return merged


def _set_key(profile: ProfileRow, mode: MergeMode, identifier: str | None) -> bool:
    if identifier is None or profile.identifier(mode) == identifier:
        return False
    if mode == "email":
        profile.email_key = identifier
    else:
        profile.mobile_key = identifier
    return True


def _set_contact(profile: ProfileRow, *, email: str | None, mobile: str | None) -> bool:
    new_email, new_mobile = _contact_email(email), _contact_mobile(mobile)
    changed = False
    if new_email is not None and new_email != profile.email:
        profile.email, changed = new_email, True
    if new_mobile is not None and new_mobile != profile.mobile:
        profile.mobile, changed = new_mobile, True
    return changed


def _contact_email(raw: str | None) -> str | None:
    """An email worth keeping as an attribute: trimmed, and not a placeholder."""
    return raw.strip() if raw is not None and normalize_email(raw) is not None else None


def _contact_mobile(raw: str | None) -> str | None:
    return raw.strip() if raw is not None and normalize_mobile(raw) is not None else None

"""Payloads of Gameball's two webhook topics, in Gameball's v4 shapes.

``customer.profile.updated`` carries the profile's contact data, tier and points;
``customer.notification.push`` the notification a campaign configured. Both name the account
(``client_id``, kudos' account name), the customerId and the profile (``gb_customer_id``).
"""

from __future__ import annotations

from typing import Any

from kudos.rules.schema import tier_names
from kudos.storage import accounts as account_rows
from kudos.storage import burn as burn_rows
from kudos.storage import profiles, programs
from kudos.storage import rewards as reward_rows
from kudos.storage.db import Tx
from kudos.storage.rewards import CustomerTotals
from kudos.webhooks import outbox


def _envelope(
    tx: Tx, topic: str, account_id: int, customer_id: str, profile_id: int, now: str
) -> dict[str, Any]:
    return {
        "event": topic,
        "client_id": tx.once(("account-name", account_id), account_rows.name_of, tx, account_id),
        "customer_id": customer_id,
        "gb_customer_id": profile_id,
        "created_at": now,
    }


def profile_updated(
    tx: Tx,
    account_id: int,
    *,
    customer_id: str,
    profile_id: int,
    now: str,
    totals: CustomerTotals | None = None,
) -> dict[str, Any]:
    """The profile as it stands in this transaction (``totals``: the customer's, if the
    caller holds them)."""
    profile = profiles.by_customer_id(tx, account_id, customer_id)
    if totals is None:
        totals = reward_rows.current_totals(tx, account_id, profile_id)
    tier_name = None
    if totals.tier_order is not None:
        names = tx.once(("tier-names", account_id), _tier_names, tx, account_id)
        tier_name = names.get(totals.tier_order)
    pending = burn_rows.pending_total(tx, account_id, profile_id)
    payload = _envelope(tx, "customer.profile.updated", account_id, customer_id, profile_id, now)
    payload["data"] = {
        "email": profile.email if profile else None,
        "mobile_number": profile.mobile if profile else None,
        "tier_name": tier_name,
        "tier_order": totals.tier_order,
        "referral_code": None,
        "referral_link": None,
        "activated_points": totals.points_balance,
        "pending_points": pending,
        "total_points": totals.points_balance + pending,
    }
    return payload


def _tier_names(tx: Tx, account_id: int) -> dict[int, str]:
    """Tier order → name in the program in force (read best effort: a stored program this
    version cannot load must not fail the payloads of the worker's shared work)."""
    found = programs.current(tx, account_id)
    return tier_names(found[1]) if found else {}


def notification_push(
    tx: Tx,
    account_id: int,
    *,
    customer_id: str,
    profile_id: int,
    title: str,
    body: str,
    now: str,
) -> dict[str, Any]:
    """One in-app notification (kudos has one language: ``local`` is ``en``)."""
    payload = _envelope(tx, "customer.notification.push", account_id, customer_id, profile_id, now)
    payload["data"] = [{"local": "en", "icon": None, "title": title, "body": body}]
    return payload


def announce_profile(
    tx: Tx,
    account_id: int,
    customer_id: str,
    profile_id: int,
    *,
    now: str,
    totals: CustomerTotals | None = None,
) -> None:
    """Emit ``customer.profile.updated`` for the profile as it now stands, if subscribed."""
    if outbox.wants(tx, account_id, outbox.PROFILE_UPDATED):
        payload = profile_updated(
            tx, account_id, customer_id=customer_id, profile_id=profile_id, now=now, totals=totals
        )
        outbox.emit(tx, account_id, outbox.PROFILE_UPDATED, payload, now=now)

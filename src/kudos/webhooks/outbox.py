"""The transactional outbox: webhook messages are staged in the transaction that caused them.

Services call ``emit`` where something happened (a customer created, a reward given, …).
It stages one message row per active endpoint of the account subscribed to the topic, in
the caller's transaction: the message commits with its cause or not at all, and the worker
delivers it after COMMIT (at least once). With no subscriber, ``emit`` costs a dictionary
lookup: the account's subscriptions are read once per transaction.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from kudos.storage import webhooks as webhook_rows
from kudos.storage.db import Tx

# Gameball's topics: its own payload shapes and X-GB-Signature.
PROFILE_UPDATED = "customer.profile.updated"
NOTIFICATION_PUSH = "customer.notification.push"
GAMEBALL_TOPICS = frozenset({PROFILE_UPDATED, NOTIFICATION_PUSH})
# kudos' topics: Standard Webhooks' {type, timestamp, data}.
CUSTOMER_CREATED = "customer.created"
CUSTOMER_MERGED = "customer.merged"
CAMPAIGN_REWARDED = "campaign.rewarded"
TIER_CHANGED = "tier.changed"
POINTS_EXPIRED = "points.expired"
EVENT_RECEIVED = "event.received"  # opt-in: one message per ingested event
POINTS_REDEEMED = "points.redeemed"
POINTS_REFUNDED = "points.refunded"
ORDER_COMPLETED = "order.completed"
TOPICS = (
    PROFILE_UPDATED,
    NOTIFICATION_PUSH,
    CUSTOMER_CREATED,
    CUSTOMER_MERGED,
    CAMPAIGN_REWARDED,
    TIER_CHANGED,
    POINTS_EXPIRED,
    EVENT_RECEIVED,
    POINTS_REDEEMED,
    POINTS_REFUNDED,
    ORDER_COMPLETED,
)

_encode = msgspec.json.Encoder().encode


def _subscribers(tx: Tx, account_id: int) -> dict[str, list[int]]:
    """Topic → endpoint ids of the account's active endpoints, once per transaction."""
    return tx.once(_subscribers_key(account_id), _read_subscribers, tx, account_id)


def _read_subscribers(tx: Tx, account_id: int) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for endpoint_id, topics in webhook_rows.subscriptions(tx, account_id):
        for topic in topics:
            found.setdefault(topic, []).append(endpoint_id)
    return found


def _subscribers_key(account_id: int) -> tuple[str, int]:
    return ("webhook-subscribers", account_id)


def forget(tx: Tx, account_id: int) -> None:
    """The account's endpoints changed in this transaction: read them again when needed."""
    tx.memo.pop(_subscribers_key(account_id), None)


def wants(tx: Tx, account_id: int, topic: str) -> bool:
    """Whether any active endpoint of the account takes ``topic`` (skip building payloads)."""
    return topic in _subscribers(tx, account_id)


def emit(tx: Tx, account_id: int, topic: str, payload: dict[str, Any], *, now: str) -> None:
    """Stage ``topic`` for every subscribed endpoint (callers whose payload costs reads check
    ``wants`` first). kudos' topics wrap the payload as ``{type, timestamp, data}``;
    Gameball's are sent as built."""
    endpoint_ids = _subscribers(tx, account_id).get(topic)
    if not endpoint_ids:
        return
    if topic not in GAMEBALL_TOPICS:
        payload = {"type": topic, "timestamp": now, "data": payload}
    body = _encode(payload).decode()
    tx.stage(
        webhook_rows.STAGE_MESSAGE,
        [
            (account_id, endpoint_id, new_message_id(), topic, body, now, now, now)
            for endpoint_id in endpoint_ids
        ],
    )


def new_message_id() -> str:
    """A message's ``webhook-id``: unique, and the same across its retries."""
    return "msg_" + secrets.token_hex(12)

"""Webhook endpoints: register, list, change, remove; their delivery log; redelivery.

Writes run through the writer as ``ManageWebhooks`` work (ordered with the events around
them; the outbox sees a change from the next batch on). An endpoint's signing secret is
returned once, when it is created, and stored only encrypted under the server key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kudos import errors
from kudos.domain.model import Account, Credentials, iso, utc_now
from kudos.services import accounts
from kudos.services.security import Keyring
from kudos.storage import webhooks as webhook_rows
from kudos.storage.db import Tx
from kudos.storage.webhooks import EndpointRow
from kudos.webhooks import outbox, signing

MAX_URL = 2000
MAX_PAGE = 500
DEFAULT_PAGE = 50
STATES = ("pending", "delivered", "dead")


def check_url(url: Any) -> str:
    """An absolute http(s) URL, or ``InvalidValue``."""
    if not isinstance(url, str) or not url.strip():
        raise errors.MissingArguments("Missing arguments: 'url' is required.")
    text = url.strip()
    parts = urlsplit(text)
    if len(text) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.InvalidValue(
            f"Invalid value: 'url' must be an absolute http(s) URL of at most {MAX_URL} characters."
        )
    return text


def check_topics(topics: Any) -> list[str]:
    """A non-empty list of known topics, in the given order without repeats."""
    if not isinstance(topics, list) or not topics:
        raise errors.MissingArguments("Missing arguments: 'topics' must be a non-empty list.")
    unknown = [t for t in topics if t not in outbox.TOPICS]
    if unknown:
        raise errors.InvalidValue(
            f"Invalid value: unknown topic(s) {unknown!r}; known: {', '.join(outbox.TOPICS)}."
        )
    return list(dict.fromkeys(topics))


def public(row: EndpointRow) -> dict[str, Any]:
    """An endpoint as the API shows it (never its secret)."""
    return {
        "id": row.id,
        "url": row.url,
        "topics": row.topics,
        "active": row.active,
        "disabledReason": row.disabled_reason,
        "failingSince": row.failing_since,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


def create_endpoint(
    tx: Tx, account: Account, keyring: Keyring, *, url: Any, topics: Any
) -> dict[str, Any]:
    """Register an endpoint; the answer carries its secret, shown only this once."""
    url, topics = check_url(url), check_topics(topics)
    secret = signing.new_secret()
    endpoint_id = webhook_rows.insert_endpoint(
        tx,
        account.id,
        url=url,
        topics=topics,
        secret_encrypted=keyring.encrypt(secret),
        now=utc_now(),
    )
    outbox.forget(tx, account.id)
    return {**public(_endpoint(tx, account, endpoint_id)), "secret": secret}


def list_endpoints(tx: Tx, account: Account) -> list[dict[str, Any]]:
    return [public(row) for row in webhook_rows.endpoints(tx, account.id)]


def get_endpoint(tx: Tx, account: Account, endpoint_id: int) -> dict[str, Any]:
    return public(_endpoint(tx, account, endpoint_id))


def update_endpoint(
    tx: Tx, account: Account, endpoint_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change url, topics and/or active; re-activating clears the failure record."""
    row = _endpoint(tx, account, endpoint_id)
    if changes.get("url") is not None:
        row.url = check_url(changes["url"])
    if changes.get("topics") is not None:
        row.topics = check_topics(changes["topics"])
    active = changes.get("active")
    if active is not None:
        if not isinstance(active, bool):
            raise errors.InvalidValue("Invalid value: 'active' must be true or false.")
        if active and not row.active:
            row.disabled_reason, row.failing_since = None, None
        row.active = active
    webhook_rows.update_endpoint(tx, row, utc_now())
    outbox.forget(tx, account.id)
    return get_endpoint(tx, account, endpoint_id)


def delete_endpoint(tx: Tx, account: Account, endpoint_id: int) -> None:
    """Remove the endpoint, its undelivered messages and its delivery log."""
    if not webhook_rows.delete_endpoint(tx, account.id, endpoint_id):
        raise errors.WebhookNotFound()
    outbox.forget(tx, account.id)


def deliveries(
    tx: Tx, account: Account, endpoint_id: int, *, before: int | None, limit: int
) -> dict[str, Any]:
    """The endpoint's delivery log, newest first, ``before`` an attempt id."""
    _endpoint(tx, account, endpoint_id)
    rows = webhook_rows.attempts_page(tx, endpoint_id, before=before, limit=limit)
    items = [
        {
            "id": row[0],
            "messageId": row[1],
            "topic": row[2],
            "attempt": row[3],
            "attemptedAt": iso(row[4]),
            "statusCode": row[5],
            "latencyMs": row[6],
            "error": row[7],
            "outcome": row[8],
        }
        for row in rows
    ]
    return _page(items, limit)


def messages(
    tx: Tx,
    account: Account,
    endpoint_id: int,
    *,
    state: str | None,
    before: int | None,
    limit: int,
) -> dict[str, Any]:
    """The endpoint's messages, newest first; ``state=dead`` lists its dead letters."""
    _endpoint(tx, account, endpoint_id)
    if state is not None and state not in STATES:
        raise errors.InvalidValue(f"Invalid value: 'state' is one of {', '.join(STATES)}.")
    rows = webhook_rows.messages_page(tx, endpoint_id, state=state, before=before, limit=limit)
    items = [
        {
            "id": row[0],
            "messageId": row[2],
            "topic": row[3],
            "state": row[4],
            "attempts": row[5],
            "nextAttemptAt": None if row[6] is None or row[4] != "pending" else iso(row[6]),
            "lastStatusCode": row[7],
            "lastError": row[8],
            "createdAt": iso(row[9]),
            "updatedAt": iso(row[10]),
        }
        for row in rows
    ]
    return _page(items, limit)


def redeliver(tx: Tx, account: Account, message_id: str) -> dict[str, Any]:
    """Send a past message again (delivered, dead or pending), now, with a fresh schedule
    and the same ``webhook-id``."""
    found = webhook_rows.message(tx, account.id, message_id)
    if found is None:
        raise errors.MessageNotFound()
    row_id, endpoint_id, _ = found
    webhook_rows.requeue(tx, row_id, now=utc_now())
    endpoint = _endpoint(tx, account, endpoint_id)
    return {
        "messageId": message_id,
        "endpointId": endpoint_id,
        "state": "pending",
        "endpointActive": endpoint.active,
    }


def redeliver_dead(tx: Tx, account: Account, endpoint_id: int) -> dict[str, Any]:
    """Requeue every dead letter of the endpoint (a replay after an outage)."""
    _endpoint(tx, account, endpoint_id)
    count = webhook_rows.requeue_dead(tx, endpoint_id, now=utc_now())
    return {"endpointId": endpoint_id, "requeued": count}


def _endpoint(tx: Tx, account: Account, endpoint_id: int) -> EndpointRow:
    row = webhook_rows.endpoint(tx, account.id, endpoint_id)
    if row is None:
        raise errors.WebhookNotFound()
    return row


def _page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    more = len(items) == limit and limit > 0
    return {"items": items, "nextBefore": items[-1]["id"] if more else None}


@dataclass(slots=True)
class ManageWebhooks:
    """A write to the account's endpoints or messages, as writer work."""

    keyring: Keyring
    credentials: Credentials
    fn: Callable[[Tx, Account], Any]
    account: Account | None = None

    def prepare(self, tx: Tx) -> None:
        self.account = accounts.authenticate(tx, self.keyring, self.credentials)

    def lock_keys(self) -> list[str]:
        assert self.account is not None
        return [f"webhooks:{self.account.id}"]

    def apply(self, tx: Tx) -> Any:
        assert self.account is not None
        return self.fn(tx, self.account)

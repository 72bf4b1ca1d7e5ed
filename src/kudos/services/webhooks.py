"""Webhook endpoints: register, list, change, remove; their delivery log; redelivery.

Writes run through the writer as ``ManageWebhooks`` work (ordered with the events around
them; the outbox sees a change from the next batch on). An endpoint's signing secret is
returned once, when it is created, and stored only encrypted under the server key.

A URL passes ``check_url`` (its shape, and the target policy for an address written in it)
inside the write, and ``check_resolved`` (the addresses its host name resolves to) before
it: resolving waits on DNS, so callers run it off the event loop and outside any
transaction. The worker checks the target again at every delivery.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult

from kudos import errors
from kudos.domain.model import Account, Credentials, iso, utc_now
from kudos.services import accounts
from kudos.services.security import Keyring
from kudos.storage import webhooks as webhook_rows
from kudos.storage.db import Tx
from kudos.storage.webhooks import EndpointRow
from kudos.webhooks import outbox, signing, targets, urls

MAX_PAGE = 500
DEFAULT_PAGE = 50
STATES = ("pending", "delivered", "dead")
CHANGEABLE = ("url", "topics", "active")
_BAD_URL = (
    f"Invalid value: 'url' must be an absolute http(s) URL of at most {urls.MAX_URL} characters,"
    " with a host, a port from 1 to 65535 if any, no user name or password, and no spaces or"
    " control characters."
)
_REFUSED_TARGET = (
    "Invalid value: 'url' targets an address this server does not deliver to (see"
    ' docs/webhooks.md, "Targets").'
)

# ``socket.getaddrinfo``'s shape; tests pass a fake DNS.
Resolve = Callable[..., Sequence[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class EndpointRules:
    """What an account's endpoints may be: how many, and whether private targets are allowed
    (``KUDOS_WEBHOOK_MAX_ENDPOINTS``, ``KUDOS_WEBHOOK_ALLOW_PRIVATE``)."""

    max_endpoints: int
    allow_private: bool


def check_url(url: Any, *, allow_private: bool) -> str:
    """An absolute http(s) URL whose host is allowed as written, or ``InvalidValue``
    (``MissingArguments`` when there is none). Host names are resolved by ``check_resolved``."""
    if not isinstance(url, str) or not url:
        raise errors.MissingArguments("Missing arguments: 'url' is required.")
    parts = _split(url)
    host = parts.hostname or ""
    address = targets.literal(host)
    if address is not None:
        if not targets.allowed(address, allow_private=allow_private):
            raise errors.InvalidValue(_REFUSED_TARGET)
    elif not urls.valid_name(host):
        raise errors.InvalidValue(_BAD_URL)
    elif not targets.name_allowed(host, allow_private=allow_private):
        raise errors.InvalidValue(_REFUSED_TARGET)
    return url


def name_to_resolve(url: str) -> tuple[str, int | str] | None:
    """``(host name, port or scheme)`` of a URL (already through ``check_url``) whose host
    is a name, for a lookup; ``None`` when it is an address (checked as written)."""
    parts = _split(url)
    host = parts.hostname or ""
    if targets.literal(host) is not None:
        return None
    return host, parts.port or parts.scheme


def check_addresses(addresses: Sequence[str], *, allow_private: bool) -> None:
    """Refuse a URL whose host name resolved to any refused address."""
    if not targets.all_allowed(list(addresses), allow_private=allow_private):
        raise errors.InvalidValue(_REFUSED_TARGET)


def check_resolved(url: str, *, allow_private: bool, resolve: Resolve | None = None) -> None:
    """``name_to_resolve`` and ``check_addresses``, blocking on DNS (the CLI's way; the API
    resolves through ``webhooks.dns``). A name that does not resolve (yet) passes: every
    delivery resolves and checks again."""
    name = name_to_resolve(url)
    if name is None:
        return
    lookup = resolve or socket.getaddrinfo  # looked up now: tests replace it
    try:
        found = lookup(*name, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return
    check_addresses([str(info[4][0]) for info in found], allow_private=allow_private)


def _split(url: str) -> SplitResult:
    parts = urls.split(url)
    if parts is None:
        raise errors.InvalidValue(_BAD_URL)
    return parts


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
        "url": urls.masked(row.url),
        "topics": row.topics,
        "active": row.active,
        "disabledReason": row.disabled_reason,
        "failingSince": row.failing_since,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


def create_endpoint(
    tx: Tx, account: Account, keyring: Keyring, *, url: Any, topics: Any, rules: EndpointRules
) -> dict[str, Any]:
    """Register an endpoint; the answer carries its secret, shown only this once."""
    url = check_url(url, allow_private=rules.allow_private)
    topics = check_topics(topics)
    _check_room(tx, account, rules.max_endpoints)
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


def _check_room(tx: Tx, account: Account, most: int) -> None:
    """Refuse an endpoint past the account's limit. The account's endpoints are locked first
    (a no-op on SQLite's single writer), so two registrations at once cannot both pass."""
    tx.db.lock(tx, [lock_key(account.id)])
    _refuse_past(most, webhook_rows.count_endpoints(tx, account.id))


def check_room(tx: Tx, account: Account, rules: EndpointRules) -> None:
    """Refuse a registration the limit will refuse anyway (a read, before any lookup; the
    write checks again, under its lock)."""
    _refuse_past(rules.max_endpoints, webhook_rows.count_endpoints(tx, account.id))


def _refuse_past(most: int, count: int) -> None:
    if count >= most:
        raise errors.InvalidValue(
            f"Invalid value: an account has at most {most} webhook endpoints"
            " (KUDOS_WEBHOOK_MAX_ENDPOINTS); remove one first."
        )


def lock_key(account_id: int) -> str:
    """The lock that orders writes to one account's endpoints."""
    return f"webhooks:{account_id}"


def list_endpoints(tx: Tx, account: Account) -> list[dict[str, Any]]:
    return [public(row) for row in webhook_rows.endpoints(tx, account.id)]


def get_endpoint(tx: Tx, account: Account, endpoint_id: int) -> dict[str, Any]:
    return public(_endpoint(tx, account, endpoint_id))


def update_endpoint(
    tx: Tx, account: Account, endpoint_id: int, changes: dict[str, Any], *, rules: EndpointRules
) -> dict[str, Any]:
    """Change url, topics and/or active; re-activating clears the failure record. A field
    given as ``null`` is refused (leave it out to keep it)."""
    for name in CHANGEABLE:
        if name in changes and changes[name] is None:
            raise errors.NullArguments(f"Null arguments: '{name}' must not be null.")
    row = _endpoint(tx, account, endpoint_id)
    if "url" in changes:
        row.url = check_url(changes["url"], allow_private=rules.allow_private)
    if "topics" in changes:
        row.topics = check_topics(changes["topics"])
    if "active" in changes:
        active = changes["active"]
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
        return [lock_key(self.account.id)]

    def apply(self, tx: Tx) -> Any:
        assert self.account is not None
        return self.fn(tx, self.account)

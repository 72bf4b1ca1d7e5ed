"""Webhook endpoints, the outbox of messages to deliver, and the log of delivery attempts.

A message row is one payload for one endpoint. It is staged in the transaction that caused
it (the outbox), then claimed by a worker, attempted, and recorded: ``pending`` until it is
``delivered`` or, after the last retry, ``dead`` (a dead letter, redeliverable by hand).
A claim moves ``next_attempt_at`` past the attempt's lease and counts the attempt, so a
worker that dies mid-delivery leaves the message to be claimed again once the lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kudos.domain.model import iso
from kudos.storage.db import Row, Tx, newest_first
from kudos.storage.profiles import decode_json, encode

_ENDPOINT_COLUMNS = (
    "id, account_id, url, topics, secret_encrypted, active, disabled_reason, failing_since,"
    " created_at, updated_at"
)
_MESSAGE_COLUMNS = (
    "id, endpoint_id, message_id, topic, state, attempts, next_attempt_at, last_status,"
    " last_error, created_at, updated_at"
)
STAGE_MESSAGE = (
    "INSERT INTO webhook_messages (account_id, endpoint_id, message_id, topic, payload, state,"
    " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
)


@dataclass(slots=True)
class EndpointRow:
    id: int
    account_id: int
    url: str
    topics: list[str]
    secret_encrypted: str
    active: bool
    disabled_reason: str | None
    failing_since: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message claimed for one attempt, with what sending it needs."""

    row_id: int
    account_id: int
    endpoint_id: int
    message_id: str
    topic: str
    payload: str
    attempt: int
    retries: int
    url: str
    endpoint_secret_encrypted: str
    account_secret_encrypted: str


def _endpoint(row: Row) -> EndpointRow:
    return EndpointRow(
        id=int(row[0]),
        account_id=int(row[1]),
        url=row[2],
        topics=decode_json(row[3]),
        secret_encrypted=row[4],
        active=bool(row[5]),
        disabled_reason=row[6],
        failing_since=None if row[7] is None else iso(row[7]),
        created_at=iso(row[8]),
        updated_at=iso(row[9]),
    )


def subscriptions(tx: Tx, account_id: int) -> list[tuple[int, list[str]]]:
    """``(endpoint id, topics)`` of the account's active endpoints (the outbox's fan-out)."""
    rows = tx.all(
        "SELECT id, topics FROM webhook_endpoints WHERE account_id = ? AND active = ?",
        (account_id, True),
    )
    return [(int(row[0]), decode_json(row[1])) for row in rows]


def insert_endpoint(
    tx: Tx, account_id: int, *, url: str, topics: list[str], secret_encrypted: str, now: str
) -> int:
    row = tx.one(
        "INSERT INTO webhook_endpoints (account_id, url, topics, secret_encrypted, active,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (account_id, url, encode(topics), secret_encrypted, True, now, now),
    )
    assert row is not None
    return int(row[0])


def count_endpoints(tx: Tx, account_id: int) -> int:
    """How many endpoints the account has (active or not)."""
    row = tx.one("SELECT count(*) FROM webhook_endpoints WHERE account_id = ?", (account_id,))
    return 0 if row is None else int(row[0])


def endpoint(tx: Tx, account_id: int, endpoint_id: int) -> EndpointRow | None:
    row = tx.one(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = ? AND id = ?",
        (account_id, endpoint_id),
    )
    return None if row is None else _endpoint(row)


def endpoints(tx: Tx, account_id: int) -> list[EndpointRow]:
    rows = tx.all(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = ? ORDER BY id",
        (account_id,),
    )
    return [_endpoint(row) for row in rows]


def update_endpoint(tx: Tx, found: EndpointRow, now: str) -> None:
    tx.execute(
        "UPDATE webhook_endpoints SET url = ?, topics = ?, active = ?, disabled_reason = ?,"
        " failing_since = ?, updated_at = ? WHERE id = ?",
        (
            found.url,
            encode(found.topics),
            found.active,
            found.disabled_reason,
            found.failing_since,
            now,
            found.id,
        ),
    )


def delete_endpoint(tx: Tx, account_id: int, endpoint_id: int) -> bool:
    """Delete the endpoint with its messages and delivery log; ``False`` if unknown."""
    gone = tx.execute(
        "DELETE FROM webhook_endpoints WHERE account_id = ? AND id = ?", (account_id, endpoint_id)
    )
    if not gone.rowcount:
        return False
    tx.execute("DELETE FROM webhook_messages WHERE endpoint_id = ?", (endpoint_id,))
    tx.execute("DELETE FROM webhook_attempts WHERE endpoint_id = ?", (endpoint_id,))
    return True


def due_endpoints(
    tx: Tx, now: str, *, limit: int, busy: Sequence[int], busy_accounts: Sequence[int]
) -> list[tuple[int, int]]:
    """``(endpoint id, account id)`` of active endpoints (neither ``busy`` nor of a busy
    account) with messages due by ``now``: first one endpoint of each account, then a second
    of each, and so on, in random order within each round, so that an account with many
    endpoints does not fill a claim and no endpoint is starved."""
    where = (
        "e.active = ? AND EXISTS (SELECT 1 FROM webhook_messages m WHERE m.endpoint_id = e.id"
        " AND m.state = 'pending' AND m.next_attempt_at <= ?)"
    )
    params: list[Any] = [True, now]
    for column, excluded in (("e.id", busy), ("e.account_id", busy_accounts)):
        if excluded:
            where += f" AND {column} NOT IN ({', '.join('?' * len(excluded))})"
            params.extend(excluded)
    params.append(limit)
    rows = tx.all(
        "SELECT id, account_id FROM (SELECT e.id, e.account_id, ROW_NUMBER() OVER"
        " (PARTITION BY e.account_id ORDER BY random()) AS turn FROM webhook_endpoints e"
        f" WHERE {where}) AS due ORDER BY turn, random() LIMIT ?",
        params,
    )
    return [(int(row[0]), int(row[1])) for row in rows]


def lock_due(tx: Tx, endpoint_id: int, now: str, *, limit: int) -> list[int]:
    """Lock up to ``limit`` of the endpoint's messages due by ``now``, oldest due first.
    Rows another worker holds are skipped (PostgreSQL), so concurrent workers lock
    different messages."""
    rows = tx.all(
        "SELECT id FROM webhook_messages WHERE endpoint_id = ? AND state = 'pending'"
        " AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ? {skip_locked}",
        (endpoint_id, now, limit),
    )
    return [int(row[0]) for row in rows]


def claim(tx: Tx, row_ids: Sequence[int], *, now: str, lease_until: str) -> list[Claimed]:
    """Count the next attempt of messages locked by ``lock_due`` in this transaction and
    lease them until ``lease_until``; return what sending them needs."""
    if not row_ids:
        return []
    marks = ", ".join("?" * len(row_ids))
    tx.execute(
        "UPDATE webhook_messages SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?"
        f" WHERE id IN ({marks})",
        (lease_until, now, *row_ids),
    )
    rows = tx.all(
        "SELECT m.id, m.account_id, m.endpoint_id, m.message_id, m.topic, m.payload, m.attempts,"
        " m.retries, e.url, e.secret_encrypted, a.secret_key_encrypted"
        " FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id"
        f" JOIN accounts a ON a.id = m.account_id WHERE m.id IN ({marks}) ORDER BY m.id",
        row_ids,
    )
    return [Claimed(*row) for row in rows]


def give_back(tx: Tx, claimed: Sequence[Claimed], *, now: str) -> int:
    """Undo the claims of messages that were never attempted: each is due again at once and
    its attempt uncounted, unless its claim was lost meanwhile (the count moved on).
    How many were given back."""
    given = 0
    for message in claimed:
        done = tx.execute(
            "UPDATE webhook_messages SET attempts = attempts - 1, next_attempt_at = ?,"
            " updated_at = ? WHERE id = ? AND attempts = ? AND state = 'pending'",
            (now, now, message.row_id, message.attempt),
        )
        given += int(done.rowcount)
    return given


def record(
    tx: Tx,
    claimed: Claimed,
    *,
    state: str,
    retries: int,
    next_attempt_at: str | None,
    status_code: int | None,
    error: str | None,
    latency_ms: int,
    attempted_at: str,
    now: str,
) -> bool:
    """Record the outcome of a claimed attempt; ``False`` (nothing written) when the claim
    was lost meanwhile (its lease ended and another worker took the message)."""
    updated = tx.execute(
        "UPDATE webhook_messages SET state = ?, retries = ?, next_attempt_at = ?,"
        " last_status = ?, last_error = ?, updated_at = ? WHERE id = ? AND attempts = ?",
        (
            state,
            retries,
            next_attempt_at,
            status_code,
            error,
            now,
            claimed.row_id,
            claimed.attempt,
        ),
    )
    if not updated.rowcount:
        return False
    tx.execute(
        "INSERT INTO webhook_attempts (account_id, endpoint_id, message_row, attempt,"
        " attempted_at, status_code, latency_ms, error, outcome)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            claimed.account_id,
            claimed.endpoint_id,
            claimed.row_id,
            claimed.attempt,
            attempted_at,
            status_code,
            latency_ms,
            error,
            state,
        ),
    )
    return True


def endpoint_health(tx: Tx, endpoint_id: int) -> tuple[bool, str | None] | None:
    """``(active, failing_since)`` of an endpoint, or ``None`` when it is gone."""
    row = tx.one("SELECT active, failing_since FROM webhook_endpoints WHERE id = ?", (endpoint_id,))
    return None if row is None else (bool(row[0]), None if row[1] is None else iso(row[1]))


def set_health(
    tx: Tx, endpoint_id: int, *, failing_since: str | None, disabled_reason: str | None, now: str
) -> None:
    """Note when an endpoint started failing (``None``: it works); a reason disables it."""
    if disabled_reason is None:
        tx.execute(
            "UPDATE webhook_endpoints SET failing_since = ? WHERE id = ?",
            (failing_since, endpoint_id),
        )
        return
    tx.execute(
        "UPDATE webhook_endpoints SET failing_since = ?, active = ?, disabled_reason = ?,"
        " updated_at = ? WHERE id = ?",
        (failing_since, False, disabled_reason, now, endpoint_id),
    )


def message(tx: Tx, account_id: int, message_id: str) -> tuple[int, int, str] | None:
    """``(row id, endpoint id, state)`` of a message by its webhook-id."""
    row = tx.one(
        "SELECT id, endpoint_id, state FROM webhook_messages WHERE account_id = ?"
        " AND message_id = ?",
        (account_id, message_id),
    )
    return None if row is None else (int(row[0]), int(row[1]), row[2])


def requeue(tx: Tx, row_id: int, *, now: str) -> None:
    """Make a message due now with a fresh retry schedule (a redelivery)."""
    tx.execute(
        "UPDATE webhook_messages SET state = 'pending', retries = 0, next_attempt_at = ?,"
        " updated_at = ? WHERE id = ?",
        (now, now, row_id),
    )


def requeue_dead(tx: Tx, endpoint_id: int, *, now: str) -> int:
    """Make every dead letter of the endpoint due now; how many."""
    done = tx.execute(
        "UPDATE webhook_messages SET state = 'pending', retries = 0, next_attempt_at = ?,"
        " updated_at = ? WHERE endpoint_id = ? AND state = 'dead'",
        (now, now, endpoint_id),
    )
    return int(done.rowcount)


def messages_page(
    tx: Tx, endpoint_id: int, *, state: str | None, before: int | None, limit: int
) -> list[Row]:
    """An endpoint's messages, newest first (``_MESSAGE_COLUMNS``)."""
    select = f"SELECT {_MESSAGE_COLUMNS} FROM webhook_messages"
    filters = {"endpoint_id": endpoint_id, "state": state}
    return newest_first(tx, select, filters, before=before, limit=limit)


def attempts_page(tx: Tx, endpoint_id: int, *, before: int | None, limit: int) -> list[Row]:
    """An endpoint's delivery log, newest first: ``(id, message_id, topic, attempt,
    attempted_at, status_code, latency_ms, error, outcome)``."""
    select = (
        "SELECT a.id, m.message_id, m.topic, a.attempt, a.attempted_at, a.status_code,"
        " a.latency_ms, a.error, a.outcome FROM webhook_attempts a"
        " JOIN webhook_messages m ON m.id = a.message_row"
    )
    filters = {"a.endpoint_id": endpoint_id}
    return newest_first(tx, select, filters, before=before, limit=limit, id_column="a.id")


def purge_finished(tx: Tx, before: str) -> int:
    """Delete delivered and dead messages last touched before ``before``, with their log."""
    tx.execute(
        "DELETE FROM webhook_attempts WHERE message_row IN (SELECT id FROM webhook_messages"
        " WHERE state <> 'pending' AND updated_at < ?)",
        (before,),
    )
    done = tx.execute(
        "DELETE FROM webhook_messages WHERE state <> 'pending' AND updated_at < ?", (before,)
    )
    return int(done.rowcount)

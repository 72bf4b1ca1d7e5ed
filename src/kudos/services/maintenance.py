"""Housekeeping that runs through the writer like any other work."""

from __future__ import annotations

from datetime import timedelta

from kudos.domain.model import iso_before, utc_now
from kudos.storage import burn as burn_rows
from kudos.storage import idempotency
from kudos.storage import webhooks as webhook_rows
from kudos.storage.writer import Call

IDEMPOTENCY_WINDOW = timedelta(hours=24)
HOLD_RETENTION = timedelta(days=30)  # an ended hold stays readable (GET …/hold/{ref}) this long


def purge_expired_idempotency_keys() -> Call:
    """Work that deletes idempotency keys older than the 24-hour window; returns how many."""
    before = iso_before(utc_now(), IDEMPOTENCY_WINDOW)
    return Call(lambda tx: idempotency.purge_before(tx, before))


def purge_finished_webhooks(*, now: str, retention: timedelta) -> Call:
    """Work that deletes delivered and dead webhook messages older than the retention, with
    their delivery log; returns how many messages."""
    before = iso_before(now, retention)
    return Call(lambda tx: webhook_rows.purge_finished(tx, before))


def purge_ended_holds(*, now: str) -> Call:
    """Work that deletes holds that ended (used, released or run out) more than
    ``HOLD_RETENTION`` ago; returns how many."""
    before = iso_before(now, HOLD_RETENTION)
    return Call(lambda tx: burn_rows.purge_holds_before(tx, before))

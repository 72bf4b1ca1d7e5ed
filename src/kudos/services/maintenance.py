"""Housekeeping that runs through the writer like any other work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from kudos.domain.model import iso_before, utc_now
from kudos.storage import idempotency
from kudos.storage import webhooks as webhook_rows
from kudos.storage.db import Tx

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(slots=True)
class PurgeExpiredIdempotencyKeys:
    """Delete idempotency keys older than the 24-hour window; returns how many."""

    now: str

    def prepare(self, tx: Tx) -> None:
        pass

    def lock_keys(self) -> list[str]:
        return []

    def apply(self, tx: Tx) -> int:
        return idempotency.purge_before(tx, iso_before(self.now, IDEMPOTENCY_WINDOW))


def purge_expired_idempotency_keys() -> PurgeExpiredIdempotencyKeys:
    return PurgeExpiredIdempotencyKeys(now=utc_now())


@dataclass(slots=True)
class PurgeFinishedWebhooks:
    """Delete delivered and dead webhook messages older than the retention; returns how many."""

    now: str
    retention: timedelta

    def prepare(self, tx: Tx) -> None:
        pass

    def lock_keys(self) -> list[str]:
        return []

    def apply(self, tx: Tx) -> int:
        return webhook_rows.purge_finished(tx, iso_before(self.now, self.retention))

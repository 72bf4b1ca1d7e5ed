"""The webhook worker: claims due messages, delivers them, records every attempt.

Claims and outcomes go through a writer (``storage.writer``), so the worker shares the one
SQLite writer inside ``kudos serve``, and on PostgreSQL several ``kudos worker`` processes
claim side by side: ``FOR UPDATE SKIP LOCKED`` gives each message's attempt to one of them.

Isolation: at most ``per_endpoint`` attempts per endpoint are in flight (a semaphore per
endpoint) and every attempt has a timeout, so a slow or dead endpoint holds a few slots while
the others keep flowing; the ingest path never waits on the worker at all.

Throughput: every claim and every outcome is a transaction, and a commit waits for the disk.
So a claim takes up to ``policy.PREFETCH`` messages per free slot of an endpoint (their attempts
queue on its semaphore, and the lease covers that wait), a slot is freed as soon as its HTTP
attempt ends, and outcomes are recorded by the writer's group commit, many per transaction.

``run_once`` is the whole cycle once, for tests with an injected clock; ``run`` loops until
``stop``, then finishes what it claimed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as random_module
import time
from collections import Counter
from collections.abc import Callable

import httpx

from kudos.domain.model import epoch, iso_at
from kudos.services.security import Keyring
from kudos.storage import webhooks as webhook_rows
from kudos.storage.db import Tx
from kudos.storage.webhooks import Claimed
from kudos.storage.writer import Call, Writer
from kudos.webhooks import delivery, policy
from kudos.webhooks.delivery import AttemptResult

log = logging.getLogger("kudos.webhooks")


class Worker:
    def __init__(
        self,
        *,
        writer: Writer,
        keyring: Keyring,
        client: httpx.AsyncClient,
        rules: policy.Policy,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.writer = writer
        self.keyring = keyring
        self.client = client
        self.rules = rules
        self.clock = clock
        self.random = random
        self._claimed: Counter[int] = Counter()  # per endpoint: claimed, not yet recorded
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._http = asyncio.Semaphore(rules.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._wake = asyncio.Event()

    async def run_once(self) -> int:
        """Claim what is due now, deliver it and record the outcomes; the attempts made."""
        claimed = await self._claim(self._capacity())
        await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    async def run(self) -> None:
        """Deliver until ``stop``; then wait for the attempts in flight and record them."""
        while not self._stopping:
            room = self._capacity() - len(self._tasks)
            claimed: list[Claimed] = []
            if room > 0:
                try:
                    claimed = await self._claim(room)
                except Exception:
                    log.exception("claiming webhook messages failed; next try in a moment")
            for message in claimed:
                task = asyncio.create_task(self._deliver(message))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
            if claimed and len(claimed) == room:
                continue  # more may be due: claim again at once
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.rules.poll)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        """Stop claiming; ``run`` returns once the attempts in flight are recorded."""
        self._stopping = True
        self._wake.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # a slot is free

    def _capacity(self) -> int:
        """Messages a worker holds at most (in flight or queued for a slot)."""
        return self.rules.concurrency * policy.PREFETCH

    async def _claim(self, room: int) -> list[Claimed]:
        most = self.rules.per_endpoint * policy.PREFETCH
        free = {e: most - n for e, n in self._claimed.items()}
        busy = sorted(e for e, slots in free.items() if slots <= 0)
        now = self.clock()

        def claim(tx: Tx) -> list[Claimed]:
            chosen: list[int] = []
            for endpoint_id in webhook_rows.due_endpoints(tx, iso_at(now), limit=room, busy=busy):
                slots = min(free.get(endpoint_id, most), room - len(chosen))
                if slots <= 0:
                    break
                chosen.extend(webhook_rows.lock_due(tx, endpoint_id, iso_at(now), limit=slots))
            lease_until = iso_at(now + self.rules.lease)
            return webhook_rows.claim(tx, chosen, now=iso_at(now), lease_until=lease_until)

        claimed: list[Claimed] = await self.writer.submit(Call(claim))
        for message in claimed:
            self._claimed[message.endpoint_id] += 1
        return claimed

    def _slot(self, endpoint_id: int) -> asyncio.Semaphore:
        found = self._slots.get(endpoint_id)
        if found is None:
            found = self._slots[endpoint_id] = asyncio.Semaphore(self.rules.per_endpoint)
        return found

    async def _deliver(self, message: Claimed) -> None:
        endpoint_id = message.endpoint_id
        try:
            async with self._http, self._slot(endpoint_id):
                started = self.clock()
                result = await delivery.attempt(
                    self.client,
                    message,
                    self.keyring,
                    timestamp=int(started),
                    seconds=self.rules.timeout,
                )
            await self._record(message, result, started)
        except Exception:  # the claim's lease ends and the message is retried
            log.exception("recording attempt %d of %s failed", message.attempt, message.message_id)
        finally:
            self._claimed[endpoint_id] -= 1
            if not self._claimed[endpoint_id]:
                del self._claimed[endpoint_id]
                self._slots.pop(endpoint_id, None)

    async def _record(self, message: Claimed, result: AttemptResult, started: float) -> None:
        decision = policy.after_attempt(
            self.rules, ok=result.ok, retries=message.retries, random=self.random
        )
        now = self.clock()
        retry_at = None if decision.delay is None else iso_at(now + decision.delay)

        def record(tx: Tx) -> bool:
            kept = webhook_rows.record(
                tx,
                message,
                state=decision.state,
                retries=decision.retries,
                next_attempt_at=retry_at,
                status_code=result.status_code,
                error=result.error,
                latency_ms=result.latency_ms,
                attempted_at=iso_at(started),
                now=iso_at(now),
            )
            if kept:
                self._track_health(tx, message.endpoint_id, result, now)
            return kept

        if not await self.writer.submit(Call(record)):
            log.warning("attempt %d of %s outlived its lease", message.attempt, message.message_id)
        elif decision.state == "dead":
            log.warning(
                "webhook %s to endpoint %d is a dead letter after %d attempts (%s)",
                message.message_id,
                message.endpoint_id,
                message.attempt,
                result.error,
            )

    def _track_health(self, tx: Tx, endpoint_id: int, result: AttemptResult, now: float) -> None:
        """Remember when an endpoint began failing; disable it when it fails for too long."""
        health = webhook_rows.endpoint_health(tx, endpoint_id)
        if health is None:
            return
        active, failing_since = health
        if result.ok:
            if failing_since is not None:
                webhook_rows.set_health(
                    tx, endpoint_id, failing_since=None, disabled_reason=None, now=iso_at(now)
                )
            return
        if failing_since is None:
            webhook_rows.set_health(
                tx, endpoint_id, failing_since=iso_at(now), disabled_reason=None, now=iso_at(now)
            )
        elif active and policy.should_disable(
            self.rules, failing_since=epoch(failing_since), now=now
        ):
            reason = (
                f"disabled at {iso_at(now)}: no successful delivery since {failing_since}"
                f" (last error: {result.error})"
            )
            webhook_rows.set_health(
                tx,
                endpoint_id,
                failing_since=failing_since,
                disabled_reason=reason,
                now=iso_at(now),
            )
            log.warning("webhook endpoint %d %s", endpoint_id, reason)

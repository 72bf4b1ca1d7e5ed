"""The webhook worker: claims due messages, delivers them, records every attempt.

Claims and outcomes go through a writer (``storage.writer``), so the worker shares the one
SQLite writer inside ``kudos serve``, and on PostgreSQL several ``kudos worker`` processes
claim side by side: ``FOR UPDATE SKIP LOCKED`` gives each message's attempt to one of them.

Isolation: an attempt needs a slot of its endpoint (``per_endpoint``), then a slot of the
worker shared fairly between accounts (``slots.FairSlots``: at most ``per_account`` per
account, and a freed slot goes to the waiting account with the fewest attempts in flight).
Every attempt ends at the policy's timeout in all, so a slow or hostile endpoint holds a few
slots of its own account for a bounded time while the others keep flowing; the ingest path
never waits on the worker at all.

Leases: a claim holds its messages for ``policy.lease``. An attempt starts only if the rest
of its lease covers its whole deadline and the time to record it (``Policy.can_start``);
otherwise the message is given back unsent, due again at once, so a delivery is never made
by a claim that another worker may already have taken over.

Throughput: every claim and every outcome is a transaction, and a commit waits for the disk.
So a claim takes up to ``policy.PREFETCH`` messages per slot of an endpoint and of an
account (their attempts queue for the slots), spread over accounts, and outcomes are
recorded by the writer's group commit, many per transaction.

``run_once`` is the whole cycle once, for tests with an injected clock; ``run`` loops until
``stop``, which gives back the claimed messages whose attempts have not started and lets
the attempts in flight end (within their deadline) and be recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as random_module
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from kudos.domain.model import epoch, iso_at
from kudos.services.security import Keyring
from kudos.storage import webhooks as webhook_rows
from kudos.storage.db import Tx
from kudos.storage.webhooks import Claimed
from kudos.storage.writer import Call, Writer
from kudos.webhooks import delivery, dns, policy
from kudos.webhooks.delivery import AttemptResult
from kudos.webhooks.slots import FairSlots

log = logging.getLogger("kudos.webhooks")


@dataclass(slots=True)
class _Job:
    """A claimed message on its way: waiting for its slots, then ``started``."""

    message: Claimed
    lease_end: float
    started: bool = False


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
        # Claimed and not finished, per endpoint and per account (the claims' bounds).
        self._claimed: Counter[int] = Counter()
        self._claimed_accounts: Counter[int] = Counter()
        self._endpoint_slots: dict[int, asyncio.Semaphore] = {}
        self._slots = FairSlots(total=rules.concurrency, per_account=rules.per_account)
        self._jobs: dict[asyncio.Task[bool], _Job] = {}
        self._returned: list[Claimed] = []  # not started when ``stop`` came
        self._stopping = False
        self._wake = asyncio.Event()

    async def run_once(self) -> int:
        """Claim what is due now, deliver it and record the outcomes; the attempts made."""
        tasks = self._start(await self._claim(self._capacity()))
        attempted = sum(await asyncio.gather(*tasks))
        await self._give_back_returned()
        return attempted

    async def run(self) -> None:
        """Deliver until ``stop``; then record the attempts in flight and give back the rest."""
        while not self._stopping:
            room = self._capacity() - len(self._jobs)
            claimed: list[_Job] = []
            if room > 0:
                try:
                    claimed = await self._claim(room)
                except Exception:
                    log.exception("claiming webhook messages failed; next try in a moment")
            self._start(claimed)
            if self._stopping:
                self._cancel_waiting()  # those claimed while ``stop`` came
                break
            if claimed and len(claimed) == room:
                continue  # more may be due: claim again at once
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.rules.poll)
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        await self._give_back_returned()

    def stop(self) -> None:
        """Stop claiming and give back what has not started; ``run`` returns once the
        attempts in flight are recorded."""
        self._stopping = True
        self._cancel_waiting()
        self._wake.set()

    def _capacity(self) -> int:
        """Messages a worker holds at most (in flight or queued for a slot)."""
        return self.rules.concurrency * policy.PREFETCH

    def _start(self, jobs: list[_Job]) -> list[asyncio.Task[bool]]:
        tasks = []
        for job in jobs:
            task = asyncio.create_task(self._deliver(job))
            self._jobs[task] = job
            task.add_done_callback(self._finished)
            tasks.append(task)
        return tasks

    def _cancel_waiting(self) -> None:
        for task, job in self._jobs.items():
            if not job.started:
                task.cancel()

    def _finished(self, task: asyncio.Task[bool]) -> None:
        job = self._jobs.pop(task)
        if not job.started:  # cancelled by ``stop`` before its turn
            self._returned.append(job.message)
        message = job.message
        for counter, key in (
            (self._claimed, message.endpoint_id),
            (self._claimed_accounts, message.account_id),
        ):
            counter[key] -= 1
            if not counter[key]:
                del counter[key]
        if message.endpoint_id not in self._claimed:
            self._endpoint_slots.pop(message.endpoint_id, None)
        self._wake.set()  # room to claim more

    async def _claim(self, room: int) -> list[_Job]:
        """Lock and lease due messages: at most ``PREFETCH`` per slot of an endpoint and of
        an account (counting what this worker holds already), accounts taking turns."""
        per_endpoint = self.rules.per_endpoint * policy.PREFETCH
        per_account = self.rules.per_account * policy.PREFETCH
        endpoint_room = {e: per_endpoint - n for e, n in self._claimed.items()}
        account_room = {a: per_account - n for a, n in self._claimed_accounts.items()}
        busy = sorted(e for e, left in endpoint_room.items() if left <= 0)
        busy_accounts = sorted(a for a, left in account_room.items() if left <= 0)
        now = self.clock()
        lease_end = now + self.rules.lease

        def claim(tx: Tx) -> list[Claimed]:
            left = dict(account_room)  # the writer may run this again after a conflict
            chosen: list[int] = []
            due = webhook_rows.due_endpoints(
                tx, iso_at(now), limit=room, busy=busy, busy_accounts=busy_accounts
            )
            for endpoint_id, account_id in due:
                slots = min(
                    endpoint_room.get(endpoint_id, per_endpoint),
                    left.get(account_id, per_account),
                    room - len(chosen),
                )
                if slots > 0:
                    locked = webhook_rows.lock_due(tx, endpoint_id, iso_at(now), limit=slots)
                    chosen.extend(locked)
                    left[account_id] = left.get(account_id, per_account) - len(locked)
            return webhook_rows.claim(tx, chosen, now=iso_at(now), lease_until=iso_at(lease_end))

        claimed: list[Claimed] = await self.writer.submit(Call(claim))
        for message in claimed:
            self._claimed[message.endpoint_id] += 1
            self._claimed_accounts[message.account_id] += 1
        return [_Job(message, lease_end) for message in claimed]

    async def _deliver(self, job: _Job) -> bool:
        """Attempt a claimed message once its slots are free, and record the outcome;
        ``False`` when it is given back unsent (its lease would not cover the attempt)."""
        message = job.message
        dns.owner.set(message.account_id)  # this task's host name lookups are the account's
        await self._take_slots(message)
        job.started = True
        try:
            started = self.clock()
            result = await self._attempt(job, started)
            if result is None:
                await self._give_back([message])
                return False
            await self._record(message, result, started)
        except Exception:  # the claim's lease ends and the message is retried
            log.exception("attempt %d of %s failed", message.attempt, message.message_id)
        return True

    async def _attempt(self, job: _Job, started: float) -> AttemptResult | None:
        """One attempt, if its lease covers it (``None`` if not); frees its slots."""
        try:
            if not self.rules.can_start(lease_end=job.lease_end, now=started):
                return None
            return await delivery.attempt(
                self.client,
                job.message,
                self.keyring,
                timestamp=int(started),
                seconds=self.rules.timeout,
            )
        finally:
            self._free_slots(job.message)

    async def _take_slots(self, message: Claimed) -> None:
        """Wait for a slot of the endpoint, then for one of the account's fair share (so a
        message waiting for its endpoint holds nothing that others could use)."""
        endpoint = self._endpoint_slots.get(message.endpoint_id)
        if endpoint is None:
            endpoint = asyncio.Semaphore(self.rules.per_endpoint)
            self._endpoint_slots[message.endpoint_id] = endpoint
        await endpoint.acquire()
        try:
            await self._slots.acquire(message.account_id)
        except BaseException:
            endpoint.release()
            raise

    def _free_slots(self, message: Claimed) -> None:
        self._slots.release(message.account_id)
        self._endpoint_slots[message.endpoint_id].release()

    async def _give_back_returned(self) -> None:
        returned, self._returned = self._returned, []
        if returned:
            await self._give_back(returned)

    async def _give_back(self, messages: list[Claimed]) -> None:
        """Undo the claims of messages not attempted: due again now, attempt uncounted."""
        now = iso_at(self.clock())
        try:
            given = await self.writer.submit(
                Call(lambda tx: webhook_rows.give_back(tx, messages, now=now))
            )
        except Exception:  # their leases end and they are claimed again then
            log.exception("giving back %d claimed webhook messages failed", len(messages))
            return
        log.debug("gave back %d of %d claimed webhook messages unsent", given, len(messages))

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

"""The composition root: builds the store, writer, reader and keyring from settings."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import httpx

from kudos.config import Settings
from kudos.domain.model import utc_now
from kudos.domain.ratelimit import RateLimiter
from kudos.services import accounts, maintenance, rewards
from kudos.services.burn import earn as burn_earn
from kudos.services.ingest import IngestContext, IngestHooks
from kudos.services.keys import KnownKeys
from kudos.services.security import KeyPair, Keyring
from kudos.storage.db import Database, Tx, open_database
from kudos.storage.reader import Reader
from kudos.storage.writer import NoHooks, Writer, build_writer
from kudos.webhooks import dns, transport
from kudos.webhooks.policy import parse_duration
from kudos.webhooks.worker import Worker

log = logging.getLogger("kudos")
T = TypeVar("T")
HOUSEKEEPING_SECONDS = 3600
EXPIRY_SECONDS = 60


def build_database(settings: Settings) -> Database:
    return open_database(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_checkpoint_seconds=settings.sqlite_checkpoint_seconds,
        sqlite_wal_max_bytes=settings.sqlite_wal_max_bytes,
    )


def build_keyring(settings: Settings) -> Keyring:
    return Keyring(settings.resolved_server_key())


@dataclass
class Runtime:
    """Everything a serving process owns; ``start`` before use, ``stop`` to drain and close."""

    settings: Settings
    db: Database
    context: IngestContext
    writer: Writer
    reader: Reader
    keys: KnownKeys
    # Webhook host name lookups (registration and, in this process, delivery): bounded per
    # account, on threads of their own.
    resolver: dns.Resolver = field(default_factory=dns.Resolver)
    created_default: KeyPair | None = field(default=None, repr=False)
    _housekeeping: asyncio.Task[None] | None = field(default=None, repr=False)
    _webhooks: tuple[Worker, asyncio.Task[None]] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = build_database(settings)
        context = IngestContext(
            keyring=build_keyring(settings),
            limiter=RateLimiter(),
            analytics=settings.analytics == "inline",
        )
        writer = build_writer(
            db,
            IngestHooks(),
            max_batch=settings.writer_max_batch,
            max_queue=settings.writer_max_queue,
        )
        reader = Reader(
            db, threads=settings.read_threads, per_account=settings.read_threads_per_account
        )
        return cls(settings, db, context, writer, reader, KnownKeys(reader, context.keyring))

    def start(self, *, migrate: bool, ensure_default_account: bool) -> None:
        """Migrate (if asked), create the default account on an empty store, start the writer.

        Call it from the event loop that will serve requests."""
        if migrate:
            self.db.migrate()
        if ensure_default_account:
            keyring = self.context.keyring
            self.created_default = run_in_transaction(
                self.db, lambda tx: accounts.ensure_default(tx, keyring)
            )
        self.db.start_serving()
        self.writer.start()
        loop = asyncio.get_running_loop()
        self._housekeeping = loop.create_task(self._keep_house())
        if runs_worker_in_process(self.settings, self.db):
            worker = build_worker(
                self.settings, self.writer, self.context.keyring, resolver=self.resolver
            )
            self._webhooks = (worker, loop.create_task(worker.run(), name="kudos-webhooks"))
        log.info("kudos ready on %s", self.db.describe())

    async def _keep_house(self) -> None:
        """Every minute: record expired points and make pending points whose return window
        passed available; hourly: purge idempotency keys past their 24-hour window, finished
        webhook messages past their retention and holds whose time ran out 30 days ago."""
        rounds = 0
        while True:
            try:
                expired = await self.writer.submit(rewards.ExpirePoints(now=utc_now()))
                if expired:
                    log.info("expired %d point credits", expired)
                matured = await self.writer.submit(burn_earn.MaturePoints(now=utc_now()))
                if matured:
                    log.info("%d pending point credits became available", matured)
                if rounds % (HOUSEKEEPING_SECONDS // EXPIRY_SECONDS) == 0:
                    purged = await self.writer.submit(maintenance.purge_expired_idempotency_keys())
                    log.info("purged %d expired idempotency keys", purged)
                    retention = timedelta(seconds=parse_duration(self.settings.webhook_retention))
                    purged = await self.writer.submit(
                        maintenance.purge_finished_webhooks(now=utc_now(), retention=retention)
                    )
                    log.info("purged %d finished webhook messages", purged)
                    purged = await self.writer.submit(maintenance.purge_ended_holds(now=utc_now()))
                    log.info("purged %d holds that ended more than 30 days ago", purged)
            except Exception:
                log.exception("housekeeping failed; next try in %d s", EXPIRY_SECONDS)
            rounds += 1
            await asyncio.sleep(EXPIRY_SECONDS)

    async def stop(self) -> None:
        """Commit everything queued, then close the connections."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._webhooks is not None:
            worker, task = self._webhooks
            worker.stop()
            await task  # the attempts in flight are recorded before the writer stops
            await worker.client.aclose()
        await self.writer.stop()
        self.reader.close()
        self.resolver.close()
        self.db.stop_serving()


def runs_worker_in_process(settings: Settings, db: Database) -> bool:
    """``auto``: the server delivers webhooks itself on SQLite (one process owns the file);
    on PostgreSQL, ``kudos worker`` processes do."""
    if settings.webhook_worker == "auto":
        return db.dialect == "sqlite"
    return settings.webhook_worker == "on"


def build_worker(
    settings: Settings,
    writer: Writer,
    keyring: Keyring,
    *,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] | None = None,
    resolver: dns.Resolver | None = None,
) -> Worker:
    """The webhook worker, on ``writer``, with the settings' delivery policy; its default
    client connects only to targets the policy allows (``webhooks.transport``), resolving
    on ``resolver`` (a new one if not given)."""
    rules = settings.webhook_policy()
    if client is None:
        client = transport.build_client(
            allow_private=rules.allow_private,
            max_connections=rules.concurrency,
            resolve=(resolver or dns.Resolver()).resolve,
        )
    return Worker(
        writer=writer, keyring=keyring, client=client, rules=rules, clock=clock or time.time
    )


async def run_worker(settings: Settings) -> None:
    """``kudos worker``: deliver webhooks until SIGTERM or SIGINT; then give back the claimed
    messages not yet attempted and record the attempts in flight (each ends within
    ``KUDOS_WEBHOOK_TIMEOUT_SECONDS``). A worker killed instead leaves its claims to lapse."""
    db = build_database(settings)
    writer = build_writer(
        db, NoHooks(), max_batch=settings.writer_max_batch, max_queue=settings.writer_max_queue
    )
    writer.start()
    worker = build_worker(settings, writer, build_keyring(settings))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    log.info("webhook worker started on %s", db.describe())
    try:
        await worker.run()
    finally:
        await worker.client.aclose()
        await writer.stop()
        log.info("webhook worker stopped")


def run_in_transaction(db: Database, fn: Callable[[Tx], T]) -> T:
    """Run ``fn(tx)`` in one write transaction on a fresh connection; return its result."""
    conn = db.connect(writer=True)
    try:
        tx = Tx(db, conn)
        with tx.transaction():
            return fn(tx)
    finally:
        conn.close()

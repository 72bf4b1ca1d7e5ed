"""Typed settings, read from ``KUDOS_*`` environment variables by the entrypoints."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kudos.webhooks import policy

DEFAULT_DATABASE_URL = "sqlite:///./kudos.db"
MAX_BODY_BYTES = 1024 * 1024


class Settings(BaseSettings):
    """Server settings. Build one in an entrypoint and pass it down; never at import time."""

    model_config = SettingsConfigDict(env_prefix="KUDOS_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # The server key encrypts stored secret keys and keys the API-key hashes. Production sets
    # KUDOS_SERVER_KEY; without it, a key file is created on first use (mode 0600).
    server_key: str | None = Field(default=None, repr=False)
    server_key_file: Path = Path("./kudos-server.key")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    sqlite_checkpoint_seconds: float = Field(default=5.0, gt=0)
    writer_max_batch: int = 512
    writer_max_queue: int = 20_000
    read_threads: int = Field(default=4, ge=1)
    # Reads one account may run at once (0: half of read_threads, at least 1), so one
    # account's heavy reads never hold every read thread.
    read_threads_per_account: int = Field(default=0, ge=0)
    log_level: str = "info"
    # What one client may hold (docs/configuration.md, "Limits"). The request line and headers,
    # and the time to send them; the time to send a body once its headers arrived.
    header_max_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # Bytes of request bodies held at once by all requests of a process; past it, 503.
    request_memory_bytes: int = Field(default=64 * 1024 * 1024, ge=MAX_BODY_BYTES)
    # Requests a process serves at once; past it, 503 with Retry-After (load shedding).
    max_requests_in_flight: int = Field(default=1024, ge=1)
    # One account's share of both (requests whose key the process has not seen yet share one
    # more): no tenant can take every slot or every byte from the others.
    account_requests_in_flight: int = Field(default=256, ge=1)
    account_request_memory_bytes: int = Field(default=16 * 1024 * 1024, ge=MAX_BODY_BYTES)
    # Open connections a process accepts (uvicorn's limit_concurrency); past it, plain 503.
    max_connections: int = Field(default=4096, ge=1)
    # The SQLite WAL is checkpointed and reset once it passes this size.
    sqlite_wal_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    # Webhooks (docs/webhooks.md). Delays between attempts: the first attempt is immediate,
    # then one retry per delay (about three days in all), then the message is a dead letter.
    webhook_retry_schedule: str = "5s,1m,5m,30m,2h,6h,12h,24h,24h"
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=64, ge=1)
    webhook_concurrency_per_endpoint: int = Field(default=4, ge=1)
    # Attempts in flight per account and worker: one account's endpoints never take them all.
    webhook_concurrency_per_account: int = Field(default=16, ge=1)
    webhook_max_endpoints: int = Field(default=10, ge=1, le=1000)
    # Loopback and private targets (a self-hosted install often delivers inside its network);
    # link-local (the cloud metadata address), unspecified and multicast are always refused.
    webhook_allow_private: bool = True
    # An endpoint that has not answered 2xx for this long is disabled (and says why).
    webhook_disable_after: str = "5d"
    # Delivered and dead messages (and their delivery log) are kept this long, then purged.
    webhook_retention: str = "30d"
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    # auto: inside `kudos serve` on SQLite; PostgreSQL runs `kudos worker` processes instead.
    webhook_worker: Literal["auto", "on", "off"] = "auto"
    # Analytics kept as events are stored (inline, in their transaction), or not at all (off:
    # for measuring what keeping them costs; `kudos analytics rebuild` catches up).
    analytics: Literal["inline", "off"] = "inline"

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        policy.parse_schedule(value)
        return value

    @field_validator("webhook_disable_after", "webhook_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        policy.parse_duration(value)
        return value

    def webhook_policy(self) -> policy.Policy:
        """The webhook delivery policy these settings describe."""
        return policy.Policy(
            schedule=policy.parse_schedule(self.webhook_retry_schedule),
            timeout=self.webhook_timeout_seconds,
            concurrency=self.webhook_concurrency,
            per_endpoint=self.webhook_concurrency_per_endpoint,
            per_account=self.webhook_concurrency_per_account,
            disable_after=policy.parse_duration(self.webhook_disable_after),
            poll=self.webhook_poll_seconds,
            allow_private=self.webhook_allow_private,
        )

    def resolved_server_key(self) -> str:
        """Return the server key, creating the key file on first use when none is configured."""
        if self.server_key:
            return self.server_key
        path = self.server_key_file
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key

"""Typed settings, read from ``KUDOS_*`` environment variables by the entrypoints."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    read_threads: int = 4
    log_level: str = "info"

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

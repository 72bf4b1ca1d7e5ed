"""Which API keys exist: a small, short-lived cache in front of the store.

The API asks it before it reads a request's body, so a client with a missing or unknown key
is refused without its body ever being read, and reads are queued under their account
(``storage.reader``) before they run. It is a gate, not the authority: the writer and the
reads still authenticate every request in their transaction (secret key, high security,
rotated keys). Lookups run on a read thread, in the reader's group for reads whose account
is not known, so a flood of unknown keys holds at most that group's threads.

Bounded: at most ``MAX_KEYS`` known and as many unknown keys are remembered; a known key
stays usable while it is refreshed in the background once ``KNOWN_SECONDS`` old (a well-behaved
client never waits for a lookup after its first request); an unknown one is refused without a
lookup for ``UNKNOWN_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from kudos import errors
from kudos.services import accounts
from kudos.services.security import Keyring
from kudos.storage.reader import Reader

log = logging.getLogger("kudos.keys")

MAX_KEYS = 10_000
# Longer than any API key kudos issues (32 characters): refused without a lookup, and never
# remembered, so the unknown keys kept cost at most MAX_KEYS times this many characters.
MAX_KEY_CHARS = 64
KNOWN_SECONDS = 30.0
UNKNOWN_SECONDS = 5.0

V = TypeVar("V")


class KnownKeys:
    """API key → account id, as the store said a moment ago."""

    def __init__(
        self, reader: Reader, keyring: Keyring, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reader = reader
        self._keyring = keyring
        self._clock = clock
        # key → (account id, its rate-limit policy, fresh until)
        self._known: dict[str, tuple[int, str, float]] = {}
        self._unknown: dict[str, float] = {}  # key → refused without a lookup until
        self._lookups: dict[str, asyncio.Task[int | None]] = {}

    @property
    def remembered(self) -> tuple[int, int]:
        """How many known and unknown keys are remembered now."""
        return len(self._known), len(self._unknown)

    def cached(self, api_key: str) -> int | None:
        """The account id of a key seen lately, without waiting (the hot path); a stale entry
        is still answered while a lookup refreshes it."""
        entry = self.entry(api_key)
        return None if entry is None else entry[0]

    def entry(self, api_key: str) -> tuple[int, str] | None:
        """``(account id, rate-limit policy)`` of a key seen lately, as ``cached``."""
        entry = self._known.get(api_key)
        if entry is None:
            return None
        if entry[2] < self._clock():
            self._look_up(api_key)
        return entry[0], entry[1]

    async def account_id(self, api_key: str | None) -> int:
        """The account id of ``api_key``; ``AuthError`` when it is missing or unknown (or
        longer than any key kudos issues: never looked up nor remembered), ``Unavailable``
        when the store cannot be asked."""
        if not api_key or len(api_key) > MAX_KEY_CHARS:
            raise errors.AuthError()
        known = self.cached(api_key)
        if known is not None:
            return known
        refused_until = self._unknown.get(api_key)
        if refused_until is not None and refused_until >= self._clock():
            raise errors.AuthError()
        # Shielded: a client that goes away does not cancel a lookup others may wait for.
        try:
            found = await asyncio.shield(self._look_up(api_key))
        except errors.KudosError:
            raise
        except Exception:  # the store is unreachable (logged by the lookup): retry later
            raise errors.Unavailable(retry_after=1) from None
        if found is None:
            raise errors.AuthError()
        return found

    def _look_up(self, api_key: str) -> asyncio.Task[int | None]:
        """The lookup of ``api_key`` in progress, started if there is none."""
        task = self._lookups.get(api_key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(api_key))
            self._lookups[api_key] = task
            task.add_done_callback(_observed)
        return task

    async def _fetch(self, api_key: str) -> int | None:
        try:
            account = await self._reader.run(accounts.lookup, self._keyring, api_key)
        except Exception:
            log.warning("API key lookup failed", exc_info=True)  # never the key itself
            raise
        finally:
            del self._lookups[api_key]
        now = self._clock()
        if account is None:
            self._known.pop(api_key, None)
            _put(self._unknown, api_key, now + UNKNOWN_SECONDS)
            return None
        self._unknown.pop(api_key, None)
        _put(self._known, api_key, (account.id, account.rate_limit, now + KNOWN_SECONDS))
        return account.id


def _put(entries: dict[str, V], key: str, value: V) -> None:
    """Remember ``value``; past ``MAX_KEYS`` the entry refreshed longest ago is dropped."""
    entries.pop(key, None)  # re-inserted last: dicts keep insertion order
    if len(entries) >= MAX_KEYS:
        del entries[next(iter(entries))]
    entries[key] = value


def _observed(task: asyncio.Task[int | None]) -> None:
    """Mark a background refresh's failure as seen (it was logged; the stale entry stays)."""
    if not task.cancelled():
        task.exception()

"""Host name lookups for webhooks, bounded and shared fairly between accounts.

``getaddrinfo`` blocks a thread until the system resolver answers, and a nameserver that never
answers holds it for the resolver's own timeout, long after the attempt that asked gave up. So
lookups run on a small pool of their own (never the event loop's default executor, which other
work shares), one lookup per host name at a time (later askers wait for the same answer), and
an account may keep at most ``PER_OWNER`` lookups running, abandoned ones included: past that
its next lookup fails at once, so one tenant's slow names cannot hold the threads every other
tenant's deliveries and registrations need.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS = 16
PER_OWNER = 4
Lookup = Callable[..., Sequence[tuple[Any, ...]]]  # ``socket.getaddrinfo``'s shape
Port = int | str  # a number or a service name (``https``)

owner: contextvars.ContextVar[object] = contextvars.ContextVar("kudos_dns_owner", default=None)
"""Whose lookups these are (an account id), for the delivery that is running."""


class LookupsBusy(OSError):
    """The account already has as many lookups running as it may."""


class Resolver:
    """Resolves host names on its own threads; see the module doc."""

    def __init__(self, *, threads: int = THREADS, lookup: Lookup | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kudos-dns")
        self._lookup = lookup
        self._pending: dict[tuple[str, Port], asyncio.Future[list[str]]] = {}
        self._running: Counter[object] = Counter()  # per owner, abandoned lookups included

    async def resolve(self, host: str, port: Port, *, who: object = None) -> list[str]:
        """The addresses ``host`` resolves to, in the resolver's order, without repeats."""
        who = owner.get() if who is None else who
        key = (host, port)
        pending = self._pending.get(key)
        if pending is None:
            if self._running[who] >= PER_OWNER:
                raise LookupsBusy(f"{PER_OWNER} lookups of this account are still running")
            pending = asyncio.wrap_future(self._pool.submit(self._addresses, host, port))
            self._pending[key] = pending
            self._running[who] += 1
            pending.add_done_callback(lambda _: self._finished(key, who))
        return await asyncio.shield(pending)  # a caller that gives up leaves it to others

    def _addresses(self, host: str, port: Port) -> list[str]:
        lookup = self._lookup or socket.getaddrinfo  # looked up now: tests replace it
        found = lookup(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in found))

    def _finished(self, key: tuple[str, Port], who: object) -> None:
        self._pending.pop(key, None)
        self._running[who] -= 1
        if not self._running[who]:
            del self._running[who]

    def close(self) -> None:
        """Stop taking lookups (the running ones end on their own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

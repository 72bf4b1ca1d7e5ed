"""Host name lookups for webhooks: on threads of their own, one per name at a time, and at
most ``PER_OWNER`` running per account, abandoned ones included."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest

from kudos.webhooks import dns


class SlowDns:
    """A fake ``getaddrinfo``: names starting with ``slow`` block until ``release``."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = threading.Event()

    def __call__(self, host: str, port: Any, **_: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        if host.startswith("slow"):
            self.gate.wait(10)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]


@pytest.fixture
def slow_dns() -> Any:
    fake = SlowDns()
    yield fake
    fake.gate.set()


async def test_one_lookup_per_name_at_a_time(slow_dns: SlowDns) -> None:
    resolver = dns.Resolver(lookup=slow_dns)
    both = asyncio.gather(
        resolver.resolve("slow.example", 443, who=1), resolver.resolve("slow.example", 443, who=2)
    )
    await asyncio.sleep(0.05)
    slow_dns.gate.set()
    assert await both == [["93.184.216.34"], ["93.184.216.34"]]
    assert slow_dns.calls == ["slow.example"]
    resolver.close()


async def test_an_account_s_slow_names_never_hold_another_account_s_lookups(
    slow_dns: SlowDns,
) -> None:
    resolver = dns.Resolver(threads=dns.PER_OWNER + 1, lookup=slow_dns)
    stuck = [
        asyncio.ensure_future(resolver.resolve(f"slow-{n}.example", 443, who="a"))
        for n in range(dns.PER_OWNER)
    ]
    await asyncio.sleep(0.05)
    with pytest.raises(dns.LookupsBusy):  # its lookups still run: the next one fails at once
        await resolver.resolve("slow-more.example", 443, who="a")
    for waiting in stuck:  # the deliveries give up (their deadline); the threads stay busy
        waiting.cancel()
    with pytest.raises(dns.LookupsBusy):
        await resolver.resolve("slow-more.example", 443, who="a")
    other = await asyncio.wait_for(resolver.resolve("fast.example", 443, who="b"), 2)
    assert other == ["93.184.216.34"]  # another account's lookup went through meanwhile
    slow_dns.gate.set()
    await asyncio.sleep(0.1)  # the stuck lookups end: the account may look up again
    assert await resolver.resolve("slow-again.example", 443, who="a") == ["93.184.216.34"]
    resolver.close()


async def test_a_delivery_s_lookups_count_as_its_account_s(slow_dns: SlowDns) -> None:
    resolver = dns.Resolver(lookup=slow_dns)

    async def delivery(account: int, host: str) -> list[str]:
        dns.owner.set(account)
        return await resolver.resolve(host, 443)

    tasks = [asyncio.ensure_future(delivery(7, f"slow-{n}.example")) for n in range(dns.PER_OWNER)]
    await asyncio.sleep(0.05)
    with pytest.raises(dns.LookupsBusy):
        await delivery(7, "slow-5.example")
    assert await delivery(8, "fast.example") == ["93.184.216.34"]
    slow_dns.gate.set()
    await asyncio.gather(*tasks)
    resolver.close()

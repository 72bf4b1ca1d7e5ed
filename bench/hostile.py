"""Hostile clients: what they cost the server and the well-behaved clients beside them.

    .venv/bin/python bench/hostile.py [--seconds 20] [--only slow-bodies,flood]

One fresh SQLite ``kudos serve`` with a well-behaved shop (wrk, ``--good`` connections, the
ingest benchmark's bodies; its rate limit off) and an attacker's accounts: one with kudos'
default rate limit, and, for the flood, one without any. For each phase the shop's load
runs for ``--seconds`` while an attacker process (this script, ``--attack NAME``) does one
thing; the first phase has no attacker and is the reference. Every phase prints the shop's
requests/s, p50, p99 and errors, the server's peak RSS (sampled every 0.2 s, the process and
its children), and what the attacker's connections got (status codes, closed, still open).

Attacks (``--scale`` multiplies the connection counts):

- ``big-headers``: 100 connections each sending a request whose header grows to 10 MB;
- ``slow-bodies``: 500 connections (a valid key) that announce 1 MiB and send 1 KB, then a
  byte every 5 s;
- ``unauthenticated``: 500 connections posting 1 MiB bodies with an unknown key, in a loop;
- ``flood``: 2,000 connections posting valid small requests (rate limit off), in a loop;
- ``heavy``: 16 connections posting the largest valid bodies (the most keys and values a
  request may hold, close to 1 MiB), in loops;
- ``reads``: 8 connections reading the attacker's event catalog (after ``heavy``: its names
  and keys), in loops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run

EVENTS = "/api/v4.0/integrations/events"
CATALOG = "/api/kudos/v1/events/catalog"
ATTACKS = ("big-headers", "slow-bodies", "unauthenticated", "flood", "heavy", "reads")
MIB = 1024 * 1024
# The attacker's accounts: a tenant with kudos' default rate limit (Gameball's: 100 requests a
# second, 1,200 per 30 s), and one its operator trusted with no limit at all, for the flood
# (what a saturated server does, rather than what a rate limit does).
ATTACKERS = {"limited": "gameball", "unlimited": "off"}
UNLIMITED = frozenset({"flood"})


# --- the attacker (a process of its own) ------------------------------------------------------


def _request(method: str, path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: kudos", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _status(reader: asyncio.StreamReader, seconds: float) -> str:
    """The status code of the answer, or what happened instead."""
    try:
        line = await asyncio.wait_for(reader.readline(), seconds)
    except TimeoutError:
        return "no answer"
    except OSError:
        return "reset"
    if not line:
        return "closed"
    parts = line.split()
    status = parts[1].decode() if len(parts) > 1 else "garbage"
    await _skip_answer(reader)
    return status


async def _skip_answer(reader: asyncio.StreamReader) -> None:
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)


class Attacker:
    def __init__(self, port: int, keys: tuple[str, str], until: float) -> None:
        self.port = port
        self.keys = keys
        self.until = until
        self.outcomes: Counter[str] = Counter()
        self.open = 0

    def headers(self, **extra: str) -> dict[str, str]:
        base = {"content-type": "application/json", "apikey": self.keys[0]}
        return {**base, "secretkey": self.keys[1], **extra}

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection("127.0.0.1", self.port, limit=MIB)
        except OSError:
            self.outcomes["connect failed"] += 1
            await asyncio.sleep(0.1)
            return None

    async def big_headers(self) -> None:
        chunk = b"x" * 65536
        while time.monotonic() < self.until:
            found = await self.connect()
            if found is None:
                continue
            reader, writer = found
            head = _request("POST", EVENTS, self.headers(), 2)[:-2]  # headers not ended yet
            try:
                writer.write(head + b"x-junk: ")
                for _ in range(10 * MIB // len(chunk)):
                    writer.write(chunk)
                    await writer.drain()
                writer.write(b"\r\n\r\n{}")
                await writer.drain()
                self.outcomes[await _status(reader, 10)] += 1
            except OSError:
                self.outcomes["closed while sending"] += 1
            writer.close()

    async def slow_body(self) -> None:
        found = await self.connect()
        if found is None:
            return
        reader, writer = found
        self.open += 1
        try:
            writer.write(_request("POST", EVENTS, self.headers(), MIB) + b"{" + b" " * 1023)
            await writer.drain()
            answer = asyncio.ensure_future(_status(reader, self.until - time.monotonic()))
            while not answer.done() and time.monotonic() < self.until:
                await asyncio.sleep(5)
                if not answer.done():
                    writer.write(b" ")
                    await writer.drain()
            self.outcomes[await answer] += 1
        except OSError:
            self.outcomes["closed while sending"] += 1
        finally:
            self.open -= 1
            writer.close()

    async def looping(self, request: bytes, label: str = "") -> None:
        """One connection sending ``request`` again and again, each once answered
        (reconnecting when closed); outcomes counted under ``label`` + the status."""
        while time.monotonic() < self.until:
            found = await self.connect()
            if found is None:
                continue
            reader, writer = found
            try:
                while time.monotonic() < self.until:
                    writer.write(request)
                    await writer.drain()
                    status = await _status(reader, 60)
                    self.outcomes[label + status] += 1
                    if not status.isdigit():
                        break
            except OSError:
                self.outcomes[label + "closed while sending"] += 1
            writer.close()

    def posting(self, body: bytes, headers: dict[str, str]) -> Awaitable[None]:
        return self.looping(_request("POST", EVENTS, headers, len(body)) + body)

    def reading(self, path: str) -> Awaitable[None]:
        return self.looping(_request("GET", path, self.headers(), 0), "read ")


def _small_body(n: int) -> bytes:
    return json.dumps(
        {"customerId": f"flood-{n % 5000}", "events": {"ping": {"n": n}}}, separators=(",", ":")
    ).encode()


def _heavy_body() -> bytes:
    """A body with the most kudos accepts, close to 1 MiB: 1,000 top-level metadata keys over
    four events, each holding a list of nine strings (10,000 keys and array items in all)."""
    item = "v" * ((MIB - 64 * 1024) // 9000 - 4)
    metadata = {f"key_{k:03d}": [item] * 9 for k in range(250)}
    events = {f"heavy_{e}": metadata for e in range(4)}
    return json.dumps({"customerId": "heavy", "events": events}, separators=(",", ":")).encode()


async def attack(name: str, port: int, keys: tuple[str, str], seconds: float, scale: float) -> None:
    attacker = Attacker(port, keys, time.monotonic() + seconds)
    n = lambda count: max(1, round(count * scale))  # noqa: E731
    if name == "big-headers":
        jobs = [attacker.big_headers() for _ in range(n(100))]
    elif name == "slow-bodies":
        jobs = [attacker.slow_body() for _ in range(n(500))]
    elif name == "unauthenticated":
        bad = attacker.headers(apikey="not-a-key", secretkey="not-a-key")
        jobs = [attacker.posting(b"{" + b" " * (MIB - 2) + b"}", bad) for _ in range(n(500))]
    elif name == "flood":
        jobs = [attacker.posting(_small_body(i), attacker.headers()) for i in range(n(2000))]
    elif name == "heavy":
        body = _heavy_body()
        jobs = [attacker.posting(body, attacker.headers()) for _ in range(n(16))]
    else:
        jobs = [attacker.reading(CATALOG) for _ in range(n(8))]
    await asyncio.gather(*jobs)
    print("OUTCOMES " + json.dumps({**attacker.outcomes, "still open": attacker.open}))


# --- the run ----------------------------------------------------------------------------------


class PeakRss:
    """Samples a process tree's RSS in a thread; ``peak`` in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, run.rss_mb(self.pid))


def phase(
    name: str, server: run.Server, attacker_keys: tuple[str, str], args: argparse.Namespace
) -> list[str]:
    command = [sys.executable, __file__, "--attack", name, "--port", str(server.port)]
    command += ["--keys", *attacker_keys, "--seconds", str(args.seconds + 2)]
    command += ["--scale", str(args.scale)]
    attacker = None if name == "none" else subprocess.Popen(command, stdout=subprocess.PIPE)
    time.sleep(0 if attacker is None else 1.0)  # let the attack take hold first
    with PeakRss(server.process.pid) as rss:
        good = run.wrk(server, args.seconds, args.good)
    outcome = ""
    if attacker is not None:
        out, _ = attacker.communicate(timeout=args.seconds + 120)
        line = next((x for x in out.decode().splitlines() if x.startswith("OUTCOMES ")), "")
        outcome = line.removeprefix("OUTCOMES ")
    return [
        name,
        f"{good.rate:,.0f}",
        f"{good.p50_ms:.1f}",
        f"{good.p99_ms:.1f}",
        f"{good.non2xx + good.socket_errors}",
        f"{rss.peak:.0f}",
        outcome,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="Length of each phase.")
    parser.add_argument("--good", type=int, default=8, help="The shop's wrk connections.")
    parser.add_argument("--only", default=",".join(ATTACKS), help="Attacks to run.")
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplies attack sizes.")
    parser.add_argument("--body-timeout", default="10", help="KUDOS_BODY_TIMEOUT_SECONDS.")
    parser.add_argument("--attack", choices=ATTACKS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keys", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        asyncio.run(attack(args.attack, args.port, tuple(args.keys), args.seconds, args.scale))
        return 0
    with tempfile.TemporaryDirectory(prefix="kudos-hostile-") as folder:
        return _run(Path(folder), args)


def _attacker(db_url: str, name: str, rate_limit: str) -> tuple[str, str]:
    created = json.loads(run.kudos("accounts", "create", name, "--db", db_url, "--json"))
    run.kudos("accounts", "set", name, "--rate-limit", rate_limit, "--db", db_url)
    return created["apiKey"], created["secretKey"]


def _run(work: Path, args: argparse.Namespace) -> int:
    db_url = f"sqlite:///{work}/kudos.db"
    run.kudos("migrate", "--db", db_url)
    keys = {name: _attacker(db_url, name, limit) for name, limit in ATTACKERS.items()}
    os.environ["KUDOS_BODY_TIMEOUT_SECONDS"] = args.body_timeout  # run.env() passes it on
    server = run.start_kudos("hostile", db_url, work)  # the shop: account "bench"
    try:
        run.warm_up(server, argparse.Namespace(warmup=5, connections=args.good, warm_requests=0))
        rows = [phase("none", server, keys["limited"], args)]
        for name in [a for a in args.only.split(",") if a]:
            print(f"  {name} ...", flush=True)
            attacker = keys["unlimited" if name in UNLIMITED else "limited"]
            rows.append(phase(name, server, attacker, args))
            time.sleep(2)  # let the server settle between attacks
    finally:
        run.stop(server.process)
    header = ["attack", "shop req/s", "p50 ms", "p99 ms", "errors", "peak RSS MB", "attacker"]
    print(
        f"\nkudos serve (SQLite), the shop on {args.good} connections, {args.seconds} s per"
        f" phase, KUDOS_BODY_TIMEOUT_SECONDS={args.body_timeout}, scale {args.scale}\n"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

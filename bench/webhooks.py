"""The webhook benchmark: what an outbox subscriber costs ingestion, and how fast kudos
delivers, in one invocation.

    .venv/bin/python bench/webhooks.py [--duration 10] [--rounds 3]

Two fresh SQLite servers take the ingest benchmark's load (wrk, 64 connections, two events
per request), each round right after an echo round: one with no webhook endpoint, one with an
endpoint subscribed to ``event.received`` (the heaviest topic: one message per event, so two
per request), delivered by the server's own worker to a local receiver while the load runs.
It prints both rates and their ratio, then how long the worker takes to deliver every message
after the load stops, the delivery rate over the whole run, and checks that every message
arrived once (at-least-once allows duplicates; the benchmark counts them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run

DRAIN_LIMIT = 600.0


def start_receiver(work: Path) -> run.Server:
    return run.start_asgi("bench.receiver:app", work / "receiver.log")


def counts(receiver: run.Server) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{receiver.port}/count", timeout=5) as reply:
        found: dict[str, int] = json.loads(reply.read())
        return found


def add_endpoint(server: run.Server, url: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/kudos/v1/webhooks",
        data=json.dumps({"url": url, "topics": ["event.received"]}).encode(),
        headers={
            "apikey": server.keys[0],
            "secretkey": server.keys[1],
            "content-type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 201


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run.add_load_options(parser, rounds=3, warmup=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kudos-bench-webhooks-") as tmp:
        work = Path(tmp)
        echo = run.start_echo(work)
        receiver = start_receiver(work)
        plain = run.start_kudos("plain", f"sqlite:///{work}/plain.db", work)
        hooked_db = f"sqlite:///{work}/hooked.db"
        hooked = run.start_kudos("hooked", hooked_db, work)
        try:
            add_endpoint(hooked, f"http://127.0.0.1:{receiver.port}/hook")
            return measure(args, echo, receiver, plain, hooked, hooked_db)
        finally:
            for server in (plain, hooked, receiver, echo):
                run.stop(server.process)


def measure(
    args: argparse.Namespace,
    echo: run.Server,
    receiver: run.Server,
    plain: run.Server,
    hooked: run.Server,
    hooked_db: str,
) -> int:
    started = time.monotonic()
    for server in (plain, hooked):
        run.wrk(server, args.warmup, args.connections)
    ratios: dict[str, list[float]] = {"plain": [], "hooked": []}
    for _ in range(args.rounds):
        for name, server in (("plain", plain), ("hooked", hooked)):
            reference = run.wrk(echo, args.duration, args.connections)
            load = run.wrk(server, args.duration, args.connections)
            ratios[name].append(load.rate / reference.rate)
            print(
                f"  {name}: {load.rate:.0f} req/s (echo {reference.rate:.0f}),"
                f" p99 {load.p99_ms:.1f} ms, {load.non2xx} non-2xx",
                flush=True,
            )
    load_ended = time.monotonic()
    # Requests in flight when wrk stopped may still commit: count the messages as they stand.
    while (
        counts(receiver)["unique"] < messages_created(hooked_db)
        and time.monotonic() - load_ended < DRAIN_LIMIT
    ):
        time.sleep(0.2)
    drained = time.monotonic()
    created, seen = messages_created(hooked_db), counts(receiver)
    plain_ratio, hooked_ratio = (statistics.median(ratios[k]) for k in ("plain", "hooked"))
    share = hooked_ratio / plain_ratio
    print(f"\nwithout an endpoint: {plain_ratio:.2f} of echo (median of {args.rounds} rounds)")
    print(f"with event.received: {hooked_ratio:.2f} of echo: {share:.2f} of the rate without")
    print(
        f"messages: {created:,} created, {seen['unique']:,} delivered"
        f" ({seen['received'] - seen['unique']:,} duplicates);"
        f" the last {drained - load_ended:.1f} s after the load stopped;"
        f" {seen['unique'] / (drained - started):,.0f} deliveries/s over the whole run"
    )
    delivered_all = seen["unique"] == created
    print(f"{'PASS' if delivered_all else 'FAIL'}  every message delivered")
    return 0 if delivered_all else 1


def messages_created(db_url: str) -> int:
    path = db_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM webhook_messages").fetchone()[0])


if __name__ == "__main__":
    sys.exit(main())

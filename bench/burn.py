"""The burn benchmark: a checkout mix on Gameball's Transactions and Orders APIs, as a ratio of
the echo loaded the same way in the same invocation.

    .venv/bin/python bench/burn.py [--duration 10] [--rounds 3] [--concurrency 32]
                                   [--only sqlite,postgres] [--client raw|httpx]

A checkout is a hold (``amountToHold``) and then an order that burns it (``totalPaid``, two or
three line items); one checkout in ten (at random) also refunds half of one of the worker's
earlier orders. Each step needs the answer before it (the hold's reference), which wrk's
static bodies cannot give, so the load comes from a Python generator: ``--concurrency``
workers running checkouts in a loop, each on its own keep-alive connection, in a process of
its own pinned to the last CPU. The echo is loaded by the same generator with the same bodies
(it answers no reference; the order then sends a made-up one), so the ratio compares like
with like. Customers are seeded with points first (manual transactions) so the holds succeed.

Each target (kudos on SQLite; on PostgreSQL with ``--workers 1`` when ``--pg-url`` answers) gets
a fresh database, is seeded and warmed up, then runs ``--rounds`` rounds, each right after an
echo round. It prints checkouts/s, requests/s, the median of the paired ratios, the server's
CPU per request, p50/p99 per request kind, and non-2xx answers with their codes; then checks,
for a sample of customers, that the balance is the seed, minus what was redeemed, plus what
was rewarded, minus what was clawed back, plus what was returned, as the answers said.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run

V4 = "/api/v4.0/integrations"
PROGRAM = {
    "currency": "USD",
    "redemption": {"pointValue": 0.1},
    "cashback": {"points": 1, "every": 1},
}
KINDS = ("hold", "order", "refund")
REFUND_SHARE = 0.1  # of the checkouts also refund one of the worker's earlier orders
SEED_POINTS = 100_000  # per customer: far more than the holds of a run take
LOAD_CPU = (os.cpu_count() or 1) - 1  # the generator's CPU, as wrk's in bench/run.py


# --- bodies and answers ------------------------------------------------------------------------


def money(cents: int) -> str:
    """An amount as Gameball's clients may send it: a numeric string, exact."""
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True)
class Cart:
    """A checkout's basket: (productId, quantity, price in cents) lines and the amount held."""

    lines: tuple[tuple[str, int, int], ...]
    hold_cents: int

    @property
    def total_cents(self) -> int:
        return sum(quantity * price for _, quantity, price in self.lines)

    @property
    def paid_cents(self) -> int:
        return self.total_cents - self.hold_cents


def make_cart(rng: random.Random) -> Cart:
    """Two or three lines of 10.00-49.99, and 1-5 (10-50 points) paid with points."""
    lines = tuple(
        (f"p{rng.randrange(500)}", rng.randint(1, 2), rng.randrange(1000, 5000))
        for _ in range(rng.randint(2, 3))
    )
    return Cart(lines, hold_cents=100 * rng.randint(1, 5))


def hold_body(customer: str, cart: Cart) -> dict[str, Any]:
    return {"customerId": customer, "amountToHold": money(cart.hold_cents)}


def order_body(customer: str, order_id: str, cart: Cart, reference: str) -> dict[str, Any]:
    return {
        "customerId": customer,
        "orderId": order_id,
        "totalPaid": money(cart.paid_cents),
        "totalPrice": money(cart.total_cents),
        "lineItems": [
            {"productId": product, "quantity": quantity, "price": money(price)}
            for product, quantity, price in cart.lines
        ],
        "redemption": {"pointsHoldReference": reference},
    }


def refund_body(customer: str, refund_id: str, order_id: str, cents: int) -> dict[str, Any]:
    return {
        "customerId": customer,
        "refundTransactionId": refund_id,
        "reverseTransactionId": order_id,
        "refundAmount": money(cents),
    }


def manual_body(customer: str, transaction_id: str, points: int) -> dict[str, Any]:
    return {
        "customerId": customer,
        "transactionId": transaction_id,
        "points": points,
        "username": "bench",
        "reason": "seed",
    }


@dataclass
class Ledger:
    """A customer's points as the answers told them (the echo's answers tell nothing: zeros)."""

    seeded: int = 0
    redeemed: int = 0
    rewarded: int = 0
    clawed: int = 0
    returned: int = 0
    held: int = 0  # held and not burned by an order

    def record(self, kind: str, answer: dict[str, Any], *, hold_points: int = 0) -> None:
        """Add what an answer of ``kind`` moved (``hold_points``: the hold an order burned)."""
        if kind == "manual":
            self.seeded += answer.get("points", 0)
        elif kind == "hold":
            self.held += answer.get("holdEquivalentPoints", 0)
        elif kind == "order":
            self.held -= hold_points
            self.redeemed += answer.get("redeemedPoints", 0)
            self.rewarded += answer.get("rewardedPoints", 0)
        elif kind == "refund":
            self.clawed += answer.get("pointsClawedBack", 0)
            self.returned += answer.get("pointsReturned", 0)

    def merge(self, other: Ledger) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    @property
    def expected(self) -> int:
        """Points the customer should have, pending ones included."""
        return self.seeded - self.redeemed + self.rewarded - self.clawed + self.returned


def mismatch(ledger: Ledger, balance: dict[str, Any]) -> str | None:
    """What a balance answer gets wrong against the ledger, or None."""
    found = balance["totalPointsBalance"] + balance["pendingPoints"]
    wrong = []
    if found != ledger.expected:
        wrong.append(f"total+pending {found} != {ledger.expected} ({asdict(ledger)})")
    if balance["heldPoints"] != ledger.held:
        wrong.append(f"held {balance['heldPoints']} != {ledger.held}")
    if balance["availablePointsBalance"] != balance["totalPointsBalance"] - ledger.held:
        wrong.append(f"available {balance['availablePointsBalance']} != total - held")
    return "; ".join(wrong) or None


def error_key(kind: str, status: int, body: bytes) -> str:
    """How a refused request is counted: its kind, status, code and message."""
    try:
        error = json.loads(body)
        return f"{kind} {status} code {error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        return f"{kind} {status}: {body[:200]!r}"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


# --- the generator (its own process) -----------------------------------------------------------


@dataclass
class Plan:
    """One run of the generator: checkouts for ``seconds``, or with ``seed`` a manual credit of
    that many points to every customer."""

    url: str
    keys: tuple[str, str]
    tag: str  # makes the run's order and transaction ids unique
    seconds: float = 0.0
    concurrency: int = 32
    customers: int = 1000
    seed: int = 0
    client: str = "raw"  # or "httpx"


Post = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """An HTTP/1.1 answer's status and header fields (names lower-cased)."""
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(status_line.split(" ", 2)[1]), fields


class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams, one request at a time.

    The default client: httpx.AsyncClient spends about 1.2 ms of CPU a request on the 2-core
    development machine (encode/httpx#3215), so the generator, not the echo, would set the
    reference; this spends about a tenth of that."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        fields = {"host": parts.netloc, "content-type": "application/json", **headers}
        self.head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        request = f"POST {path} HTTP/1.1\r\n{self.head}content-length: {len(body)}\r\n\r\n"
        try:
            writer.write(request.encode() + body)
            status, fields = parse_head(await reader.readuntil(b"\r\n\r\n"))
            answer = await reader.readexactly(int(fields["content-length"]))
        except BaseException:
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def httpx_post(client: httpx.AsyncClient) -> Post:
    async def post(path: str, body: bytes) -> tuple[int, bytes]:
        reply = await client.post(path, content=body)
        return reply.status_code, reply.content

    return post


@dataclass
class Worker:
    index: int
    rng: random.Random
    post: Post
    done: int = 0
    placed: list[tuple[str, str, int]] = field(default_factory=list)  # refundable orders


class Generator:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.latencies: dict[str, list[float]] = {}
        self.non2xx: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # no answer at all
        self.ledgers: dict[str, Ledger] = {}
        self.checkouts = 0

    async def post(
        self, worker: Worker, kind: str, path: str, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The answer, or None (counted) when there is none or it is not a success."""
        encoded = json.dumps(body).encode()
        started = time.perf_counter()
        try:
            status, content = await worker.post(V4 + path, encoded)
        except (OSError, EOFError, ValueError, KeyError, httpx.HTTPError) as exc:
            self.failures[f"{kind}: {type(exc).__name__}: {exc}"] += 1
            return None
        finally:
            self.latencies.setdefault(kind, []).append(1000 * (time.perf_counter() - started))
        if not 200 <= status < 300:
            self.non2xx[error_key(kind, status, content)] += 1
            return None
        answer: dict[str, Any] = json.loads(content)
        return answer

    def ledger(self, customer: str) -> Ledger:
        return self.ledgers.setdefault(customer, Ledger())

    async def checkout(self, worker: Worker) -> None:
        customer = f"burn-{worker.rng.randrange(self.plan.customers):05d}"
        cart = make_cart(worker.rng)
        order_id = f"{self.plan.tag}-{worker.index}-{worker.done}"
        worker.done += 1
        hold = await self.post(worker, "hold", "/transactions/hold", hold_body(customer, cart))
        if hold is None:
            return
        self.ledger(customer).record("hold", hold)
        body = order_body(customer, order_id, cart, hold.get("holdReference", "echo-hold"))
        order = await self.post(worker, "order", "/orders", body)
        self.checkouts += 1
        if order is not None:
            points = hold.get("holdEquivalentPoints", 0)
            self.ledger(customer).record("order", order, hold_points=points)
            worker.placed.append((customer, order_id, cart.paid_cents))
        if worker.placed and worker.rng.random() < REFUND_SHARE:
            await self.refund(worker)

    async def refund(self, worker: Worker) -> None:
        """Half of one of the worker's earlier orders (each is refunded once at most)."""
        customer, order_id, paid = worker.placed.pop(worker.rng.randrange(len(worker.placed)))
        body = refund_body(customer, f"{order_id}-refund", order_id, max(1, paid // 2))
        answer = await self.post(worker, "refund", "/transactions/refund", body)
        if answer is not None:
            self.ledger(customer).record("refund", answer)

    async def work(self, worker: Worker, deadline: float) -> None:
        """Checkouts until ``deadline`` (the one under way is finished: no hold is left open)."""
        while time.monotonic() < deadline:
            await self.checkout(worker)

    async def seed(self, worker: Worker) -> None:
        """A manual credit to each of this worker's share of the customers."""
        for number in range(worker.index, self.plan.customers, self.plan.concurrency):
            customer = f"burn-{number:05d}"
            body = manual_body(customer, f"{self.plan.tag}-{customer}", self.plan.seed)
            answer = await self.post(worker, "manual", "/transactions/manual", body)
            if answer is not None:
                self.ledger(customer).record("manual", answer)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "seconds": seconds,
            "checkouts": self.checkouts,
            "requests": {kind: len(values) for kind, values in self.latencies.items()},
            "latency": {
                kind: [percentile(values, 0.50), percentile(values, 0.99)]
                for kind, values in self.latencies.items()
            },
            "non2xx": dict(self.non2xx),
            "failures": dict(self.failures),
            "ledgers": {customer: asdict(ledger) for customer, ledger in self.ledgers.items()},
        }


async def generate(plan: Plan) -> dict[str, Any]:
    """Run ``plan`` and sum it up (JSON-ready)."""
    headers = {"apikey": plan.keys[0], "secretkey": plan.keys[1]}
    async with contextlib.AsyncExitStack() as stack:
        if plan.client == "httpx":
            client = httpx.AsyncClient(
                base_url=plan.url,
                headers={**headers, "content-type": "application/json"},
                limits=httpx.Limits(max_connections=plan.concurrency),
                timeout=30,
            )
            shared = httpx_post(await stack.enter_async_context(client))
            posts = [shared] * plan.concurrency
        else:
            connections = [Connection(plan.url, headers) for _ in range(plan.concurrency)]
            for connection in connections:
                stack.callback(connection.close)
            posts = [connection.post for connection in connections]
        generator = Generator(plan)
        workers = [
            Worker(i, random.Random(f"{plan.tag}-{i}"), post) for i, post in enumerate(posts)
        ]
        deadline = time.monotonic() + plan.seconds
        started = time.perf_counter()
        if plan.seed:
            await asyncio.gather(*(generator.seed(worker) for worker in workers))
        else:
            await asyncio.gather(*(generator.work(worker, deadline) for worker in workers))
        return generator.summary(time.perf_counter() - started)


def generator_main(out: Path) -> None:
    """``burn.py --generate OUT``: a ``Plan`` as JSON on stdin, its summary as JSON in OUT."""
    import uvloop

    with contextlib.suppress(OSError, AttributeError):  # pinning is best effort
        os.sched_setaffinity(0, {LOAD_CPU})
    raw = json.loads(sys.stdin.read())
    plan = Plan(**{**raw, "keys": tuple(raw["keys"])})
    out.write_text(json.dumps(uvloop.run(generate(plan))))


# --- runs and targets --------------------------------------------------------------------------


@dataclass
class Run:
    """A generator run as the parent reads it, with the server's CPU over it."""

    seconds: float
    checkouts: int
    requests: dict[str, int]
    latency: dict[str, list[float]]
    non2xx: dict[str, int]
    failures: dict[str, int]
    ledgers: dict[str, dict[str, int]]
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(self.requests.values()) - sum(self.non2xx.values()) - sum(self.failures.values())

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def checkout_rate(self) -> float:
        return self.checkouts / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """The server's CPU per request answered."""
        return 1e6 * self.cpu_seconds / self.ok if self.ok else 0.0


def load(server: run.Server, plan: Plan, work: Path) -> Run:
    """``plan`` from a generator process, with the server's CPU time over the run."""
    out = work / f"generator-{plan.tag}.json"
    before = cpu_seconds(server.process.pid)
    # The summary goes through a file: read from a pipe, it once came back cut at 64 KiB.
    subprocess.run(
        [sys.executable, __file__, "--generate", str(out)],
        input=json.dumps(asdict(plan)),
        text=True,
        check=True,
    )
    result = Run(**json.loads(out.read_text()))
    result.cpu_seconds = cpu_seconds(server.process.pid) - before
    out.unlink()
    return result


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its descendants (bench/run.py's tree)."""
    ticks = 0
    for member in [pid, *run._descendants(pid)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    name: str
    server: run.Server
    work: Path  # where the generator leaves its summaries
    runs: list[Run] = field(default_factory=list)  # the measured rounds
    every: list[Run] = field(default_factory=list)  # every run: seed and warm-up too
    ratios: list[float] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # the consistency check's findings
    sample: int = 0

    def plan(self, args: argparse.Namespace, tag: str, **overrides: Any) -> Plan:
        return Plan(
            url=f"http://127.0.0.1:{self.server.port}",
            keys=self.server.keys,
            tag=tag,
            concurrency=args.concurrency,
            customers=args.customers,
            client=args.client,
            **overrides,
        )

    def load(self, plan: Plan) -> Run:
        done = load(self.server, plan, self.work)
        self.every.append(done)
        return done

    @property
    def median(self) -> Run:
        return sorted(self.runs, key=lambda r: r.rate)[len(self.runs) // 2]


def ledgers(runs: list[Run]) -> dict[str, Ledger]:
    """Every customer's points over ``runs``, as the answers told them."""
    total: dict[str, Ledger] = {}
    for done in runs:
        for customer, values in done.ledgers.items():
            total.setdefault(customer, Ledger()).merge(Ledger(**values))
    return total


def check_balances(target: Target, sample: int) -> None:
    """Ask the balance of ``sample`` customers (a fixed draw) and compare it with the answers."""
    known = ledgers(target.every)
    chosen = random.Random(0).sample(sorted(known), min(sample, len(known)))
    target.sample = len(chosen)
    headers = {"apikey": target.server.keys[0], "secretkey": target.server.keys[1]}
    base = f"http://127.0.0.1:{target.server.port}{V4}/customers"
    with httpx.Client(headers=headers, timeout=30) as client:
        for customer in chosen:
            reply = client.get(f"{base}/{customer}/balance")
            if not reply.is_success:
                target.checked.append(
                    f"{customer}: {error_key('balance', reply.status_code, reply.content)}"
                )
                continue
            wrong = mismatch(known[customer], reply.json())
            if wrong:
                target.checked.append(f"{customer}: {wrong}")


def measure(echo: Target, targets: list[Target], args: argparse.Namespace) -> None:
    """Seed, warm up, then ``--rounds`` rounds of the echo followed by every target."""
    for target in targets:
        target.load(target.plan(args, "seed", seed=SEED_POINTS))
    for target in [echo, *targets]:
        target.load(target.plan(args, "warm", seconds=args.warmup))
    for number in range(args.rounds):
        reference = echo.load(echo.plan(args, f"r{number}", seconds=args.duration))
        echo.runs.append(reference)
        for target in targets:
            done = target.load(target.plan(args, f"r{number}", seconds=args.duration))
            target.runs.append(done)
            target.ratios.append(done.rate / reference.rate if reference.rate else 0.0)
            print(
                f"  round {number + 1} {target.name}: {done.rate:.0f} req/s"
                f" (echo {reference.rate:.0f}), {sum(done.non2xx.values())} non-2xx",
                flush=True,
            )
    for target in targets:
        check_balances(target, args.check)


# --- report ------------------------------------------------------------------------------------


def report(echo: Target, targets: list[Target]) -> bool:
    """Print the table, the notes and the verdicts; whether every verdict passed."""
    columns = ["checkouts/s", "req/s", "ratio", "CPU µs/req", *(f"{k} p50/p99" for k in KINDS)]
    width = max(26, *(len(t.name) for t in [echo, *targets]))
    head = f"{'target':<{width}} " + " ".join(f"{c:>15}" for c in [*columns, "non-2xx"])
    print("\n" + head + "\n" + "-" * len(head))
    for target in [echo, *targets]:
        median = target.median
        ratio = statistics.median(target.ratios) if target.ratios else 1.0
        cells = [
            f"{median.checkout_rate:.0f}",
            f"{median.rate:.0f}",
            f"{ratio:.2f}",
            f"{median.cpu_us:.0f}",
            *(latency_cell(median, kind) for kind in KINDS),
            str(sum(sum(r.non2xx.values()) for r in target.every)),
        ]
        print(f"{target.name:<{width}} " + " ".join(f"{c:>15}" for c in cells))
    print("(the median round; latencies in ms; a ratio is the median of the rounds' requests/s")
    print(" over the echo round just before; CPU is the server process tree's, not PostgreSQL's;")
    print(" non-2xx counts every run: seeding and warm-up too)\n")
    for target in [echo, *targets]:
        notes(target)
    return verdicts(targets)


def latency_cell(done: Run, kind: str) -> str:
    if kind not in done.latency:
        return "-"
    return "/".join(f"{ms:.1f}" for ms in done.latency[kind])


def notes(target: Target) -> None:
    rounds = ", ".join(
        f"{r.rate:.0f}/s" + (f" = {ratio:.2f}" if target.ratios else "")
        for r, ratio in zip(target.runs, target.ratios or [1.0] * len(target.runs), strict=True)
    )
    print(f"{target.name}: rounds {rounds}")
    seeded = next((r for r in target.every if "manual" in r.requests), None)
    if seeded is not None:
        print(
            f"{target.name}: seeded {seeded.requests['manual']:,} customers at {seeded.rate:.0f}/s"
        )
    errors: Counter[str] = Counter()
    for done in target.every:
        errors.update(done.non2xx)
        errors.update(done.failures)
    for key, count in errors.most_common():
        print(f"{target.name}: {count:,} x {key}")
    for finding in target.checked[:10]:
        print(f"{target.name}: balance mismatch {finding}")


def verdicts(targets: list[Target]) -> bool:
    lines = []
    for target in targets:
        refused = sum(sum(r.non2xx.values()) + sum(r.failures.values()) for r in target.every)
        lines.append((refused == 0, f"{target.name}: every request answered 2xx ({refused} not)"))
        lines.append(
            (
                target.sample > 0 and not target.checked,
                f"{target.name}: {target.sample - len(target.checked)} of {target.sample} sampled"
                " balances match the answers",
            )
        )
    for ok, text in lines:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return all(ok for ok, _ in lines)


# --- main --------------------------------------------------------------------------------------


def start_targets(
    wanted: set[str], args: argparse.Namespace, work: Path, stack: contextlib.ExitStack
) -> list[Target]:
    """A fresh database, account and ``kudos serve`` per wanted store (stopped by ``stack``)."""
    program = work / "burn-program.json"
    program.write_text(json.dumps(PROGRAM))
    urls = {}
    if "sqlite" in wanted:
        urls["kudos sqlite"] = f"sqlite:///{work}/burn.db"
    if "postgres" in wanted:
        reason = run.postgres_reachable(args.pg_url)
        if reason:
            print(f"  postgres skipped: {reason}")
        else:
            database = stack.enter_context(run.fresh_postgres(args.pg_url, "kudos_bench_burn"))
            urls["kudos postgres --workers 1"] = database
    targets = []
    for name, url in urls.items():
        server = run.start_kudos(name, url, work, program=program)
        stack.callback(run.stop, server.process)
        targets.append(Target(name, server, work))
    return targets


def main() -> int:
    if sys.argv[1:2] == ["--generate"]:
        generator_main(Path(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per target")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before them")
    parser.add_argument("--concurrency", type=int, default=32, help="the generator's workers")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--client", choices=("raw", "httpx"), default="raw", help="the generator's HTTP client"
    )
    parser.add_argument("--check", type=int, default=100, help="customers whose balance to check")
    parser.add_argument("--only", default="sqlite,postgres", help="kudos targets to measure")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    os.chdir(run.ROOT)
    with (
        tempfile.TemporaryDirectory(prefix="kudos-bench-burn-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        echo_server = run.start_echo(work)
        stack.callback(run.stop, echo_server.process)
        echo = Target("echo (raw ASGI + msgspec)", echo_server, work)
        targets = start_targets(set(args.only.split(",")), args, work, stack)
        print(f"  {args.concurrency} workers, {args.rounds} x {args.duration} s", flush=True)
        measure(echo, targets, args)
    return 0 if report(echo, targets) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The ingest benchmark: kudos against a raw ASGI echo, measured in one invocation.

    .venv/bin/python bench/run.py [--duration 10] [--rounds 3] [--only sqlite,postgres]

Each target is loaded by wrk (1 thread, 64 connections) with seed-style Send Events bodies
(two events, 10,000 customers) after a warm-up, in ``--rounds`` runs that each follow a run of
the echo, so every kudos run is paired with a reference measured just before it. It prints the
median run's requests/s, events/s, p50 and p99 latency and non-2xx answers, the median of the
paired ratios, and the server's RSS. On SQLite it keeps loading until at least
``--rss-events`` events are stored, then reads the RSS and the sizes of the database file and
its WAL (the largest the WAL was while loading, and what it is once the load stopped, with
the server still up: stopping truncates it); after every kudos target it checks that the
store holds exactly the events that were acknowledged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "events.lua"
CAMPAIGNS = ROOT / "bench" / "campaigns-20.yaml"
SERVER_KEY = "bench-server-key"
ROUND_SECONDS = 15
# wrk runs on the last CPU, so every server meets the same competition for the others.
PIN_LOAD = ["taskset", "-c", str((os.cpu_count() or 1) - 1)]

TARGET_RATIO = 0.40
TARGET_P99_MS = 25.0
TARGET_RSS_MB = 300.0
TARGET_CAMPAIGNS = 0.80  # of the rate without campaigns
TARGET_ANALYTICS = 0.95  # the rate keeping analytics, of the rate without (KUDOS_ANALYTICS=off)
NO_ANALYTICS = " (analytics off)"
# The SQLite WAL's limit (KUDOS_SQLITE_WAL_MAX_BYTES, as the servers get it); the writer lets it
# pass that by one batch at most, and the largest batch of this load is a few MiB of WAL.
WAL_LIMIT_MB = int(os.environ.get("KUDOS_SQLITE_WAL_MAX_BYTES", 64 * 1024 * 1024)) / 2**20
TARGET_WAL_SLACK_MB = 16.0
WAL_SAMPLE_SECONDS = 0.1
# Warm-up: five requests per customer of bench/events.lua's 10,000, after which all but ~0.7%
# of them exist (e^-5), at most MAX_WARMUPS runs of --warmup seconds.
WARM_REQUESTS = 50_000
MAX_WARMUPS = 12


@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    non2xx: int = 0
    socket_errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    name: str
    load: Load
    rss_mb: float = 0.0
    events_sent: int = 0
    events_stored: int | None = None
    ratio: float = 0.0
    rounds: int = 0
    connections: int = 0
    notes: list[str] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)  # every measured round, in order
    # SQLite only, in MiB: the database file and its WAL once the load stopped, and the
    # largest the WAL was while loading.
    db_mb: float | None = None
    wal_mb: float | None = None
    wal_peak_mb: float | None = None


class WalWatch:
    """Samples a SQLite database's ``-wal`` file every ``WAL_SAMPLE_SECONDS`` in a thread, for
    the largest size it reaches while the load runs."""

    def __init__(self, db_url: str) -> None:
        self.path = Path(sqlite_path(db_url))
        self.wal = Path(f"{self.path}-wal")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-watch", daemon=True)

    def __enter__(self) -> WalWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, _size(self.wal))
            if self._stop.wait(WAL_SAMPLE_SECONDS):
                return

    def record(self, result: Result) -> None:
        """The sizes now (call with the server still up: stopping truncates the WAL)."""
        wal = _size(self.wal)
        self.peak = max(self.peak, wal)
        result.db_mb, result.wal_mb = _size(self.path) / 2**20, wal / 2**20
        result.wal_peak_mb = self.peak / 2**20
        result.notes.append(
            f"after the load: database {result.db_mb:.1f} MiB, WAL {result.wal_mb:.1f} MiB"
            f" (largest while loading: {result.wal_peak_mb:.1f} MiB)"
        )


def sqlite_path(db_url: str) -> str:
    """The file of a benchmark's ``sqlite:///`` URL (the benchmarks use absolute paths)."""
    return db_url.removeprefix("sqlite:///")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    keys: tuple[str, str] = ("none", "none")


# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env() -> dict[str, str]:
    return {**os.environ, "KUDOS_SERVER_KEY": SERVER_KEY, "KUDOS_LOG_LEVEL": "warning"}


def kudos(*args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "kudos"), *args], env=env(), check=True, capture_output=True, text=True
    )
    return done.stdout


def start(
    command: list[str],
    port: int,
    log: Path,
    health: str | None,
    *,
    environment: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**env(), **(environment or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        if _answers(port, health):
            return process
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{command} did not come up: {log.read_text()[-2000:]}")


def _answers(port: int, health: str | None) -> bool:
    try:
        if health is None:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total = 0
    for member in [pid, *_descendants(pid)]:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


# --- load -----------------------------------------------------------------------------------


def wrk(server: Server, seconds: int, connections: int) -> Load:
    command = [
        *PIN_LOAD,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{server.port}",
        "--",
        *server.keys,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    line = next(row for row in output.splitlines() if row.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non2xx=data["non2xx"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
    )


def measure_together(
    servers: dict[str, Server], echo: Server, args: argparse.Namespace
) -> dict[str, Result]:
    """Warm up, then ``--rounds`` rounds: the echo, then every target in turn. Each target's
    ratio pairs it with the echo of its round, and targets compared with each other are
    measured seconds apart, not a phase apart (``Result.loads`` keeps every round)."""
    names = ", ".join(servers)
    print(
        f"  {names}: warm-up {args.warmup} s (repeated until {args.warm_requests:,} requests),"
        f" then {args.rounds} x {args.duration} s",
        flush=True,
    )
    warm = {name: warm_up(server, args) for name, server in servers.items()}
    references: list[Load] = []
    loads: dict[str, list[Load]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        references.append(wrk(echo, args.duration, args.connections))
        for name, server in servers.items():
            loads[name].append(wrk(server, args.duration, args.connections))
    return {name: _result(name, warm[name], loads[name], references, args) for name in servers}


def warm_up(server: Server, args: argparse.Namespace) -> list[Load]:
    """``--warmup`` seconds of load, repeated (at most ``MAX_WARMUPS`` times) until the server
    has answered ``--warm-requests``: the rounds then measure a server whose customers exist,
    whatever its rate, not one that is still creating them (a slower target would otherwise
    create more of its customers inside its measured rounds than a faster one)."""
    runs = [wrk(server, args.warmup, args.connections)]
    while sum(run.ok for run in runs) < args.warm_requests and len(runs) < MAX_WARMUPS:
        runs.append(wrk(server, args.warmup, args.connections))
    return runs


def _result(
    name: str,
    warm: list[Load],
    loads: list[Load],
    references: list[Load],
    args: argparse.Namespace,
) -> Result:
    ratios = [
        load.rate / ref.rate if ref.rate else 0.0
        for load, ref in zip(loads, references, strict=True)
    ]
    median = sorted(loads, key=lambda load: load.rate)[len(loads) // 2]
    runs = [*warm, *loads]
    result = Result(name, median, ratio=statistics.median(ratios), rounds=len(runs))
    result.loads = loads
    result.events_sent = 2 * sum(run.ok for run in runs)
    result.connections = args.connections
    rounds = zip(loads, references, ratios, strict=True)
    result.notes.append(
        "rounds (kudos / echo of the round = ratio, p99): "
        + ", ".join(
            f"{load.rate:.0f} / {ref.rate:.0f} = {r:.2f}, {load.p99_ms:.1f} ms"
            for load, ref, r in rounds
        )
    )
    non2xx = sum(run.non2xx for run in runs)
    if non2xx:
        result.notes.append(f"non-2xx answers: {non2xx}")
    return result


def fill_to(result: Result, server: Server, args: argparse.Namespace) -> None:
    """Keep loading until ``--rss-events`` events were acknowledged (for the RSS reading)."""
    while result.events_sent < args.rss_events:
        remaining = (args.rss_events - result.events_sent) // 2
        print(
            f"  {result.name}: {result.events_sent:,} events so far, {remaining:,} requests to go",
            flush=True,
        )
        more = wrk(server, ROUND_SECONDS, args.connections)
        result.events_sent += 2 * more.ok
        result.rounds += 1
        if more.non2xx:
            result.notes.append(f"non-2xx answers while filling: {more.non2xx}")


# --- targets --------------------------------------------------------------------------------


def start_echo(work: Path) -> Server:
    return start_asgi("bench.echo:app", work / "echo.log")


def start_asgi(app: str, log: Path) -> Server:
    """A raw ASGI app of ``bench/`` on uvicorn (uvloop, httptools), on a free port."""
    port = free_port()
    command = [
        str(VENV_BIN / "uvicorn"),
        app,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(start(command, port, log, health=None), port)


def measure_echo(echo: Server, args: argparse.Namespace) -> Result:
    """The echo alone, for its own row (kudos rows carry their paired ratios)."""
    wrk(echo, args.warmup, args.connections)
    loads = [wrk(echo, args.duration, args.connections) for _ in range(args.rounds)]
    median = sorted(loads, key=lambda load: load.rate)[len(loads) // 2]
    result = Result("echo (raw ASGI + msgspec)", median, ratio=1.0)
    result.rss_mb = rss_mb(echo.process.pid)
    result.notes.append("rounds: " + ", ".join(f"{load.rate:.0f}/s" for load in loads))
    return result


def _account(db_url: str) -> tuple[str, str]:
    created = json.loads(kudos("accounts", "create", "bench", "--db", db_url, "--json"))
    # The benchmark measures ingestion, not Gameball's 100 requests/s account limit.
    kudos("accounts", "set", "bench", "--rate-limit", "off", "--db", db_url)
    return created["apiKey"], created["secretKey"]


@dataclass
class Target:
    """A kudos server measured by the benchmark, with the database it writes."""

    name: str
    db_url: str
    server: Server
    fill: bool = False  # load until ``--rss-events`` before reading the RSS


def start_kudos(
    name: str,
    db_url: str,
    work: Path,
    *,
    workers: int = 1,
    program: Path | None = None,
    analytics: bool = True,
) -> Server:
    """A fresh account on ``db_url`` (running ``program`` if given) and ``kudos serve``
    (keeping analytics, or with ``KUDOS_ANALYTICS=off``)."""
    kudos("migrate", "--db", db_url)
    keys = _account(db_url)
    if program is not None:
        kudos("program", "apply", str(program), "--account", "bench", "--db", db_url)
    port = free_port()
    command = [
        str(VENV_BIN / "kudos"),
        "serve",
        "--port",
        str(port),
        "--db",
        db_url,
        "--workers",
        str(workers),
    ]
    log = work / f"{'-'.join(name.split())}.log"
    environment = None if analytics else {"KUDOS_ANALYTICS": "off"}
    return Server(start(command, port, log, "/healthz", environment=environment), port, keys)


def run_together(targets: list[Target], echo: Server, args: argparse.Namespace) -> list[Result]:
    """Measure the targets round by round together (``measure_together``), then fill those
    that read the RSS after a million events, stop them and count what they stored."""
    with contextlib.ExitStack() as stack:
        watches = {
            t.name: stack.enter_context(WalWatch(t.db_url))
            for t in targets
            if t.db_url.startswith("sqlite:")
        }
        try:
            measured = measure_together({t.name: t.server for t in targets}, echo, args)
            results = []
            for target in targets:
                result = measured[target.name]
                if target.fill:
                    fill_to(result, target.server, args)
                result.rss_mb = rss_mb(target.server.process.pid)
                if target.name in watches:
                    watches[target.name].record(result)
                results.append(result)
        finally:
            for target in targets:
                stop(target.server.process)
    for target, result in zip(targets, results, strict=True):
        result.events_stored = count_events(target.db_url)
    return results


def count_events(db_url: str) -> int:
    if db_url.startswith("sqlite:"):
        path = sqlite_path(db_url)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0


@contextlib.contextmanager
def fresh_postgres(admin_url: str, name: str) -> Iterator[str]:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_reachable(admin_url: str) -> str | None:
    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]


# --- report ---------------------------------------------------------------------------------


def report(results: list[Result]) -> list[str]:
    columns = ("req/s", "events/s", "p50 ms", "p99 ms", "non2xx", "ratio", "RSS MB")
    width = max(34, *(len(result.name) for result in results))
    head = f"{'target':<{width}} " + " ".join(f"{name:>9}" for name in columns)
    print("\n" + head + "\n" + "-" * len(head))
    for result in results:
        load = result.load
        print(
            f"{result.name:<{width}} {load.rate:>9.0f} {2 * load.rate:>9.0f} {load.p50_ms:>9.2f}"
            f" {load.p99_ms:>9.2f} {load.non2xx:>9} {result.ratio:>9.2f} {result.rss_mb:>9.1f}"
        )
    print("(median of the rounds; a kudos ratio is the median of its rounds' rate over the echo")
    print(" run just before it)\n")
    for result in results:
        if result.events_stored is not None:
            print(
                f"{result.name}: {result.events_sent:,} events acknowledged, "
                f"{result.events_stored:,} stored"
            )
        for note in result.notes:
            print(f"{result.name}: {note}")
    return verdicts(results)


def verdicts(results: list[Result]) -> list[str]:
    lines = []
    sqlite = next((r for r in results if r.name == "kudos sqlite"), None)
    if sqlite is not None:
        lines.append(
            _verdict(
                sqlite.ratio >= TARGET_RATIO,
                f"SQLite rate {sqlite.ratio:.2f} of echo (target ≥ {TARGET_RATIO})",
            )
        )
        lines.append(
            _verdict(
                sqlite.load.p99_ms < TARGET_P99_MS,
                f"SQLite p99 {sqlite.load.p99_ms:.1f} ms (target < {TARGET_P99_MS:.0f} ms)",
            )
        )
        lines.append(
            _verdict(
                sqlite.rss_mb < TARGET_RSS_MB and sqlite.events_sent >= 1_000_000,
                f"SQLite RSS {sqlite.rss_mb:.0f} MB after {sqlite.events_sent:,} events"
                f" (target < {TARGET_RSS_MB:.0f} MB after 1,000,000)",
            )
        )
    for result in results:
        if result.wal_peak_mb is not None:
            bound = WAL_LIMIT_MB + TARGET_WAL_SLACK_MB
            lines.append(
                _verdict(
                    result.wal_peak_mb <= bound,
                    f"{result.name}: WAL at most {result.wal_peak_mb:.1f} MiB while loading"
                    f" (target ≤ {bound:.0f} MiB: the {WAL_LIMIT_MB:.0f} MiB limit and one batch)",
                )
            )
    for keeping in results:  # "kudos STORE" against "kudos STORE (analytics off)"
        off = next((r for r in results if r.name == keeping.name + NO_ANALYTICS), None)
        if off is None or not keeping.loads:
            continue
        shares = campaigns_shares(off, keeping)
        share = statistics.median(shares)
        lines.append(
            _verdict(
                share >= TARGET_ANALYTICS,
                f"{keeping.name.removeprefix('kudos ')} keeping analytics at {share:.2f} of the"
                f" rate without, median of the rounds ({', '.join(f'{s:.2f}' for s in shares)};"
                f" target ≥ {TARGET_ANALYTICS})",
            )
        )
    for rewarded in results:  # "kudos STORE + PROGRAM" against "kudos STORE", per store
        plain_name, plus, program = rewarded.name.partition(" + ")
        plain = next((r for r in results if r.name == plain_name), None)
        if not plus or plain is None or not plain.loads:
            continue
        shares = campaigns_shares(plain, rewarded)
        share = statistics.median(shares)
        lines.append(
            _verdict(
                share >= TARGET_CAMPAIGNS,
                f"{plain_name.removeprefix('kudos ')} with {program} at {share:.2f}"
                " of the rate without, median of the rounds"
                f" ({', '.join(f'{s:.2f}' for s in shares)}; target ≥ {TARGET_CAMPAIGNS})",
            )
        )
    for result in results:
        if result.events_stored is not None:
            # Each wrk run stops with up to one request per connection in flight: those may be
            # stored without being counted as acknowledged.
            slack = 2 * result.connections * result.rounds
            exact = result.events_sent <= result.events_stored <= result.events_sent + slack
            lines.append(
                _verdict(exact, f"{result.name}: every acknowledged event stored exactly once")
            )
    for line in lines:
        print(line)
    return lines


def campaigns_shares(plain: Result, rewarded: Result) -> list[float]:
    """Per round, the campaigns target's rate over the plain target's (measured back to back,
    so the machine's drift between rounds cancels)."""
    return [
        load.rate / base.rate if base.rate else 0.0
        for base, load in zip(plain.loads, rewarded.loads, strict=True)
    ]


def _verdict(ok: bool, text: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}  {text}"


def add_load_options(parser: argparse.ArgumentParser, *, rounds: int, warmup: int) -> None:
    """The wrk load's options, shared by the benchmarks."""
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=rounds, help="measured runs per target")
    parser.add_argument(
        "--warmup", type=int, default=warmup, help="seconds of load before measuring"
    )
    parser.add_argument("--connections", type=int, default=64)


def add_warm_up_option(parser: argparse.ArgumentParser) -> None:
    """``warm_up``'s option, for the benchmarks that warm their servers up with it."""
    parser.add_argument(
        "--warm-requests",
        type=int,
        default=WARM_REQUESTS,
        help="repeat the warm-up until the server answered this many requests",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_options(parser, rounds=5, warmup=5)
    add_warm_up_option(parser)
    parser.add_argument(
        "--only",
        default="sqlite,campaigns,analytics,postgres",
        help="kudos targets to measure (analytics: each store also without keeping analytics)",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database to create the benchmark databases from",
    )
    parser.add_argument("--pg-workers", default="1,2", help="kudos --workers values to measure")
    parser.add_argument(
        "--rss-events",
        type=int,
        default=1_000_000,
        help="events to store on SQLite before reading its RSS",
    )
    parser.add_argument(
        "--program", type=Path, default=CAMPAIGNS, help="the campaigns target's program"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="kudos-bench-") as tmp:
        work = Path(tmp)
        echo = start_echo(work)
        try:
            results = [measure_echo(echo, args), *run_targets(wanted, echo, args, work)]
        finally:
            stop(echo.process)
    lines = report(results)
    if args.json:
        payload = {
            "results": [asdict(r) | {"rate": r.load.rate} for r in results],
            "verdicts": lines,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


def run_targets(
    wanted: set[str], echo: Server, args: argparse.Namespace, work: Path
) -> list[Result]:
    results = []
    sqlite_targets = []
    if "sqlite" in wanted:
        url = f"sqlite:///{work}/bench.db"
        server = start_kudos("kudos sqlite", url, work)
        sqlite_targets.append(Target("kudos sqlite", url, server, fill=True))
    if "analytics" in wanted and "sqlite" in wanted:
        url = f"sqlite:///{work}/no-analytics.db"
        name = "kudos sqlite" + NO_ANALYTICS
        server = start_kudos(name, url, work, analytics=False)
        sqlite_targets.append(Target(name, url, server))
    if "campaigns" in wanted:
        url = f"sqlite:///{work}/campaigns.db"
        name = f"kudos sqlite + {args.program.stem}"
        server = start_kudos(name, url, work, program=args.program)
        sqlite_targets.append(Target(name, url, server))
    if sqlite_targets:
        # Measured in the same rounds: the campaigns verdict compares them round by round.
        results.extend(run_together(sqlite_targets, echo, args))
    if "postgres" in wanted:
        reason = postgres_reachable(args.pg_url)
        if reason:
            print(f"  postgres skipped: {reason}")
        counts = [] if reason else [int(n) for n in args.pg_workers.split(",")]
        for workers in counts:
            # The first process count also runs the program, in the same rounds.
            first = workers == counts[0]
            results.extend(
                _measure_postgres(
                    workers,
                    echo,
                    args,
                    work,
                    campaigns="campaigns" in wanted and first,
                    without_analytics="analytics" in wanted and first,
                )
            )
    return results


def _measure_postgres(
    workers: int,
    echo: Server,
    args: argparse.Namespace,
    work: Path,
    *,
    campaigns: bool,
    without_analytics: bool,
) -> list[Result]:
    """``kudos serve --workers N`` on a fresh PostgreSQL database, and with ``campaigns`` the
    same with ``--program`` on another one (with ``without_analytics``, the same without
    keeping analytics on a third), measured together."""
    name = f"kudos postgres --workers {workers}"
    variants: list[tuple[Path | None, bool]] = [(None, True)]
    if campaigns:
        variants.append((args.program, True))
    if without_analytics:
        variants.append((None, False))
    with contextlib.ExitStack() as stack:
        targets = []
        for program, analytics in variants:
            label = name if program is None else f"{name} + {program.stem}"
            label += "" if analytics else NO_ANALYTICS
            database = f"kudos_bench_w{workers}" + ("" if program is None else "_program")
            database += "" if analytics else "_plain"
            url = stack.enter_context(fresh_postgres(args.pg_url, database))
            server = start_kudos(
                label, url, work, workers=workers, program=program, analytics=analytics
            )
            targets.append(Target(label, url, server))
        return run_together(targets, echo, args)


if __name__ == "__main__":
    sys.exit(main())

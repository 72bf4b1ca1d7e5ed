"""Where a campaigns run's time goes: CPU per request by part, with and without a program.

    .venv/bin/python bench/profile.py [--program bench/campaigns-20.yaml] [--rounds 2]

Two fresh SQLite servers take the ingest benchmark's load (``bench/run.py``'s wrk script and
warm-up): one without a program, one running ``--program``. In every round each server is
loaded for ``--duration`` seconds while py-spy samples it (``--rate`` per second, without
pausing it), and every sample is put in one part by the frames on its stack:

- **store**: inside a call that runs SQL (a statement, a bulk write, COMMIT, the fsync),
- **campaigns**: inside the campaign engine and its decisions, outside the store,
- **rest**: everything else (HTTP, decoding, identity, the events' staging, the event loop).

A part's samples over the sampling rate, divided by the requests answered while sampling, is
its CPU per request. The server is CPU-bound under this load (one busy thread, fsyncs in
another), so the rate follows the total. The last line is the ceiling that the store's extra
cost alone leaves on the ratio of the two rates, as if the campaigns' Python and every other
extra cost nothing: the plain total over the plain total plus the store's extra.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run

# Frames that run SQL: the store's entry points in kudos.storage (their callees are the
# driver's). A sample inside one of these is the store's, whoever called it.
STORE_FRAMES = frozenset(
    {
        "Tx.execute",
        "Tx.commit",
        "Tx.rollback",
        "Tx.begin",
        "Tx.try_begin",
        "Database.executemany",
        "PostgresDatabase.executemany",
        "SQLiteDatabase.sync",
    }
)
# The campaign engine and its decisions, by module: py-spy reads a running process without
# pausing it, so a stack may lack its outer frames, and the innermost ones are what is sure.
CAMPAIGN_FRAMES = frozenset({"IngestEvents._run_campaigns"})
CAMPAIGN_MODULES = (
    "kudos/rules/engine.py",
    "kudos/services/rewards.py",
    "kudos/storage/rewards.py",
)
PARTS = ("store", "campaigns", "rest")


def part_of(stack: list[str]) -> str:
    """The part a sample belongs to (see the module doc), from its frames' function names."""
    names = {frame.split(" (", 1)[0] for frame in stack}
    if names & STORE_FRAMES:
        return "store"
    if names & CAMPAIGN_FRAMES or any(
        f"({module}:" in frame for frame in stack for module in CAMPAIGN_MODULES
    ):
        return "campaigns"
    return "rest"


def read_samples(path: Path) -> Counter[str]:
    """Samples per part in a py-spy ``--format raw`` file (``frame;frame;... count``)."""
    parts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            parts[part_of(stack.split(";"))] += int(count)
    return parts


def sample(server: run.Server, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Load ``server`` while py-spy samples it; CPU µs per request for each part."""
    spy = subprocess.Popen(
        [
            str(run.VENV_BIN / "py-spy"),
            "record",
            "--pid",
            str(server.process.pid),
            "--duration",
            str(args.duration),
            "--rate",
            str(args.rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wrk starts with py-spy (which attaches in well under a second) and runs two seconds
    # longer, so the load covers the whole sampling window; its rate stands for the window's.
    load = run.wrk(server, args.duration + 2, args.connections)
    _, spy_errors = spy.communicate()
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {spy_errors.strip()}")
    requests = load.rate * args.duration
    parts = read_samples(out)
    per_request = {part: parts[part] / args.rate / requests * 1e6 for part in PARTS}
    per_request["req/s"] = load.rate
    return per_request


def report(plain: list[dict[str, float]], program: list[dict[str, float]], name: str) -> None:
    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(row[key] for row in rows)

    print(f"\nCPU µs per request (median of {len(plain)} rounds)")
    print(f"{'part':<12}{'no program':>12}{name:>22}{'extra':>10}")
    totals = {"plain": 0.0, "program": 0.0}
    for part in PARTS:
        a, b = median(plain, part), median(program, part)
        totals["plain"] += a
        totals["program"] += b
        print(f"{part:<12}{a:>12.1f}{b:>22.1f}{b - a:>+10.1f}")
    print(f"{'total':<12}{totals['plain']:>12.1f}{totals['program']:>22.1f}")
    rate_a, rate_b = median(plain, "req/s"), median(program, "req/s")
    print(f"{'req/s':<12}{rate_a:>12.0f}{rate_b:>22.0f}")
    ratios = [b["req/s"] / a["req/s"] for a, b in zip(plain, program, strict=True)]
    print(f"\nratio with the program (same rounds): {statistics.median(ratios):.2f}")
    store_extra = median(program, "store") - median(plain, "store")
    ceiling = totals["plain"] / (totals["plain"] + store_extra)
    print(f"ceiling left by the store's extra alone: {ceiling:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run.add_load_options(parser, rounds=2, warmup=5)
    run.add_warm_up_option(parser)
    parser.add_argument("--program", type=Path, default=run.CAMPAIGNS)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = parser.parse_args()
    if shutil.which("wrk") is None or not (run.VENV_BIN / "py-spy").exists():
        print("needs wrk (apt-get install wrk) and py-spy (in the dev dependencies)")
        return 2
    os.chdir(run.ROOT)
    with tempfile.TemporaryDirectory(prefix="kudos-profile-") as tmp:
        work = Path(tmp)
        servers = {
            "plain": run.start_kudos("plain", f"sqlite:///{work}/plain.db", work),
            "program": run.start_kudos(
                "program", f"sqlite:///{work}/program.db", work, program=args.program
            ),
        }
        rows: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        try:
            for name, server in servers.items():
                print(f"  {name}: warm-up", flush=True)
                run.warm_up(server, args)
            for round_number in range(args.rounds):
                for name, server in servers.items():
                    out = work / f"{name}-{round_number}.raw"
                    rows[name].append(sample(server, args, out))
                    parts = ", ".join(f"{k} {v:.1f}" for k, v in rows[name][-1].items())
                    print(f"  round {round_number + 1} {name}: {parts}", flush=True)
        finally:
            for server in servers.values():
                run.stop(server.process)
    report(rows["plain"], rows["program"], f"+ {args.program.stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

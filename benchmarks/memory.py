"""Memory per idle user: RSS at N users minus RSS at a few, divided by the difference.

    python benchmarks/memory.py                          # FastHttpUser and HttpUser, 10 and 5,000 users
    python benchmarks/memory.py --rounds 3 --locust-python /opt/locust/bin/python
    python benchmarks/memory.py --tracemalloc            # where the bytes of one idle user go
    python benchmarks/memory.py --before-src /tmp/before/src   # a second horde tree, side by side

Every user makes one request (``GET /`` against nginx, or the built-in target) and then idles in a
wait of an hour, holding one keep-alive connection. Each measurement is a fresh process that spawns the
users through ``Environment`` + ``LocalRunner``, waits until every request is counted, collects
garbage, and reads its resident set size from ``/proc/self/statm``; the per-user figure is
``(RSS(high) - RSS(low)) / (high - low)``, so interpreter start-up and imports cancel out. Runs are
interleaved and the median of ``--rounds`` is reported. ``--locust-python`` measures Locust's
FastHttpUser and HttpUser the same way (gevent greenlets, one request, then ``constant(3600)``).

``--tracemalloc`` runs one horde kind at both sizes with tracemalloc on and prints the allocation sites
whose size grew with the user count, per user: the per-user objects, the task, the connection, the
read buffers, cookie jars. (tracemalloc sees Python allocations only, not the kernel's socket buffers
or memory a C library takes from malloc directly; its total is below the RSS difference.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
IDLE = 3600.0  # seconds a user waits after its request: it stays idle for the whole measurement

KINDS = {
    "fast": "horde FastHttpUser",
    "http": "horde HttpUser",
    "fast-before": "horde FastHttpUser (--before-src)",
    "http-before": "horde HttpUser (--before-src)",
    "locust-fast": "Locust FastHttpUser",
    "locust-http": "Locust HttpUser",
}
BEFORE_KINDS = {"fast-before": "fast", "http-before": "http"}

LOCUST_CHILD = f"""
import gc, json, resource, sys, gevent
from locust import FastHttpUser, HttpUser, constant, task
from locust.env import Environment

kind, url, users = sys.argv[1], sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, users * 2 + 1000)), hard))
base = FastHttpUser if kind == "fast" else HttpUser

class Idle(base):
    host = url
    wait_time = constant({IDLE!r})

    @task
    def index(self):
        self.client.get("/")

env = Environment(user_classes=[Idle])
runner = env.create_local_runner()
runner.start(users, spawn_rate=users)
while env.stats.total.num_requests + env.stats.total.num_failures < users:
    gevent.sleep(0.05)
gevent.sleep(0.5)
gc.collect()
with open("/proc/self/statm") as f:
    rss = int(f.read().split()[1]) * resource.getpagesize()
print(json.dumps({{"rss": rss, "requests": env.stats.total.num_requests, "failures": env.stats.total.num_failures}}))
runner.quit()
"""


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (min(hard, need) if hard != resource.RLIM_INFINITY else need, hard)
        )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def idle_user_class(kind: str, url: str) -> type:
    from horde.clients.fast import FastHttpUser
    from horde.clients.http import HttpUser
    from horde.user.task import task
    from horde.user.wait_time import constant

    base: Any = FastHttpUser if kind == "fast" else HttpUser

    class Idle(base):  # type: ignore[misc,valid-type]
        host = url
        wait_time = constant(IDLE)

        @task
        async def index(self) -> None:
            await self.client.get("/")

    return Idle


async def run_horde(kind: str, url: str, users: int, trace: bool, rate: float = 0.0) -> dict[str, Any]:
    """Spawn ``users`` idle users, wait for their requests; RSS (and a tracemalloc snapshot)."""
    from horde.env import Environment

    raise_nofile(users * 2 + 1000)
    env = Environment(user_classes=[idle_user_class(kind, url)], host=url)
    runner = env.create_local_runner()
    runner.start(users, rate or max(users, 1000))
    while env.stats.total.num_requests + env.stats.total.num_failures < users or runner.user_count < users:
        await asyncio.sleep(0.05)  # (the runner may replace the stats' total at start: look it up each time)
    await asyncio.sleep(0.5)
    gc.collect()
    total = env.stats.total
    result: dict[str, Any] = {
        "rss": rss_bytes(),
        "requests": total.num_requests,
        "failures": total.num_failures,
    }
    if trace:
        import pickle
        import tempfile
        import tracemalloc

        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        fd, path = tempfile.mkstemp(prefix="horde-mem-", suffix=".pickle")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(snap, f)
        result["snapshot"] = path
    await runner.quit()
    return result


def child_main(kind: str, url: str, users: int, trace: bool, rate: float = 0.0) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    if trace:
        import tracemalloc

        tracemalloc.start(int(os.environ.get("HORDE_TRACE_FRAMES", "1")))
    try:
        import uvloop

        result = uvloop.run(run_horde(kind, url, users, trace, rate))
    except ImportError:
        result = asyncio.run(run_horde(kind, url, users, trace, rate))
    print(json.dumps(result))


def run_child(cmd: list[str], cpu: int | None, src: str | None = None) -> dict[str, Any] | str:
    sys.path.insert(0, str(HERE))
    from _targets import pinned

    env = None
    if src is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=pinned(cpu), env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    result: dict[str, Any] = json.loads(lines[-1])
    if result.get("failures"):
        return f"{result['failures']} failed requests"
    return result


def command(kind: str, url: str, users: int, args: argparse.Namespace, trace: bool = False) -> list[str]:
    if kind.startswith("locust-"):
        return [args.locust_python, "-c", LOCUST_CHILD, kind.split("-", 1)[1], url, str(users)]
    child = BEFORE_KINDS.get(kind, kind)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        child,
        "--url",
        url,
        "--users",
        str(users),
    ]
    return cmd + (["--trace"] if trace else [])


def tracemalloc_report(kind: str, url: str, args: argparse.Namespace, cpu: int | None, top: int) -> None:
    import pickle

    snaps = []
    for users in (args.low, args.high):
        outcome = run_child(command(kind, url, users, args, trace=True), cpu)
        if isinstance(outcome, str):
            print(f"{KINDS[kind]} at {users} users failed: {outcome}")
            return
        with open(outcome["snapshot"], "rb") as f:
            snaps.append(pickle.load(f))
        os.unlink(outcome["snapshot"])
    n = args.high - args.low
    stats = snaps[1].compare_to(snaps[0], "lineno")
    grown = sum(s.size_diff for s in stats)
    print(f"{KINDS[kind]}: tracemalloc, {args.low} -> {args.high} users: {grown / n / 1024:.2f} KiB per user")
    print(f"  {'bytes/user':>10} {'blocks/user':>11}  allocation site")
    for s in stats[:top]:
        if s.size_diff <= 0:
            break
        frame = s.traceback[0]
        print(f"  {s.size_diff / n:>10.0f} {s.count_diff / n:>11.2f}  {frame.filename}:{frame.lineno}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--low", type=int, default=10, help="users of the baseline run (default 10)")
    parser.add_argument("--high", type=int, default=5000, help="users of the measured run (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported")
    parser.add_argument("--only", default="fast,http", help="comma-separated: fast, http")
    parser.add_argument("--target", choices=["auto", "nginx", "builtin"], default="auto")
    parser.add_argument("--url", help="use an already running target instead of starting one")
    parser.add_argument("--locust-python", help="a Python with locust installed: Locust side by side")
    parser.add_argument("--before-src", metavar="DIR", help="a second horde source tree, side by side")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="horde spawn rate, users/s (default: every user in one step, as Locust's runs here do)",
    )
    parser.add_argument("--tracemalloc", action="store_true", help="allocation sites per user instead")
    parser.add_argument("--top", type=int, default=25, help="allocation sites shown with --tracemalloc")
    parser.add_argument("--child", choices=["fast", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.url, args.users, args.trace, args.rate)
        return 0

    sys.path.insert(0, str(HERE))
    from contextlib import nullcontext

    from _targets import run_target
    from throughput import pick_cpus

    gen_cpu, target_cpu = pick_cpus()
    base = [k for k in args.only.split(",") if k in ("fast", "http")]
    kinds = list(base)
    if args.before_src:
        kinds += [f"{k}-before" for k in base]
    if args.locust_python:
        kinds += [f"locust-{k}" for k in base]
    target = nullcontext(("given URL", args.url)) if args.url else run_target(args.target, target_cpu)
    with target as (desc, url):
        print(f"target: {desc}; users: {args.low} and {args.high}, one request each, then idle")
        if args.tracemalloc:
            for kind in base:
                tracemalloc_report(kind, url, args, gen_cpu, args.top)
            return 0
        per_user: dict[str, list[float]] = {k: [] for k in kinds}
        rss_high: dict[str, list[int]] = {k: [] for k in kinds}
        for rnd in range(args.rounds):
            for kind in kinds:
                src = args.before_src if kind in BEFORE_KINDS else None
                low = run_child(command(kind, url, args.low, args), gen_cpu, src)
                high = run_child(command(kind, url, args.high, args), gen_cpu, src)
                if isinstance(low, str) or isinstance(high, str):
                    print(f"  round {rnd + 1}: {KINDS[kind]} failed: {low if isinstance(low, str) else high}")
                    continue
                kib = (high["rss"] - low["rss"]) / (args.high - args.low) / 1024
                per_user[kind].append(kib)
                rss_high[kind].append(high["rss"])
                print(
                    f"  round {rnd + 1}: {KINDS[kind]:<36} {kib:>6.2f} KiB/user"
                    f"  (RSS {low['rss'] / 2**20:.1f} -> {high['rss'] / 2**20:.1f} MiB)",
                    flush=True,
                )
        print()
        print(f"{'user class':<36} {'KiB per idle user':>18} {'RSS at ' + str(args.high):>14} {'runs':>5}")
        medians = {}
        for kind in kinds:
            if not per_user[kind]:
                continue
            medians[kind] = statistics.median(per_user[kind])
            rss = statistics.median(rss_high[kind]) / 2**20
            print(f"{KINDS[kind]:<36} {medians[kind]:>18.2f} {rss:>11.1f} MiB {len(per_user[kind]):>5}")
        for k in base:
            for other in (f"{k}-before", f"locust-{k}"):
                if k in medians and other in medians:
                    print(f"{KINDS[k]} / {KINDS[other]}: {medians[k] / medians[other]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Requests per second of one generator core: horde FastHttpUser and HttpUser, a bare reference
client, and (optionally) Locust's FastHttpUser, against the same target in one interleaved session.

    python benchmarks/throughput.py                      # 10 s per run, 3 rounds, 50 users
    python benchmarks/throughput.py --seconds 15 --rounds 5 --locust-python /opt/locust/bin/python
    python benchmarks/throughput.py --profile            # where FastHttpUser's time goes (cProfile)

The target is nginx when installed (``apt-get install nginx-light``; see docs/fast-http.md), else the
built-in uvloop target in ``_targets.py``. It is pinned to one CPU and every generator run to another
(when the machine has two), each run in its own process. horde runs go through the real machinery:
``Environment`` + ``LocalRunner``, user classes, task choice, ``request`` events and stats; the count
is ``env.stats.total.num_requests`` over the measured window (after every user is running).

The machine is noisy, so absolute numbers drift between sessions: read the ratios, which compare runs
interleaved in the same session, and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WARMUP = 0.5  # seconds of load before the measured window opens

KINDS = {
    "reference": "reference loop (bare httptools client)",
    "fast": "horde FastHttpUser",
    "http": "horde HttpUser",
    "locust": "Locust FastHttpUser",
}

LOCUST_CHILD = """
import json, os, sys, time
import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

url, seconds, users = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])  # then the warm-up

class Bench(FastHttpUser):
    host = url
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")

env = Environment(user_classes=[Bench])
runner = env.create_local_runner()
runner.start(users, spawn_rate=1000)
while runner.user_count < users:
    gevent.sleep(0.01)
gevent.sleep(float(sys.argv[4]))
n0, f0, c0, t0 = env.stats.total.num_requests, env.stats.total.num_failures, os.times(), time.perf_counter()
gevent.sleep(seconds)
n1, f1, c1, t1 = env.stats.total.num_requests, env.stats.total.num_failures, os.times(), time.perf_counter()
runner.quit()
print(json.dumps({"requests": n1 - n0, "failures": f1 - f0, "seconds": t1 - t0,
                  "user": c1.user - c0.user, "sys": c1.system - c0.system}))
"""


# --- the child processes (one measured run each) ---------------------------------------------------


def bench_user_class(kind: str, url: str) -> type:
    from horde.clients.fast import FastHttpUser
    from horde.clients.http import HttpUser
    from horde.user.task import task

    base: Any = FastHttpUser if kind == "fast" else HttpUser

    class Bench(base):  # type: ignore[misc,valid-type]
        host = url

        @task
        async def index(self) -> None:
            await self.client.get("/")

    return Bench


async def run_horde(kind: str, url: str, seconds: float, users: int) -> dict[str, float]:
    """One measured run through Environment + LocalRunner, counted by the runner's own stats."""
    from horde.env import Environment

    env = Environment(user_classes=[bench_user_class(kind, url)], host=url)
    runner = env.create_local_runner()
    runner.start(users, 1000)
    while runner.user_count < users:
        await asyncio.sleep(0.01)
    await asyncio.sleep(WARMUP)
    total = env.stats.total
    n0, f0, c0, t0 = total.num_requests, total.num_failures, os.times(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, f1, c1, t1 = total.num_requests, total.num_failures, os.times(), time.perf_counter()
    await runner.quit()
    return {
        "requests": n1 - n0,
        "failures": f1 - f0,
        "seconds": t1 - t0,
        "user": c1.user - c0.user,
        "sys": c1.system - c0.system,
    }


async def run_reference(url: str, seconds: float, users: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    from _targets import reference_loop

    c0, t0 = os.times(), time.perf_counter()
    n = await reference_loop(url, users, seconds)  # includes its own warm-up, excluded from n
    c1, t1 = os.times(), time.perf_counter()
    busy = (t1 - t0) / seconds  # scale CPU time to the measured window
    return {
        "requests": n,
        "failures": 0,
        "seconds": seconds,
        "user": (c1.user - c0.user) / busy,
        "sys": (c1.system - c0.system) / busy,
    }


def child_main(kind: str, url: str, seconds: float, users: int, loop: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    coro = run_reference(url, seconds, users) if kind == "reference" else run_horde(kind, url, seconds, users)
    if loop == "uvloop":
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    print(json.dumps(result))


# --- the parent: target, pinning, interleaving, report ----------------------------------------------


def pick_cpus() -> tuple[int | None, int | None]:
    """(generator CPU, target CPU): the first and last CPU this process may use, if there are two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[-1]) if len(cpus) >= 2 else (None, None)


def run_child(cmd: list[str], cpu: int | None, timeout: float) -> dict[str, float] | str:
    sys.path.insert(0, str(HERE))
    from _targets import pinned

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=pinned(cpu))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    result: dict[str, float] = json.loads(lines[-1])
    return result


def run_profile(url: str, seconds: float, users: int, loop: str, top: int) -> None:
    """FastHttpUser under cProfile in this process: relative costs, not absolute speed."""
    import cProfile
    import pstats

    logging.basicConfig(level=logging.ERROR)
    profiler = cProfile.Profile()
    coro = run_horde("fast", url, seconds, users)
    profiler.enable()
    if loop == "uvloop":
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    profiler.disable()
    print(
        f"{result['requests'] / result['seconds']:,.0f} req/s under the profiler ({result['requests']:,} requests)"
    )
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)"
    )
    parser.add_argument("--users", type=int, default=50, help="users / connections (default 50)")
    parser.add_argument("--target", choices=["auto", "nginx", "builtin"], default="auto")
    parser.add_argument("--url", help="use an already running target instead of starting one")
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="event loop of the horde runs"
    )
    parser.add_argument("--only", default="reference,fast,http,locust", help="comma-separated kinds to run")
    parser.add_argument(
        "--locust-python", help="a Python with locust installed, to run Locust's FastHttpUser too"
    )
    parser.add_argument("--profile", action="store_true", help="profile FastHttpUser with cProfile instead")
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.url, args.seconds, args.users, args.loop)
        return 0

    sys.path.insert(0, str(HERE))
    from contextlib import nullcontext

    from _targets import run_target

    gen_cpu, target_cpu = pick_cpus()
    target = nullcontext(("given URL", args.url)) if args.url else run_target(args.target, target_cpu)
    with target as (desc, url):
        if args.profile:
            if gen_cpu is not None:
                os.sched_setaffinity(0, {gen_cpu})
            run_profile(url, args.seconds, args.users, args.loop, 30)
            return 0
        kinds = [k for k in args.only.split(",") if k in KINDS]
        if "locust" in kinds and not args.locust_python:
            kinds.remove("locust")
        print(f"target: {desc}; generator on CPU {gen_cpu if gen_cpu is not None else 'any'}")
        print(
            f"{args.users} users, no wait, {args.seconds:g} s measured per run, {args.rounds} interleaved rounds, horde on {args.loop}"
        )
        results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for rnd in range(args.rounds):
            for kind in kinds:
                if kind == "locust":
                    cmd = [
                        args.locust_python,
                        "-c",
                        LOCUST_CHILD,
                        url,
                        str(args.seconds),
                        str(args.users),
                        str(WARMUP),
                    ]
                else:
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--url", url]
                    cmd += ["--seconds", str(args.seconds), "--users", str(args.users), "--loop", args.loop]
                outcome = run_child(cmd, gen_cpu, timeout=args.seconds * 3 + 60)
                if isinstance(outcome, str):
                    print(f"  round {rnd + 1}: {KINDS[kind]} failed: {outcome}")
                    continue
                results[kind].append(outcome)
                rate = outcome["requests"] / outcome["seconds"]
                print(f"  round {rnd + 1}: {KINDS[kind]:<40} {rate:>10,.0f} req/s", flush=True)
        report(results)
    return 0


def report(results: dict[str, list[dict[str, float]]]) -> None:
    """Medians, CPU cost per request, and the ratios.

    ``req/s per busy core`` is 1 / (CPU time per request): what the generator would do with its core
    fully to itself. On a shared, noisy host it moves much less than the measured rate, which drops
    whenever the target or the generator loses its CPU for a while.
    """
    medians: dict[str, float] = {}
    capacity: dict[str, float] = {}
    print()
    print(
        f"{'generator (one core)':<40} {'median req/s':>12} {'user µs/req':>12} {'sys µs/req':>11}"
        f" {'req/s per busy core':>20} {'failures':>9}"
    )
    for kind, runs in results.items():
        if not runs:
            continue
        rates = [r["requests"] / r["seconds"] for r in runs]
        medians[kind] = statistics.median(rates)
        n = sum(r["requests"] for r in runs) or 1
        user = sum(r["user"] for r in runs) / n * 1e6
        system = sum(r["sys"] for r in runs) / n * 1e6
        capacity[kind] = 1e6 / (user + system) if user + system else 0.0
        fails = sum(int(r["failures"]) for r in runs)
        print(
            f"{KINDS[kind]:<40} {medians[kind]:>12,.0f} {user:>12.1f} {system:>11.1f}"
            f" {capacity[kind]:>20,.0f} {fails:>9}"
        )
    print()
    for base in ("reference", "locust"):
        if base not in medians:
            continue
        for kind in ("fast", "http"):
            if kind in medians:
                print(
                    f"{KINDS[kind]} / {KINDS[base]}: {medians[kind] / medians[base]:.2f} (median req/s),"
                    f" {capacity[kind] / capacity[base]:.2f} (per busy core)"
                )


if __name__ == "__main__":
    sys.exit(main())

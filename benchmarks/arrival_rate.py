"""The highest constant arrival rate one generator core holds, beside the closed model at the same concurrency.

    python benchmarks/arrival_rate.py                   # 3 s per run, rates from 1000/s up by x1.25
    python benchmarks/arrival_rate.py --seconds 5 --users 50 --start 2000 --factor 1.1

A rate *holds* when the iterations started over the measured window are within 1 % of rate x seconds,
none was dropped, and the p99 scheduling lag (how late iterations started, horde's generator-health
figure) is under 2 ms. The search raises the rate until one does not hold, and reports the last that did.
Then the closed model (the same FastHttpUser with no wait time, the same number of users as the pool)
runs for the same time: its requests per second and per CPU-second are the ceiling the open model is
compared with. The target (nginx if installed, else the built-in uvloop target of ``_targets.py``) is
pinned to one CPU and each measured run, in its own process, to another.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WARMUP = 0.5


def bench_class(url: str) -> type:
    from horde import FastHttpUser, task

    class Bench(FastHttpUser):
        host = url

        @task
        async def index(self) -> None:
            await self.client.get("/")

    return Bench


async def run_open(url: str, rate: float, seconds: float, users: int) -> dict[str, Any]:
    from horde.env import Environment
    from horde.load.arrival import ConstantArrivalRate
    from horde.load.arrival_pool import arrival_stats

    env = Environment(user_classes=[bench_class(url)], host=url)
    runner = env.create_local_runner()
    stats = arrival_stats(env)
    await runner.start_load(ConstantArrivalRate(rate, pre_allocated=users, max_users=users))
    await asyncio.sleep(WARMUP)
    i0, d0, c0, t0 = stats.iterations, stats.dropped_iterations, os.times(), time.perf_counter()
    stats.lag.counts.clear()  # the lag of the measured window only
    stats.lag_max_us = 0
    await asyncio.sleep(seconds)
    i1, d1, c1, t1 = stats.iterations, stats.dropped_iterations, os.times(), time.perf_counter()
    p99, lag_max = stats.lag_ms(0.99), stats.lag_max_us / 1000
    await runner.quit()
    return {
        "iterations": i1 - i0,
        "dropped": d1 - d0,
        "seconds": t1 - t0,
        "lag_p99_ms": p99,
        "lag_max_ms": lag_max,
        "cpu": (c1.user - c0.user) + (c1.system - c0.system),
        "sys": c1.system - c0.system,
    }


async def run_closed(url: str, seconds: float, users: int) -> dict[str, Any]:
    from horde.env import Environment

    env = Environment(user_classes=[bench_class(url)], host=url)
    runner = env.create_local_runner()
    runner.start(users, 10_000)
    while runner.user_count < users:
        await asyncio.sleep(0.01)
    await asyncio.sleep(WARMUP)
    total = env.stats.total
    n0, c0, t0 = total.num_requests, os.times(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, c1, t1 = total.num_requests, os.times(), time.perf_counter()
    await runner.quit()
    return {
        "requests": n1 - n0,
        "seconds": t1 - t0,
        "cpu": (c1.user - c0.user) + (c1.system - c0.system),
        "sys": c1.system - c0.system,
    }


def child(args: argparse.Namespace) -> None:
    import uvloop

    logging.basicConfig(level=logging.ERROR)
    if args.child == "open":
        result = uvloop.run(run_open(args.url, args.rate, args.seconds, args.users))
    else:
        result = uvloop.run(run_closed(args.url, args.seconds, args.users))
    print(json.dumps(result))


def measured(cmd: list[str], cpu: int | None) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from _targets import pinned

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, preexec_fn=pinned(cpu))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "child failed")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def holds(result: dict[str, Any], rate: float) -> bool:
    expected = rate * result["seconds"]
    return (
        abs(result["iterations"] - expected) <= 0.01 * expected
        and result["dropped"] == 0
        and result["lag_p99_ms"] < 2.0
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--users", type=int, default=50, help="pool size (pre-allocated = max) and closed users"
    )
    parser.add_argument("--start", type=float, default=1000.0)
    parser.add_argument("--factor", type=float, default=1.25)
    parser.add_argument("--max-runs", type=int, default=12)
    parser.add_argument("--target", choices=["auto", "nginx", "builtin"], default="auto")
    parser.add_argument("--child", choices=["open", "closed"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    sys.path.insert(0, str(HERE))
    from _targets import start_target
    from throughput import pick_cpus

    gen_cpu, target_cpu = pick_cpus()
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--seconds", str(args.seconds), "--users", str(args.users)]
    with start_target(args.target, None if target_cpu is None else {target_cpu}) as target:
        print(f"target {target.kind} on CPU {target_cpu}, generator on CPU {gen_cpu}, {args.users} users")
        best: tuple[float, dict[str, Any]] | None = None
        rate = args.start
        for _ in range(args.max_runs):  # raise the rate until it no longer holds
            r = measured([*me, *common, "--child", "open", "--url", target.url, "--rate", str(rate)], gen_cpu)
            ok = holds(r, rate)
            achieved = r["iterations"] / r["seconds"]
            print(
                f"  open {rate:>9,.0f}/s: achieved {achieved:>9,.0f}/s ({100 * achieved / rate - 100:+.2f} %), "
                f"dropped {r['dropped']}, lag p99 {r['lag_p99_ms']:.2f} ms max {r['lag_max_ms']:.1f} ms, "
                f"{achieved * r['seconds'] / max(r['cpu'], 1e-9):,.0f} per CPU-s ({100 * r['sys'] / max(r['cpu'], 1e-9):.0f} % "
                f"system)  {'holds' if ok else 'FAILS'}"
            )
            if not ok:
                break
            best = (rate, r)
            rate *= args.factor
        c = measured([*me, *common, "--child", "closed", "--url", target.url], gen_cpu)
        closed_rps = c["requests"] / c["seconds"]
        print(
            f"  closed {args.users} users, no wait: {closed_rps:,.0f} req/s, "
            f"{c['requests'] / max(c['cpu'], 1e-9):,.0f} per CPU-s ({100 * c['sys'] / max(c['cpu'], 1e-9):.0f} % system)"
        )
    if best is None:
        print(f"no rate held (the start rate {args.start:g}/s is already too high)")
        return 1
    rate, r = best
    print(
        f"highest constant rate that holds: {rate:,.0f}/s (lag p99 {r['lag_p99_ms']:.2f} ms); "
        f"{100 * rate / closed_rps:.0f} % of the closed model's {closed_rps:,.0f} req/s at {args.users} users"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Requests per second of one generator core: horde FastHttpUser and HttpUser, a bare reference
client, and (optionally) Locust's FastHttpUser, against the same target in one interleaved session.

    python benchmarks/throughput.py                      # 10 s per run, 3 rounds, 50 users
    python benchmarks/throughput.py --seconds 15 --rounds 5 --locust-python /opt/locust/bin/python
    python benchmarks/throughput.py --profile            # where FastHttpUser's time goes (cProfile)
    python benchmarks/throughput.py --processes          # `horde --processes 1` vs `--processes 2`

The target is nginx when installed (``apt-get install nginx-light``; see docs/fast-http.md), else the
built-in uvloop target in ``_targets.py``. It is pinned to one CPU and every generator run to another
(when the machine has two), each run in its own process. horde runs go through the real machinery:
``Environment`` + ``LocalRunner``, user classes, task choice, ``request`` events and stats; the count
is ``env.stats.total.num_requests`` over the measured window (after every user is running).

``--processes`` runs the real CLI instead (``python -m horde -f LOCUSTFILE --processes N --headless
-u 50 -r 1000 -t SECONDS --json OUT -H TARGET --only-summary``, a FastHttpUser with no wait time) for
each N in interleaved rounds, reads ``num_requests`` and ``duration`` from the JSON report, and measures
the CPU time of the whole horde process tree (master and workers) with psutil, so it can print requests
per CPU-second beside requests per second: on a machine without a free core per worker, that is the
figure that shows whether the workers scale. See ``PROCESSES_HELP`` below and docs/fast-http.md.

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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WARMUP = 0.5  # seconds of load before the measured window opens

KINDS = {
    "reference": "reference loop (bare httptools client)",
    "fast": "horde FastHttpUser",
    "http": "horde HttpUser",
    "fast-before": "horde FastHttpUser (--before-src)",
    "http-before": "horde HttpUser (--before-src)",
    "locust": "Locust FastHttpUser",
}
BEFORE_KINDS = {"fast-before": "fast", "http-before": "http"}

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


# --- --processes: the real CLI, a master plus N worker processes ---------------------------------


PROCESSES_LOCUSTFILE = """\
from horde import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    async def index(self):
        await self.client.get("/")
"""

PLACEMENTS = {
    "split": "the target pinned to one CPU, the horde processes (master and workers) sharing the other",
    "free": "nothing pinned: the target and the horde processes share every CPU",
}
SAMPLE_INTERVAL = 0.1  # seconds between CPU samples of the horde and target process trees
EDGE = 0.5  # seconds left out at each end of the test when measuring steady CPU rates

PROCESSES_HELP = """\
How to read these figures
  req/s                 num_requests / duration from the --json report of the run.
  horde CPU             cores' worth of CPU used by the whole horde tree (master + workers) in the
                        steady part of the run (the first and last {edge:g} s of the test left out);
                        "master" is the master's own share of it.
  target CPU            the same for the target.
  others                the rest of the machine's busy CPU in that time: this script's sampling, and
                        anything else running (on a shared host, a neighbour's load shows up here).
  req/CPU-s             requests per CPU-second of the horde tree (req/s / horde CPU). This is the
                        scaling figure: it stays constant from N=1 to N=2 when a second worker process
                        costs nothing beyond the CPU its own requests take (master and stats included).
  whole run             the same over the whole run, interpreter start-up and shutdown included (each
                        extra process costs a fixed few tenths of a CPU-second; longer runs hide it).
  µs/req usr+sys        horde CPU per request, user and system (kernel) time, steady part.
  req/wake              requests per time a worker's event loop blocked waiting (voluntary context
                        switches of the workers' main threads): the batch each wake-up serves. Fewer
                        requests per wake-up means more epoll/loop/scheduler overhead per request.
  server - horde        requests nginx counted (stub_status) minus those horde reported: up to one
                        in-flight request per user is cut at the stop and counted by the server only.

On a 2-core machine there is no free core for a second worker, so req/s alone cannot show scaling:
  split                 the workers share one core; N=2 has no more CPU than N=1, so req/s stays flat
                        and so should req/CPU-s. A drop is the real cost of a second process (the
                        master merging two stats streams, two event loops taking turns on one core).
  free                  N=1 leaves the second core to the target and idle time; N=2 takes the rest,
                        but every request also costs the target CPU, so the gain stops at the
                        "2-core ceiling" = 2 / (horde CPU-s per request + target CPU-s per request),
                        not at 2x. Three busy processes (two workers, nginx) on two cores also wait on
                        each other: some CPU stays idle, each wake-up serves a small batch (req/wake)
                        and req/CPU-s drops by up to ~10 %: a cost of sharing cores, which split does
                        not have. With one free core per worker and the target on cores of its own,
                        an unchanged req/CPU-s means N times the N=1 rate.
"""


@dataclass
class CliRun:
    """One ``horde --processes N`` run: its report, and the CPU its process trees used."""

    n: int
    placement: str
    requests: int = 0
    failures: int = 0
    duration: float = 0.0
    user_count: int = 0
    exit_code: int = 0
    horde_cpu: float = 0.0  # CPU-s of master + workers over the whole run (start-up included)
    horde_rate: float = 0.0  # cores' worth, steady part of the test
    master_rate: float = 0.0
    target_rate: float = 0.0
    other_rate: float = 0.0  # everything else busy on the machine (this script's sampling included)
    sampler_rate: float = 0.0  # this script alone, while the run lasted
    user_rate: float = 0.0  # the user-space part of horde_rate
    wake_rate: float = 0.0  # voluntary context switches per second of the workers' main threads
    server_minus_horde: int | None = None
    leftovers: list[int] = field(default_factory=list)  # worker pids still running after the master exited

    @property
    def rate(self) -> float:
        return self.requests / self.duration if self.duration else 0.0


def _interpolate(samples: list[tuple[float, ...]], when: float, column: int) -> float:
    """The value of ``column`` at time ``when`` (column 0), linear between the two nearest samples."""
    before = max((s for s in samples if s[0] <= when), key=lambda s: s[0], default=samples[0])
    after = min((s for s in samples if s[0] >= when), key=lambda s: s[0], default=samples[-1])
    if after[0] == before[0]:
        return before[column]
    share = (when - before[0]) / (after[0] - before[0])
    return before[column] + share * (after[column] - before[column])


def machine_busy() -> float:
    """CPU-seconds every CPU of the machine has spent busy (not idle, not waiting, not stolen)."""
    import psutil

    t = psutil.cpu_times()
    return float(
        sum(t)
        - t.idle
        - getattr(t, "iowait", 0.0)
        - getattr(t, "steal", 0.0)
        - getattr(t, "guest", 0.0)
        - getattr(t, "guest_nice", 0.0)
    )


def run_cli(
    cmd: list[str], n: int, placement: str, cpus: set[int] | None, target: Any, timeout: float, out: Path
) -> CliRun | str:
    """Run the horde CLI, sampling the CPU of its process tree (and the target's) until it exits.

    The master is left unreaped for a moment after it exits (``waitid(WNOWAIT)``): its final CPU
    times then include every worker it has waited for, so the whole-run total misses nothing.
    """
    import psutil

    sys.path.insert(0, str(HERE))
    from _targets import cpu_of, pinned_to

    out.unlink(missing_ok=True)
    served0 = target.served() if target is not None else None
    log = out.with_suffix(".log")
    with open(log, "w") as logfile:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned_to(cpus),
        )
    root = psutil.Process(proc.pid)
    workers: dict[int, psutil.Process] = {}
    # (time, horde tree, master alone, target, whole machine busy, horde tree user) in CPU-seconds,
    # then the voluntary context switches of the workers' main threads (their event loops blocking)
    samples: list[tuple[float, ...]] = []
    deadline = time.monotonic() + timeout
    own0, began = os.times(), time.monotonic()
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        if time.monotonic() > deadline:
            for p in [*workers.values(), root]:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            proc.wait()
            return f"timed out after {timeout:g} s"
        try:
            if len(workers) < n:  # rescan until every worker process is known
                workers.update((c.pid, c) for c in root.children(recursive=True))
            now, master = time.time(), root.cpu_times()
            tree, user, wakes = cpu_of(master), master.user + master.children_user, 0
            for w in list(workers.values()):
                try:
                    t = w.cpu_times()
                    wakes += w.num_ctx_switches().voluntary
                except psutil.Error:
                    continue  # exited: its CPU is in the master's children_* once reaped
                tree += cpu_of(t)
                user += t.user + t.children_user
            target_cpu = target.cpu_seconds() if target is not None else 0.0
            busy = machine_busy()
            samples.append((now, tree, master.user + master.system, target_cpu, busy, user, wakes))
        except psutil.Error:
            pass
        time.sleep(SAMPLE_INTERVAL)
    own1, ended = os.times(), time.monotonic()
    total = cpu_of(root.cpu_times())  # the exited master, before it is reaped
    leftovers = []
    for pid, w in workers.items():
        try:
            if w.is_running() and w.status() != psutil.STATUS_ZOMBIE:
                leftovers.append(pid)
                total += cpu_of(w.cpu_times())
                w.kill()  # a worker we started (through the master) that outlived it
        except psutil.Error:
            pass
    code = proc.wait()
    served1 = target.served() if target is not None else None
    if not out.exists():
        tail = log.read_text().strip().splitlines()[-3:]
        return f"exit code {code}, no JSON report: " + " | ".join(tail)
    report = json.loads(out.read_text())
    total_row = report["stats"][-1]
    run = CliRun(
        n,
        placement,
        requests=int(total_row["num_requests"]),
        failures=int(total_row["num_failures"]),
        duration=float(report["duration"]),
        user_count=int(report["user_count"]),
        exit_code=code,
        horde_cpu=total,
        leftovers=leftovers,
        sampler_rate=(own1.user + own1.system - own0.user - own0.system) / max(ended - began, 1e-9),
    )
    if served0 is not None and served1 is not None:
        run.server_minus_horde = served1 - served0 - 1 - run.requests  # minus the second status query
    start, end = float(report["start_time"]) + EDGE, float(report["end_time"]) - EDGE
    if samples and end > start:
        span = end - start
        run.horde_rate = (_interpolate(samples, end, 1) - _interpolate(samples, start, 1)) / span
        run.master_rate = (_interpolate(samples, end, 2) - _interpolate(samples, start, 2)) / span
        run.target_rate = (_interpolate(samples, end, 3) - _interpolate(samples, start, 3)) / span
        busy = (_interpolate(samples, end, 4) - _interpolate(samples, start, 4)) / span
        run.other_rate = max(0.0, busy - run.horde_rate - run.target_rate)
        run.user_rate = (_interpolate(samples, end, 5) - _interpolate(samples, start, 5)) / span
        run.wake_rate = (_interpolate(samples, end, 6) - _interpolate(samples, start, 6)) / span
    return run


def run_processes_mode(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(HERE))
    from _targets import start_target

    counts = [int(x) for x in args.processes.split(",") if x.strip()]
    placements = [p for p in args.placement.split(",") if p in PLACEMENTS]
    if not counts or any(c < 1 for c in counts) or not placements:
        print("--processes takes positive counts (1,2); --placement split, free or both", file=sys.stderr)
        return 2
    gen_cpu, target_cpu = pick_cpus()
    if gen_cpu is None and "split" in placements:
        placements.remove("split")  # one CPU: there is nothing to split
        placements = placements or ["free"]
    seconds = max(2, round(args.seconds))
    with tempfile.TemporaryDirectory(prefix="horde-processes-") as tmp:
        locustfile = Path(tmp, "locustfile.py")
        locustfile.write_text(PROCESSES_LOCUSTFILE)
        target_ctx: Any
        if args.url:
            from contextlib import nullcontext

            target_ctx = nullcontext(None)
        else:
            target_ctx = start_target(args.target, None)
        with target_ctx as target:
            url = args.url or target.url
            desc = "given URL" if target is None else target.desc
            print(f"target: {desc} at {url}; {os.cpu_count()} CPUs")
            print(
                f"horde --processes N for N in {counts}: {args.users} users, no wait, -t {seconds}, "
                f"{args.rounds} interleaved rounds; placements: "
                + "; ".join(f"{p} = {PLACEMENTS[p]}" for p in placements)
            )
            results: dict[tuple[str, int], list[CliRun]] = {(p, n): [] for p in placements for n in counts}
            for rnd in range(args.rounds):
                for placement in placements:
                    horde_cpus = {gen_cpu} if placement == "split" and gen_cpu is not None else None
                    if target is not None:
                        target.set_cpus({target_cpu} if placement == "split" else None)
                    for n in counts if rnd % 2 == 0 else counts[::-1]:  # alternate the order each round
                        out = Path(tmp, f"out-{placement}-{n}-{rnd}.json")
                        cmd = [sys.executable, "-m", "horde", "-f", str(locustfile), "--processes", str(n)]
                        cmd += ["--headless", "-u", str(args.users), "-r", "1000", "-t", str(seconds)]
                        cmd += ["--json", str(out), "-H", url, "--only-summary"]
                        outcome = run_cli(cmd, n, placement, horde_cpus, target, seconds * 3 + 60, out)
                        label = f"  round {rnd + 1}: {placement:<5} N={n}"
                        if isinstance(outcome, str):
                            print(f"{label} failed: {outcome}", flush=True)
                            continue
                        results[(placement, n)].append(outcome)
                        problems = run_problems(outcome, args.users)
                        print(
                            f"{label} {outcome.rate:>9,.0f} req/s  horde {outcome.horde_rate:4.2f} cores"
                            f"  target {outcome.target_rate:4.2f}  others {outcome.other_rate:4.2f}"
                            f" (sampling {outcome.sampler_rate:4.2f})"
                            f"  {outcome.rate / outcome.horde_rate if outcome.horde_rate else 0:>8,.0f} req/CPU-s"
                            + (f"  PROBLEM: {'; '.join(problems)}" if problems else ""),
                            flush=True,
                        )
            report_processes(results, placements, counts, gen_cpu, target_cpu, target is not None)
    return 0


def run_problems(run: CliRun, users: int) -> list[str]:
    """What is wrong with a run's outcome, beyond slowness."""
    problems = []
    if run.exit_code != 0:
        problems.append(f"exit code {run.exit_code}")
    if run.failures:
        problems.append(f"{run.failures} failures")
    if run.user_count != users:
        problems.append(f"user_count {run.user_count}, expected {users}")
    if run.leftovers:
        problems.append(f"worker process(es) {run.leftovers} still running after the master exited")
    if run.server_minus_horde is not None and not 0 <= run.server_minus_horde <= users:
        problems.append(f"the server counted {run.server_minus_horde:+d} requests more than horde")
    return problems


def report_processes(
    results: dict[tuple[str, int], list[CliRun]],
    placements: list[str],
    counts: list[int],
    gen_cpu: int | None,
    target_cpu: int | None,
    measured_target: bool,
) -> None:
    def med(values: Any) -> float:
        values = list(values)
        return statistics.median(values) if values else 0.0

    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for placement in placements:
        print()
        where = (
            f"target on CPU {target_cpu}, horde master + workers on CPU {gen_cpu}"
            if placement == "split"
            else "nothing pinned"
        )
        print(f"{placement}: {where}")
        print(
            f"  {'N':>3} {'median req/s':>13} {'horde CPU':>10} {'master':>7} {'target CPU':>11}"
            f" {'others':>7} {'req/CPU-s':>10} {'whole run':>10} {'µs/req usr+sys':>15} {'req/wake':>9}"
            f" {'server - horde':>15} {'runs':>5}"
        )
        summary: dict[int, tuple[float, float, float]] = {}
        for n in counts:
            runs = results[(placement, n)]
            if not runs:
                print(f"  {n:>3} no successful run")
                continue
            rate = med(r.rate for r in runs)
            horde = med(r.horde_rate for r in runs)
            per_cpu = med(r.rate / r.horde_rate for r in runs if r.horde_rate)
            whole = med(r.requests / r.horde_cpu for r in runs if r.horde_cpu)
            target = med(r.target_rate for r in runs)
            usr = med(r.user_rate / r.rate * 1e6 for r in runs if r.rate)
            sys_ = med((r.horde_rate - r.user_rate) / r.rate * 1e6 for r in runs if r.rate)
            per_wake = med(r.rate / r.wake_rate for r in runs if r.wake_rate)
            diffs = [r.server_minus_horde for r in runs if r.server_minus_horde is not None]
            diff = f"{min(diffs)}..{max(diffs)}" if diffs else "n/a"
            summary[n] = (rate, per_cpu, target / rate if rate else 0.0)
            print(
                f"  {n:>3} {rate:>13,.0f} {horde:>10.2f} {med(r.master_rate for r in runs):>7.3f}"
                f" {target if measured_target else float('nan'):>11.2f} {med(r.other_rate for r in runs):>7.2f}"
                f" {per_cpu:>10,.0f} {whole:>10,.0f} {usr:>7.1f} + {sys_:<5.1f} {per_wake:>9.1f}"
                f" {diff:>15} {len(runs):>5}"
            )
        base = min(summary) if summary else None
        for n in sorted(summary):
            if base is None or n == base or not summary[base][0] or not summary[base][1]:
                continue
            rate, per_cpu, _ = summary[n]
            print(
                f"  N={n} / N={base}: {rate / summary[base][0]:.2f} x req/s,"
                f" {per_cpu / summary[base][1]:.2f} x req/CPU-s"
            )
        # what the CPUs allow at the measured per-request costs (medians over every N)
        horde_cost = med(1 / v[1] for v in summary.values() if v[1])
        target_cost = med(v[2] for v in summary.values())
        if measured_target and horde_cost and target_cost:
            if placement == "split":
                print(
                    f"  ceilings at these costs: the horde core allows {1 / horde_cost:,.0f} req/s"
                    f" ({horde_cost * 1e6:.1f} µs of CPU per request), the target's core"
                    f" {1 / target_cost:,.0f} req/s ({target_cost * 1e6:.1f} µs)"
                )
            else:
                ceiling = ncpu / (horde_cost + target_cost)
                print(
                    f"  {ncpu}-core ceiling: {ncpu} / ({horde_cost * 1e6:.1f} + {target_cost * 1e6:.1f} µs"
                    f" of CPU per request) = {ceiling:,.0f} req/s; each N as a share of it: "
                    + ", ".join(f"N={n} {summary[n][0] / ceiling:.0%}" for n in sorted(summary))
                )
    print()
    print(PROCESSES_HELP.format(edge=EDGE))


# --- the parent: target, pinning, interleaving, report ----------------------------------------------


def pick_cpus() -> tuple[int | None, int | None]:
    """(generator CPU, target CPU): the first and last CPU this process may use, if there are two."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[-1]) if len(cpus) >= 2 else (None, None)


def run_child(
    cmd: list[str], cpu: int | None, timeout: float, src: str | None = None
) -> dict[str, float] | str:
    """Run one measured child; ``src``: import horde from that source tree instead of this one."""
    sys.path.insert(0, str(HERE))
    from _targets import pinned

    env = None
    if src is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=pinned(cpu), env=env
    )
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
    parser.add_argument(
        "--before-src",
        metavar="DIR",
        help="a second horde source tree (e.g. `git archive HEAD~1 src | tar -x -C /tmp/before`, then"
        " /tmp/before/src): its FastHttpUser and HttpUser run interleaved with this tree's, as"
        " 'fast-before' and 'http-before', for a before/after comparison in one session",
    )
    parser.add_argument("--profile", action="store_true", help="profile FastHttpUser with cProfile instead")
    parser.add_argument(
        "--processes",
        nargs="?",
        const="1,2",
        metavar="N,N",
        help="run `horde --processes N` (the CLI, master + N workers) for each N instead (default 1,2)",
    )
    parser.add_argument(
        "--placement",
        default="split,free",
        help="with --processes: split (target on one CPU, horde on the other), free (nothing pinned),"
        " or both: split,free (the default)",
    )
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        child_main(args.child, args.url, args.seconds, args.users, args.loop)
        return 0

    if args.processes:
        return run_processes_mode(args)

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
        if args.before_src:
            kinds += [b for b, k in BEFORE_KINDS.items() if k in kinds and b not in kinds]
        else:
            kinds = [k for k in kinds if k not in BEFORE_KINDS]
        print(f"target: {desc}; generator on CPU {gen_cpu if gen_cpu is not None else 'any'}")
        print(
            f"{args.users} users, no wait, {args.seconds:g} s measured per run, {args.rounds} interleaved rounds, horde on {args.loop}"
        )
        results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for rnd in range(args.rounds):
            for kind in kinds if rnd % 2 == 0 else kinds[::-1]:  # alternate the order each round
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
                    child = BEFORE_KINDS.get(kind, kind)
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", child, "--url", url]
                    cmd += ["--seconds", str(args.seconds), "--users", str(args.users), "--loop", args.loop]
                src = args.before_src if kind in BEFORE_KINDS else None
                outcome = run_child(cmd, gen_cpu, timeout=args.seconds * 3 + 60, src=src)
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
    for kind, before in (("fast", "fast-before"), ("http", "http-before")):
        if kind in medians and before in medians:
            print(
                f"{KINDS[kind]} after / before: {medians[kind] / medians[before]:.3f} (median req/s),"
                f" {capacity[kind] / capacity[before]:.3f} (per busy core)"
            )
    for base in ("reference", "locust"):
        if base not in medians:
            continue
        for kind in ("fast", "http", "fast-before", "http-before"):
            if kind in medians:
                print(
                    f"{KINDS[kind]} / {KINDS[base]}: {medians[kind] / medians[base]:.2f} (median req/s),"
                    f" {capacity[kind] / capacity[base]:.2f} (per busy core)"
                )


if __name__ == "__main__":
    sys.exit(main())

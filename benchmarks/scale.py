"""Many users in one process: RSS, ramp time and event-loop lag at 10k / 50k / 100k FastHttpUsers.

    python benchmarks/scale.py                           # 10000,50000,100000 users, ramp 10,000/s
    python benchmarks/scale.py --users 2500,5000,10000,15000 --rate 10000 --wait 10

Each size runs in a fresh process pinned to one CPU (the target on the other): ``Environment`` +
``LocalRunner`` ramp to N users of one FastHttpUser class at ``--rate`` users/s; every user makes a
``GET /`` and then waits ``--wait`` seconds between requests, holding one keep-alive connection. The
process raises its own ``RLIMIT_NOFILE`` (soft up to the hard limit; it cannot raise the hard limit
without CAP_SYS_RESOURCE). Above ``PER_ADDRESS`` users the users are spread over several loopback
addresses (127.0.0.1, 127.0.0.2, ...; nginx listens on each), so that no (source, destination) pair
runs out of ephemeral ports.

Reported per size: the ramp time (start until every user has made its first request) in wall and CPU
seconds (CPU per user is the figure to read on a busy machine), the loop lag (how late a 10 ms sleep wakes
up, sampled continuously) at p50/p99/max during the ramp and in the ``--steady`` seconds after it,
whether horde's own loop-lag warning fired during the ramp and once ramped, the cyclic collector's full
collections and their longest pause, the RSS once ramped and per user, the CPU a ramp down to half the
users took per stopped user (it must not grow with the users left), the time ``runner.quit()`` took
(it must end within the stop timeout), the failures and the commonest errors. Linear growth means the
ramp time per user and the lag stay flat as N grows.

A size that needs more file descriptors than the hard limit allows (one per user, in this process
and in the target) is reported as skipped, with the limit, rather than run with a silent cap.

``--connections per-request`` is for machines whose hard descriptor limit is below the user count (it
needs CAP_SYS_RESOURCE to raise, which a container often lacks): nginx answers with ``Connection:
close`` (``keepalive_timeout 0``), so each user opens a connection for each request and the pool closes
it with the response. The users are still all alive at once in one process, each with its client, pool,
task and timers; what is not held is an idle socket per user, so RSS per user is lower than with
keep-alive, and every request pays a TCP handshake. Read those rows as "N concurrent users, one process",
not as "N open connections".
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
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PER_ADDRESS = 10_000  # users per destination address: connect() picks from the even half of the ephemeral
# ports first (about 14,000 of 32768-60999), and past that its search for a free port gets slow
FD_MARGIN = 200  # descriptors the process needs besides the users' connections
LAG_PROBE = 0.010
PER_REQUEST_FDS = 4096  # descriptors reserved for requests in flight with --connections per-request

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log crit;
events {{ worker_connections {nofile}; }}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout {keepalive};
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
{listen}        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def hard_nofile() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else hard


def raise_nofile(need: int) -> int:
    """Raise the soft descriptor limit toward ``need`` (at most the hard limit); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(need, hard_nofile())
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fds_needed(users: int, per_request: bool) -> int:
    """Descriptors one size needs: a socket per user with keep-alive; with a connection per request
    only the requests in flight hold one (bounded here by the limit itself: a refused socket is a
    counted failure, not a hang)."""
    return FD_MARGIN + (min(users, PER_REQUEST_FDS) if per_request else users)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def addresses_for(users: int) -> list[str]:
    return [f"127.0.0.{i + 1}" for i in range(max(1, -(-users // PER_ADDRESS)))]


# --- the child: one size ----------------------------------------------------------------------------


def user_classes(urls: list[str], wait: float) -> list[type]:
    from horde.clients.fast import FastHttpUser
    from horde.user.task import task
    from horde.user.wait_time import constant

    classes = []
    for i, url in enumerate(urls):

        class Scale(FastHttpUser):
            host = url
            wait_time = constant(wait)

            @task
            async def index(self) -> None:
                await self.client.get("/")

        Scale.__name__ = Scale.__qualname__ = f"Scale{i}"
        classes.append(Scale)
    return classes


def warned(runs: list[dict[str, Any]]) -> str:
    """Whether horde's loop-lag warning fired during the ramp / once ramped, e.g. ``ramp, not after``."""
    ramp = "ramp" if any(r["lag_warning_ramp"] for r in runs) else "no ramp"
    return f"{ramp}, {'after' if any(r['lag_warning'] for r in runs) else 'not after'}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_size(
    urls: list[str], users: int, rate: float, wait: float, steady: float, per_request: bool
) -> dict[str, Any]:
    from horde.env import Environment

    need = fds_needed(users, per_request)
    soft = raise_nofile(hard_nofile() if per_request else need)  # per request: room for bursts in flight
    if soft < need:
        return {"skipped": f"needs {need} file descriptors, the limit is {soft}"}
    env = Environment(user_classes=user_classes(urls, wait))
    runner = env.create_local_runner()
    lags: list[tuple[float, float]] = []  # (when, lag)

    async def probe() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_PROBE)
            now = time.perf_counter()
            lags.append((now, now - before - LAG_PROBE))

    gc_pauses: list[tuple[float, int, float]] = []  # (when, generation, seconds) of each cyclic collection
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((gc_started[0], info["generation"], time.perf_counter() - gc_started[0]))

    gc.callbacks.append(on_gc)
    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.2)
    t0 = time.perf_counter()
    c0 = time.process_time()
    runner.start(users, rate)
    while runner.user_count < users or env.stats.total.num_requests + env.stats.total.num_failures < users:
        await asyncio.sleep(0.02)
    ramped = time.perf_counter()
    ramp_cpu = time.process_time() - c0
    monitor = runner.monitor
    monitor.sample_now()  # closes the monitor's interval at the ramp's end
    warned_in_ramp = monitor.lag_warning_emitted
    monitor.reset_warnings()  # from here on a warning means lag once ramped (the criterion)
    await asyncio.sleep(steady)
    rss = rss_bytes()
    total = env.stats.total
    requests, failures = total.num_requests, total.num_failures
    warned = monitor.lag_warning_emitted
    # ramp down to half (a shape's down step): the cost per stopped user must not grow with those left
    down_at, d0 = time.perf_counter(), time.process_time()
    await runner.start(users // 2, rate)
    down_cpu = time.process_time() - d0
    q0 = time.perf_counter()
    await runner.quit()
    quit_s = time.perf_counter() - q0
    prober.cancel()
    gc.callbacks.remove(on_gc)
    full = [d for when, g, d in gc_pauses if g == 2 and when < down_at]  # ramp and steady state only
    ramp_lag = [lag for when, lag in lags if t0 <= when <= ramped]
    steady_lag = [lag for when, lag in lags if ramped + 0.5 < when < down_at]  # after the last spawns settle
    return {
        "users": users,
        "ramp_s": ramped - t0,
        "ramp_cpu_s": ramp_cpu,
        "ramp_lag_p50": percentile(ramp_lag, 0.5),
        "ramp_lag_p99": percentile(ramp_lag, 0.99),
        "ramp_lag_max": max(ramp_lag, default=0.0),
        "steady_lag_p99": percentile(steady_lag, 0.99),
        "steady_lag_max": max(steady_lag, default=0.0),
        "lag_warning_ramp": warned_in_ramp,
        "lag_warning": warned,
        "gc_full": len(full),
        "gc_full_max": max(full, default=0.0),
        "gc_total_s": sum(d for when, _, d in gc_pauses if when < down_at),
        "down_cpu_s": down_cpu,
        "rss": rss,
        "quit_s": quit_s,
        "stop_timeout": env.stop_timeout,
        "requests": requests,
        "failures": failures,
        "errors": sorted(((e.occurrences, str(e.error)) for e in env.stats.errors.values()), reverse=True)[
            :3
        ],
    }


def child_main(args: argparse.Namespace) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    urls = args.urls.split(",")
    coro = run_size(urls, args.child, args.rate, args.wait, args.steady, args.connections == "per-request")
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    print(json.dumps(result))


# --- the parent: target, sizes, report --------------------------------------------------------------


def start_nginx(
    prefix: str, addresses: list[str], port: int, cpu: int | None, nofile: int, keepalive: bool = True
) -> subprocess.Popen[bytes]:
    sys.path.insert(0, str(HERE))
    from _targets import pinned, wait_listening

    os.makedirs(f"{prefix}/tmp", exist_ok=True)
    listen = "".join(
        f"        listen {a}:{port} backlog=65535;\n" for a in addresses
    )  # the kernel caps it at somaxconn
    Path(prefix, "nginx.conf").write_text(
        NGINX_CONF.format(
            prefix=prefix, listen=listen, nofile=nofile, keepalive="3600s" if keepalive else "0"
        )
    )
    nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else "nginx"
    proc = subprocess.Popen(
        [nginx, "-p", prefix, "-c", f"{prefix}/nginx.conf"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(cpu),
    )
    wait_listening(port)
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", default="10000,50000,100000", help="comma-separated sizes")
    parser.add_argument("--rate", type=float, default=10_000.0, help="spawn rate, users/s (default 10000)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds between a user's requests")
    parser.add_argument("--steady", type=float, default=3.0, help="seconds measured after the ramp")
    parser.add_argument("--rounds", type=int, default=1, help="runs per size; medians reported")
    parser.add_argument(
        "--connections",
        choices=("keep-alive", "per-request"),
        default="keep-alive",
        help="keep-alive: one idle connection held per user (default); per-request: Connection: close,"
        " for when the descriptor limit is below the user count (see the module docstring)",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args)
        return 0

    sys.path.insert(0, str(HERE))
    from _targets import free_port, pinned
    from throughput import pick_cpus

    sizes = [int(s) for s in args.users.split(",")]
    gen_cpu, target_cpu = pick_cpus()
    hard = hard_nofile()
    addresses = addresses_for(max(sizes))
    port = free_port()
    per_request = args.connections == "per-request"
    nofile = hard if per_request else min(hard, max(fds_needed(n, per_request) for n in sizes))
    print(
        f"FastHttpUser, spawn rate {args.rate:,.0f}/s, a request every {args.wait:g} s per user,"
        f" connections {args.connections}; generator on CPU {gen_cpu}, nginx on CPU {target_cpu};"
        f" file-descriptor hard limit {hard:,}"
    )
    with tempfile.TemporaryDirectory(prefix="horde-scale-") as prefix:
        nginx = start_nginx(prefix, addresses, port, target_cpu, nofile, keepalive=not per_request)
        try:
            results: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
            crashed = 0
            for rnd in range(args.rounds):
                for n in sizes:
                    if fds_needed(n, per_request) > hard:
                        print(
                            f"  {n:>7,} users: skipped, needs {fds_needed(n, per_request):,} descriptors"
                            f" (hard limit {hard:,}; try --connections per-request)"
                        )
                        continue
                    urls = ",".join(f"http://{a}:{port}" for a in addresses_for(n))
                    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--urls", urls]
                    cmd += ["--rate", str(args.rate), "--wait", str(args.wait), "--steady", str(args.steady)]
                    cmd += ["--connections", args.connections]
                    proc = subprocess.run(
                        cmd, capture_output=True, text=True, timeout=600, preexec_fn=pinned(gen_cpu)
                    )
                    lines = proc.stdout.strip().splitlines()
                    if proc.returncode != 0 or not lines:
                        print(f"  {n:>7,} users: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
                        crashed += 1
                        continue
                    r = json.loads(lines[-1])
                    if "skipped" in r:
                        print(f"  {n:>7,} users: skipped, {r['skipped']}")
                        continue
                    results[n].append(r)
                    print(
                        f"  round {rnd + 1}: {n:>7,} users ramped in {r['ramp_s']:.2f} s ({r['ramp_cpu_s']:.2f} s CPU), lag p99 ramp"
                        f" {r['ramp_lag_p99'] * 1000:.1f} ms / steady {r['steady_lag_p99'] * 1000:.1f} ms,"
                        f" RSS {r['rss'] / 2**20:.0f} MiB, down to half {r['down_cpu_s']:.2f} s CPU, quit {r['quit_s']:.2f} s",
                        flush=True,
                    )
                    print(
                        f"      cyclic GC during the ramp and the steady state: {r['gc_full']} full collections, longest"
                        f" {r['gc_full_max'] * 1000:.0f} ms; {r['gc_total_s']:.2f} s in all collections"
                    )
                    for count, error in r.get("errors", []):
                        print(f"      {count:,} failures: {error}")
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    print()
    print(
        f"{'users':>8} {'ramp s':>7} {'µs/user':>8} {'CPU µs/user':>11} {'lag p50':>8} {'lag p99':>8} {'lag max':>8}"
        f" {'steady p99':>11} {'warned':>13} {'RSS MiB':>8} {'KiB/user':>9} {'down µs/user':>12} {'quit s':>7} {'failures':>9}"
    )
    med = statistics.median
    for n in sizes:
        runs = results[n]
        if not runs:
            continue
        ramp = med(r["ramp_s"] for r in runs)
        rss = med(r["rss"] for r in runs)
        print(
            f"{n:>8,} {ramp:>7.2f} {ramp / n * 1e6:>8.1f} {med(r['ramp_cpu_s'] for r in runs) / n * 1e6:>11.1f} {med(r['ramp_lag_p50'] for r in runs) * 1000:>6.1f}ms"
            f" {med(r['ramp_lag_p99'] for r in runs) * 1000:>6.1f}ms {med(r['ramp_lag_max'] for r in runs) * 1000:>6.1f}ms"
            f" {med(r['steady_lag_p99'] for r in runs) * 1000:>9.1f}ms {warned(runs):>13}"
            f" {rss / 2**20:>8.0f} {rss / n / 1024:>9.2f}"
            f" {med(r['down_cpu_s'] for r in runs) / (n - n // 2) * 1e6:>12.1f} {med(r['quit_s'] for r in runs):>7.2f}"
            f" {sum(r['failures'] for r in runs):>9}"
        )
    # a size that crashed, or a run that measured no size at all (every one skipped), is not a result
    return 1 if crashed or not any(results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

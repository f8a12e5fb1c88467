"""What the web UI costs: load-generator throughput headless vs with the UI open, and /stats/requests latency.

    python benchmarks/web_ui.py                       # both parts: 3 interleaved rounds of 8 s, then latency
    python benchmarks/web_ui.py --part throughput --seconds 10 --rounds 5
    python benchmarks/web_ui.py --part latency --entries 1000 --workers 100 --requests 300

**Throughput.** Each run is its own process (pinned to CPU 1; the target, nginx when installed else the
built-in uvloop one, on CPU 0): a real ``Environment`` + ``LocalRunner`` + ``TestRun``, 50 ``FastHttpUser``
users with no wait time. ``headless`` runs just that; ``ui`` also serves the web UI from the same process
and keeps one push-channel client (``curl -N .../api/events``, on CPU 0 like a browser elsewhere would be)
streaming the whole time, which makes the server build and send the status, the stats table and the new
chart points every second. Runs are interleaved (headless, ui, headless, ui, …) and the medians compared.

**Latency.** One process runs a real ``MasterRunner`` + ``TestRun`` + web server; this process connects
``--workers`` simulated workers to it (``benchmarks/_sim_workers.py``: the real protocol, heartbeats and
20-entry stats reports every 3 s), the master starts a test on them, fills its stats with ``--entries``
distinct entries, and this process then times ``GET /stats/requests`` sequentially. The 1-s response cache
is switched off in that process, so every request computes the body (500 rows + Aggregated + 100 workers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

USERS = 50
WARMUP = 1.0


def pin_self(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {cpu})


# ---- throughput child ---------------------------------------------------------------------------------
async def throughput_child(mode: str, target: str, seconds: float) -> dict[str, Any]:
    import logging

    import horde
    from horde.env import Environment
    from horde.event import Events
    from horde.session import StartRequest, TestRun
    from horde.web.app import WebSettings
    from horde.web.server import WebServer

    logging.basicConfig(level=logging.WARNING)

    class Fast(horde.FastHttpUser):
        host = target

        @horde.task
        async def hit(self) -> None:
            await self.client.get("/")

    env = Environment(user_classes=[Fast], events=Events())
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    web = None
    consumer = None
    if mode in ("ui", "server"):
        web = WebServer(run, WebSettings(port=0))
        url = await web.start()
    if mode == "ui":
        consumer = subprocess.Popen(  # noqa: ASYNC220 (before the measured window)
            ["curl", "-sN", "-o", "/dev/null", url + "api/events"],
            preexec_fn=lambda: pin_self(0),
        )
    run.start(StartRequest(user_count=USERS, spawn_rate=10_000))
    while run.status().user_count < USERS:
        await asyncio.sleep(0.05)
    await asyncio.sleep(WARMUP)
    if consumer is not None:
        assert web is not None and web.ui.subscribers, "the push-channel client did not connect"
    import psutil

    me = psutil.Process()
    c0 = sum(me.cpu_times()[:2])
    before, t0 = env.stats.total.num_requests, time.perf_counter()
    await asyncio.sleep(seconds)
    after, t1 = env.stats.total.num_requests, time.perf_counter()
    cpu = sum(me.cpu_times()[:2]) - c0
    subscribers = len(web.ui.subscribers) if web is not None else 0
    if consumer is not None:
        consumer.terminate()
        consumer.wait()
    if web is not None:
        await web.stop()
    await run.close()
    n = after - before
    return {
        "mode": mode,
        "rps": n / (t1 - t0),
        "per_cpu": n / cpu if cpu else 0.0,
        "subscribers": subscribers,
    }


async def paired_child(target: str, window: float, pairs: int) -> dict[str, Any]:
    """One generator process with the web UI served; adjacent windows without and with a push client.

    Adjacent windows see the same machine noise, so the paired ratio isolates what streaming costs.
    """
    import logging

    import horde
    from horde.env import Environment
    from horde.event import Events
    from horde.session import StartRequest, TestRun
    from horde.web.app import WebSettings
    from horde.web.server import WebServer

    logging.basicConfig(level=logging.WARNING)

    class Fast(horde.FastHttpUser):
        host = target

        @horde.task
        async def hit(self) -> None:
            await self.client.get("/")

    env = Environment(user_classes=[Fast], events=Events())
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    web = WebServer(run, WebSettings(port=0))
    url = await web.start()
    run.start(StartRequest(user_count=USERS, spawn_rate=10_000))
    while run.status().user_count < USERS:
        await asyncio.sleep(0.05)
    await asyncio.sleep(WARMUP)
    spent = [0.0, 0]  # seconds inside the UI's per-second push work, pushes
    original = web.ui.tick_payload

    def timed_tick() -> str:
        t = time.perf_counter()
        try:
            return original()
        finally:
            spent[0] += time.perf_counter() - t
            spent[1] += 1

    web.ui.tick_payload = timed_tick  # type: ignore[method-assign]

    async def measure() -> float:
        before, t0 = env.stats.total.num_requests, time.perf_counter()
        await asyncio.sleep(window)
        return (env.stats.total.num_requests - before) / (time.perf_counter() - t0)

    ratios, off_rates, on_rates = [], [], []
    for i in range(pairs):
        consumer = None
        rates = {}
        for streaming in (False, True) if i % 2 == 0 else (True, False):
            if streaming:
                consumer = subprocess.Popen(  # noqa: ASYNC220 (before the measured window)
                    ["curl", "-sN", "-o", "/dev/null", url + "api/events"], preexec_fn=lambda: pin_self(0)
                )
                while not web.ui.subscribers:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.3)  # curl's start-up is not part of the window
            rates[streaming] = await measure()
            if consumer is not None:
                consumer.terminate()
                consumer.wait()
                consumer = None
                while web.ui.subscribers:
                    await asyncio.sleep(0.01)
        off_rates.append(rates[False])
        on_rates.append(rates[True])
        ratios.append(rates[True] / rates[False])
    await web.stop()
    await run.close()
    return {"ratios": ratios, "off": off_rates, "on": on_rates, "push_ms": spent[0] / max(1, spent[1]) * 1000}


def run_paired(window: float, pairs: int) -> None:
    from _targets import start_target

    with start_target("auto", {0}) as target:
        out = subprocess.run(
            [sys.executable, __file__, "_paired", target.url, str(window), str(pairs)],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=lambda: pin_self(1),
        )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    r = statistics.median(res["ratios"])
    print(
        f"paired windows ({pairs} x 2 x {window:g} s, one process, UI served in both): without a push client "
        f"{statistics.median(res['off']):,.0f} req/s, streaming {statistics.median(res['on']):,.0f} req/s; "
        f"median paired ratio {r:.3f} (cost {(1 - r) * 100:+.1f} %); the push work itself takes "
        f"{res['push_ms']:.2f} ms per second ({res['push_ms'] / 10:.2f} % of the generator's core)"
    )


def run_throughput(seconds: float, rounds: int) -> None:
    from _targets import start_target

    results: dict[str, list[float]] = {"headless": [], "ui": []}
    per_cpu: dict[str, list[float]] = {"headless": [], "ui": []}
    with start_target("auto", {0}) as target:
        print(f"target: {target.desc} at {target.url}; {USERS} FastHttpUser users, {seconds:g} s per run")
        for i in range(rounds):
            for mode in ("headless", "ui") if i % 2 == 0 else ("ui", "headless"):
                out = subprocess.run(
                    [sys.executable, __file__, "_throughput", mode, target.url, str(seconds)],
                    capture_output=True,
                    text=True,
                    check=True,
                    preexec_fn=lambda: pin_self(1),
                )
                res = json.loads(out.stdout.strip().splitlines()[-1])
                results[mode].append(res["rps"])
                per_cpu[mode].append(res["per_cpu"])
                extra = f" ({res['subscribers']} push client)" if mode == "ui" else ""
                print(
                    f"  round {i + 1} {mode:>8}: {res['rps']:>9,.0f} req/s  {res['per_cpu']:>9,.0f} req/CPU-s{extra}",
                    flush=True,
                )
    for label, table in (("req/s", results), ("req/CPU-s", per_cpu)):
        h, u = statistics.median(table["headless"]), statistics.median(table["ui"])
        print(
            f"median {label}: headless {h:,.0f}, UI open and streaming {u:,.0f}: UI cost {(1 - u / h) * 100:+.1f} %"
        )


# ---- latency child (the master) -------------------------------------------------------------------------
async def master_child(master_port: int, web_port: int, workers: int, entries: int) -> None:
    import logging

    import horde
    from horde.env import Environment
    from horde.event import Events
    from horde.session import StartRequest, TestRun
    from horde.web import app as web_app
    from horde.web.app import WebSettings
    from horde.web.server import WebServer

    logging.basicConfig(level=logging.WARNING)
    web_app.STATS_CACHE_SECONDS = 0.0  # measure the computation, not the cache

    class Sim(horde.User):
        @horde.task
        async def t(self) -> None:
            await asyncio.sleep(1)

    env = Environment(user_classes=[Sim], events=Events())
    env.create_master_runner("127.0.0.1", master_port, heartbeat_interval=1.0)
    run = TestRun(env)
    await run.open()
    web = WebServer(run, WebSettings(port=web_port))
    await web.start()
    if not await run.wait_for_workers(workers, 120):
        print("NOT ENOUGH WORKERS", flush=True)
        return
    run.start(StartRequest(user_count=workers * 10, spawn_rate=100_000))
    while run.status().user_count < workers * 10:
        await asyncio.sleep(0.1)
    for i in range(entries):
        for _ in range(20):
            env.stats.record(
                "GET", f"/api/items/{i:05d}", 5.0 + (i % 97), 512, "boom" if i % 50 == 0 else None
            )
    print("READY", flush=True)
    await asyncio.sleep(3600)


async def run_latency(entries: int, workers: int, requests: int) -> None:
    import aiohttp

    from _sim_workers import SimFleet
    from _targets import free_port

    master_port, web_port = free_port(), free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 (set-up, not measured)
        [sys.executable, __file__, "_master", str(master_port), str(web_port), str(workers), str(entries)],
        stdout=subprocess.PIPE,
        text=True,
    )
    fleet = SimFleet("127.0.0.1", master_port, workers, 1.0, 3.0)
    try:
        await asyncio.sleep(1.0)
        fleet.start()
        assert proc.stdout is not None
        line = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline), 180
        )
        if line.strip() != "READY":
            raise RuntimeError(f"master child said {line!r}")
        await asyncio.sleep(3.5)  # every simulated worker has reported stats
        base = f"http://127.0.0.1:{web_port}"
        times: dict[str, list[float]] = {"/stats/requests": [], "/worker-count": []}
        body: dict[str, Any] = {}
        async with aiohttp.ClientSession() as session:
            for _ in range(requests):  # interleaved: the trivial route shows what the master's loop costs
                for path, samples in times.items():
                    t0 = time.perf_counter()
                    async with session.get(base + path) as r:
                        data = await r.json()
                    samples.append((time.perf_counter() - t0) * 1000)
                    if path == "/stats/requests":
                        body = data
                await asyncio.sleep(0.01)

        def q(samples: list[float], p: float) -> float:
            ordered = sorted(samples)
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        size = len(json.dumps(body))
        print(
            f"master with {body.get('worker_count')} simulated workers, {entries} entries "
            f"({len(body['stats'])} rows sent, {size / 1024:.0f} KiB), {requests} sequential requests each, cache off:"
        )
        for path, samples in times.items():
            print(
                f"  {path:<16} p50 {q(samples, 0.5):6.1f} ms  p95 {q(samples, 0.95):6.1f} ms  "
                f"p99 {q(samples, 0.99):6.1f} ms  max {max(samples):6.1f} ms"
            )
    finally:
        proc.terminate()
        proc.wait()
        await fleet.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_throughput":
        _, _, mode, target, seconds = sys.argv
        print(json.dumps(asyncio.run(throughput_child(mode, target, float(seconds)))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_paired":
        _, _, target, window, pairs = sys.argv
        print(json.dumps(asyncio.run(paired_child(target, float(window), int(pairs)))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_master":
        _, _, mp, wp, n, e = sys.argv
        asyncio.run(master_child(int(mp), int(wp), int(n), int(e)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("both", "throughput", "paired", "latency"), default="both")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    if args.part in ("both", "throughput"):
        run_throughput(args.seconds, args.rounds)
    if args.part in ("both", "paired"):
        run_paired(args.window, args.pairs)
    if args.part in ("both", "latency"):
        asyncio.run(run_latency(args.entries, args.workers, args.requests))


if __name__ == "__main__":
    main()

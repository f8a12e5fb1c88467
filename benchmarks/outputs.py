"""What the outputs cost: the HTML report of a long run, StatsHistory's memory, and throughput with outputs on.

    .venv/bin/python benchmarks/outputs.py                 # all three parts (about a minute)
    .venv/bin/python benchmarks/outputs.py report          # HTML report of a simulated 1-hour run
    .venv/bin/python benchmarks/outputs.py history         # StatsHistory of a simulated 24-hour run
    .venv/bin/python benchmarks/outputs.py throughput --seconds 8 --rounds 3

``report``: a run of 3,600 one-second ticks on a fake clock (100 entries, and 50 for the size the issue
asks about), recorded into real ``RequestStats`` and a real ``StatsHistory`` (the Aggregated point every
tick, entries every 10 s, as the session feeds it), then ``render_html`` + the atomic write. Prints the
median time of three renders, the tracemalloc peak of one, and the file size split into plotly.js and
horde's own part.

``history``: 86,400 ticks with 100 entries appended to a ``StatsHistory``; prints its array bytes
(``nbytes()``) and what tracemalloc sees held.

``costs``: the CPU time of each output's per-tick work, and of one Prometheus scrape, at 100 entries
(``time.process_time``: steady on a shared machine, unlike a throughput ratio).

``throughput``: a local FastHttpUser run (50 users, no wait, 100 request names) against the benchmark
target, through the real ``TestRun`` session, with outputs off and on — ``HtmlOutput``, ``PrometheusOutput``
scraped every 5 s by a thread (Prometheus scrapes every 15 to 60 s by default), and the CSV
output with full history when ``horde.reports.csv`` exists — in interleaved rounds, each in its own
process pinned to one CPU with the target on the other. The outputs' cost is the ratio of the medians,
of requests per second and of requests per CPU-second of the generator process (the Prometheus thread
included); on a machine shared with other work the second is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

START = 1_796_104_480.0
#: Seconds between two scrapes in the throughput run (Prometheus' default is 15 s, 60 s in its example config).
SCRAPE_INTERVAL = 5.0


# --- the HTML report of a long run -----------------------------------------------------------------


def simulate_run(entries: int, seconds: int, seed: int = 1) -> Any:
    """A RunResult of ``seconds`` one-second ticks over ``entries`` request names (fake clock)."""
    from horde.clock import FakeClock
    from horde.session import RunResult
    from horde.stats import RequestStats
    from horde.stats.history import StatsHistory
    from horde.stats.snapshot import StatsSnapshot, entry_snapshot, take_snapshot

    rng = random.Random(seed)
    clock = FakeClock(START)
    stats = RequestStats(clock)
    history = StatsHistory(clock)
    names = [f"/api/resource-{i:03d}/[id]" for i in range(entries)]
    scale = [rng.uniform(5, 200) for _ in names]
    qs = None
    for sec in range(seconds):
        clock.advance(1.0)
        # every entry gets 10 requests every 10 s (the report's size depends on the entries and the
        # history, not on the request count; per-second recording into 100 entries costs the stats'
        # per-second bookkeeping 100 times a second, which is not what this measures), the first one
        # some every second so the rate and percentile series move like a real run's
        # the history keeps entries at the first tick of each 10-s slot of the epoch
        full = int(clock.time()) % 10 == 0 or qs is None
        batch = names if full else names[:1]
        for name, ms in zip(batch, scale, strict=False):
            for _ in range(10 if full else 5):
                error = "HTTPError('503 Service Unavailable')" if rng.random() < 0.01 else None
                stats.record("GET", name, rng.lognormvariate(0, 0.5) * ms, 1024, error)
        users = min(100, sec + 1)
        if full:  # the other ticks only need the total
            snap = take_snapshot(stats, user_count=users, user_classes_count={"Api": users})
            qs = snap.percentiles
        else:
            assert qs is not None
            total = entry_snapshot(stats.total, qs)
            snap = StatsSnapshot(clock.time(), users, {"Api": users}, (), total, ())
        history.append(snap)
    final = take_snapshot(stats, user_count=100, user_classes_count={"Api": 100})
    return RunResult(
        start_time=START,
        end_time=clock.time(),
        user_count=100,
        user_classes_count={"Api": 100},
        stats=stats,
        snapshot=final,
        history=history,
        exceptions=(),
        workers=(),
        warnings=(),
        stop_reason="the run time limit was reached",
        exit_code=1,
        host="http://127.0.0.1:8080",
        locustfile=__file__,
        spawn_rate=10.0,
        run_time=float(seconds),
    )


def bench_report(entries_list: tuple[int, ...] = (100, 50), seconds: int = 3600) -> dict[str, Any]:
    """``--html``'s path (render_parts + write_atomic, as HtmlOutput.stop) and the web route's (render_html)."""
    from horde.reports.html import Manifest, render_html, render_parts, report_size_breakdown, write_atomic

    out: dict[str, Any] = {}
    for entries in entries_list:
        t = time.perf_counter()
        result = simulate_run(entries, seconds)
        simulate_s = time.perf_counter() - t
        manifest = Manifest.from_result(result)
        render_html(result, manifest=manifest)  # warm: plotly.js is read once per process
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.html"
            times = []
            for _ in range(3):
                t = time.perf_counter()
                write_atomic(path, render_parts(result, manifest=manifest))
                times.append(time.perf_counter() - t)
            tracemalloc.start()
            write_atomic(path, render_parts(result, manifest=manifest))
            file_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            text = render_html(result, manifest=manifest)
            str_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            size = path.stat().st_size
        sizes = report_size_breakdown(text)
        row = {
            "simulate_s": round(simulate_s, 1),
            "write_s": round(statistics.median(times), 3),
            "write_peak_alloc_MB": round(file_peak / 1e6, 1),
            "render_html_peak_alloc_MB": round(str_peak / 1e6, 1),
            "file_MB": round(size / 1e6, 3),
            "plotly_MB": round(sizes["plotly"] / 1e6, 3),
            "report_KB": round(sizes["report"] / 1e3, 1),
            "history_points": len(result.history),
        }
        out[f"{entries} entries"] = row
        print(f"report, 1-hour run, {entries} entries: {json.dumps(row)}", flush=True)
    return out


# --- StatsHistory over 24 hours --------------------------------------------------------------------


def bench_history(entries: int = 100, seconds: int = 86_400) -> dict[str, Any]:
    from horde.clock import FakeClock
    from horde.stats import RequestStats
    from horde.stats.history import StatsHistory
    from horde.stats.snapshot import StatsSnapshot, take_snapshot

    clock = FakeClock(START)
    stats = RequestStats(clock)
    for i in range(entries):
        stats.record("GET", f"/api/resource-{i:03d}", 10.0 + i, 100)
    clock.advance(1)
    base = take_snapshot(stats, user_count=100)  # the same values every tick: memory is in the arrays
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    history = StatsHistory(clock)
    for sec in range(seconds):
        history.append(StatsSnapshot(START + sec, 100, {}, base.entries, base.total, ()))
    append_s = time.perf_counter() - t
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    out = {
        "ticks": seconds,
        "entries": entries,
        "nbytes_MB": round(history.nbytes() / 1e6, 1),
        "tracemalloc_held_MB": round(held / 1e6, 1),
        "total_points": len(history),
        "append_us_per_tick": round(append_s / seconds * 1e6, 1),
    }
    print(f"history, 24-hour run: {json.dumps(out)}", flush=True)
    return out


# --- per-call costs at 100 entries ------------------------------------------------------------------


def bench_costs(entries: int = 100) -> dict[str, Any]:
    """CPU time of each output's per-tick work and of one Prometheus scrape, on stats with ``entries``
    entries and realistic histograms (a minute of 50 req/s per entry): steadier than a throughput ratio
    on a shared machine. At one tick per second, ``x ms`` per tick is ``x / 10`` % of a core."""
    from types import SimpleNamespace

    from horde.clock import FakeClock
    from horde.reports.html import HtmlOutput
    from horde.reports.prometheus import metrics_text
    from horde.runners.status import WorkerStatus
    from horde.stats import RequestStats
    from horde.stats.snapshot import take_snapshot

    clock = FakeClock(START)
    stats = RequestStats(clock)
    rng = random.Random(1)
    names = [f"/api/resource-{i:03d}" for i in range(entries)]
    for _ in range(60):
        for name in names:
            for _ in range(50):
                stats.record("GET", name, rng.lognormvariate(0.5, 0.6) * 20, 100)
        clock.advance(1)
    snapshot = take_snapshot(stats, user_count=50)
    status = SimpleNamespace(target_user_count=50, workers=(WorkerStatus("local", cpu_percent=50.0),))
    run = SimpleNamespace(env=SimpleNamespace(stats=stats), options=None, history=None, status=lambda: status)

    def ms(fn: Any, n: int = 20) -> float:
        fn()
        t = time.process_time()
        for _ in range(n):
            fn()
        return round((time.process_time() - t) / n * 1000, 3)

    html = HtmlOutput(os.path.join(tempfile.gettempdir(), "unused_{u}.html"))
    html.start(run)  # type: ignore[arg-type]
    out: dict[str, Any] = {
        "entries": entries,
        "buckets_per_entry": round(sum(len(e.histogram.counts) for e in stats.entries.values()) / entries),
        "session_take_snapshot_ms": ms(lambda: take_snapshot(stats, user_count=50)),
        "html_on_tick_ms": ms(lambda: html.on_tick(snapshot), 1000),  # plus one run.status() (the session's)
        "prometheus_scrape_ms": ms(lambda: metrics_text(stats)),
        "prometheus_scrape_bytes": len(metrics_text(stats)),
    }
    try:
        from horde.reports.csv import CsvOutput

        with tempfile.TemporaryDirectory() as tmp:
            csv = CsvOutput(os.path.join(tmp, "out"), full_history=True)
            csv.start(run)  # type: ignore[arg-type]
            ticks = iter(range(1, 10_000))  # each tick one second later: the CSV writes once per second

            def csv_tick() -> None:
                csv.on_tick(dataclasses.replace(snapshot, time=snapshot.time + next(ticks)))

            out["csv_full_history_on_tick_ms"] = ms(csv_tick)
            csv.stop(SimpleNamespace(snapshot=snapshot, stats=stats, exceptions=()))  # type: ignore[arg-type]
    except Exception as exc:  # the CSV output's API may differ: report, do not fail
        out["csv_full_history_on_tick_ms"] = f"not measured: {exc!r}"
    print(f"costs: {json.dumps(out)}", flush=True)
    return out


# --- throughput with the outputs on and off ---------------------------------------------------------


def _user_class(url: str, names: int) -> type:
    from horde.clients.fast import FastHttpUser
    from horde.user.task import task

    paths = [f"/r{i:03d}" for i in range(names)]

    class Bench(FastHttpUser):
        host = url

        @task
        async def get(self) -> None:
            await self.client.get("/", name=paths[random.randrange(len(paths))])

    return Bench


def _outputs(tmp: str) -> tuple[list[Any], Any]:
    from horde.reports.html import HtmlOutput
    from horde.reports.prometheus import PrometheusOutput

    prom = PrometheusOutput(0)
    outputs: list[Any] = [HtmlOutput(os.path.join(tmp, "report_{u}.html")), prom]
    try:
        from horde.reports import csv as csv_reports  # the CSV output, once it exists

        csv_output = getattr(csv_reports, "CsvOutput", None)
        if csv_output is not None:
            outputs.append(csv_output(os.path.join(tmp, "out"), full_history=True))
    except Exception:  # not there yet, or another signature: measure without it
        pass
    return outputs, prom


async def _run_session(url: str, seconds: float, users: int, names: int, on: bool) -> dict[str, Any]:
    from horde.env import Environment
    from horde.session import StartRequest, TestRun

    env = Environment(user_classes=[_user_class(url, names)], host=url)
    env.create_local_runner()
    with tempfile.TemporaryDirectory() as tmp:
        outputs, prom = _outputs(tmp) if on else ([], None)
        run = TestRun(env, outputs=outputs)
        await run.open()
        run.start(StartRequest(user_count=users, spawn_rate=1000))
        while run.runner.user_count < users:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
        stop = threading.Event()
        scrapes = [0]

        def scrape() -> None:
            host, port = prom.address
            while not stop.wait(SCRAPE_INTERVAL):
                with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
                    resp.read()
                scrapes[0] += 1

        scraper = threading.Thread(target=scrape, daemon=True) if prom is not None else None
        if scraper is not None:
            scraper.start()
        total = env.stats.total
        n0, c0, t0 = total.num_requests, os.times(), time.perf_counter()
        await asyncio.sleep(seconds)
        n1, c1, t1 = total.num_requests, os.times(), time.perf_counter()
        stop.set()
        if scraper is not None:
            scraper.join(5)
        await run.stop()
        await run.close()
        if prom is not None:
            prom.close()
        written = sorted(os.listdir(tmp))
    return {
        "rps": (n1 - n0) / (t1 - t0),
        "cpu": (c1.user - c0.user + c1.system - c0.system) / (t1 - t0),
        "outputs": [type(o).__name__ for o in outputs],
        "files": written,
        "scrapes": scrapes[0],
        "entries": len(env.stats.entries),
    }


def child(argv: list[str]) -> None:
    url, seconds, users, names, on = argv[0], float(argv[1]), int(argv[2]), int(argv[3]), argv[4] == "on"
    logging.basicConfig(level=logging.ERROR)
    import uvloop

    print(json.dumps(uvloop.run(_run_session(url, seconds, users, names, on))))


def bench_throughput(seconds: float, rounds: int, users: int, names: int) -> dict[str, Any]:
    from _targets import pinned, start_target

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    gen_cpu, target_cpu = (cpus[0], cpus[-1]) if len(cpus) >= 2 else (None, None)
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    with start_target("auto", None if target_cpu is None else {target_cpu}) as target:
        print(f"throughput: target {target.desc}; {users} users, {names} names, {seconds:g} s x {rounds}")
        for r in range(rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                cmd = [
                    sys.executable,
                    __file__,
                    "child",
                    target.url,
                    str(seconds),
                    str(users),
                    str(names),
                    mode,
                ]
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=seconds + 60, preexec_fn=pinned(gen_cpu)
                )
                if proc.returncode != 0:
                    raise RuntimeError(
                        proc.stderr.strip().splitlines()[-1] if proc.stderr else "child failed"
                    )
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                runs[mode].append(result)
                print(
                    f"  round {r + 1} {mode:>3}: {result['rps']:,.0f} req/s, CPU {result['cpu']:.2f},"
                    f" {result['rps'] / result['cpu']:,.0f} req per CPU-second",
                    flush=True,
                )
    off = statistics.median(x["rps"] for x in runs["off"])
    on = statistics.median(x["rps"] for x in runs["on"])
    off_cpu = statistics.median(x["rps"] / x["cpu"] for x in runs["off"])
    on_cpu = statistics.median(x["rps"] / x["cpu"] for x in runs["on"])
    out = {
        "off_rps": round(off),
        "on_rps": round(on),
        "cost_percent": round((1 - on / off) * 100, 2),
        "off_req_per_cpu_s": round(off_cpu),
        "on_req_per_cpu_s": round(on_cpu),
        "cost_per_cpu_percent": round((1 - on_cpu / off_cpu) * 100, 2),
        "outputs_on": runs["on"][0]["outputs"],
        "files": runs["on"][0]["files"],
        "scrapes_per_run": runs["on"][0]["scrapes"],
        "entries": runs["on"][0]["entries"],
    }
    print(f"throughput: {json.dumps(out)}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["child"]:
        child(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "part", nargs="?", choices=["report", "history", "costs", "throughput", "all"], default="all"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--names", type=int, default=100)
    args = parser.parse_args(argv)
    if args.part in ("report", "all"):
        bench_report()
    if args.part in ("history", "all"):
        bench_history()
    if args.part in ("costs", "all"):
        bench_costs()
    if args.part in ("throughput", "all"):
        bench_throughput(args.seconds, args.rounds, args.users, args.names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-request cost of ``RequestStats.record`` and the cost of a worker report's serialise + merge.

The machine this runs on is noisy, so every figure is printed next to a reference measured in the same
run, interleaved with it: a loop of the same length over the same samples doing one ``dict[key] += 1``.
The ratio is the number to compare between runs; the nanoseconds are indicative.

    .venv/bin/python benchmarks/stats_record.py            # 1,000,000 calls, median of 5 rounds
    .venv/bin/python benchmarks/stats_record.py --calls 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from itertools import cycle, islice

import msgpack

from horde.stats import RequestStats

Sample = tuple[str, str, float | None, int, object]

NAMES = [
    "/",
    "/login",
    "/logout",
    "/api/items",
    "/api/items/[id]",
    "/api/items/[id]/reviews",
    "/api/cart",
    "/api/cart/add",
    "/api/cart/remove",
    "/api/checkout",
    "/api/search?q=[term]",
    "/api/users/[id]",
    "/api/users/[id]/orders",
    "/api/orders/[id]",
    "/static/app.js",
    "/static/app.css",
    "/images/[id].jpg",
    "/health",
    "/api/recommendations",
    "/api/inventory/[sku]",
]


def make_samples(n: int, seed: int = 1) -> list[Sample]:
    """~20 names, mostly GET, lognormal response times around 20 ms with a tail, ~5 % failures."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for _ in range(n):
        name = rng.choice(NAMES)
        method = "POST" if name.startswith(("/login", "/api/cart/", "/api/checkout")) else "GET"
        rt: float | None = round(rng.lognormvariate(3.0, 0.8), 3)  # ms, µs resolution
        length = rng.randint(100, 20_000)
        error: object = None
        r = rng.random()
        if r < 0.03:
            error = "HTTPError('500 Server Error: Internal Server Error for url: http://target" + name + "')"
        elif r < 0.05:
            error = ConnectionRefusedError(111, "Connection refused")
            rt = None if r < 0.045 else rt
        samples.append((method, name, rt, length, error))
    return samples


def time_record(stats: RequestStats, samples: list[Sample], calls: int) -> float:
    record = stats.record
    start = time.perf_counter()
    for method, name, rt, length, error in islice(cycle(samples), calls):
        record(method, name, rt, length, error)
    return time.perf_counter() - start


def time_reference(samples: list[Sample], calls: int) -> float:
    counts = dict.fromkeys(NAMES, 0)
    start = time.perf_counter()
    for _method, name, _rt, _length, _error in islice(cycle(samples), calls):
        counts[name] += 1
    return time.perf_counter() - start


def time_empty(samples: list[Sample], calls: int) -> float:
    start = time.perf_counter()
    for _method, _name, _rt, _length, _error in islice(cycle(samples), calls):
        pass
    return time.perf_counter() - start


def filled_worker(samples: list[Sample]) -> RequestStats:
    worker = RequestStats(use_response_times_cache=False)
    for method, name, rt, length, error in samples:
        worker.record(method, name, rt, length, error)
    return worker


def time_report_cycle(samples: list[Sample], repeats: int) -> tuple[float, float, int, int]:
    """Seconds per serialize(), per merge() of that payload, buckets and payload bytes (msgpack)."""
    worker = filled_worker(samples)
    master = RequestStats()
    payload = worker.serialize()
    start = time.perf_counter()
    for _ in range(repeats):
        payload = worker.serialize()
    t_serialize = (time.perf_counter() - start) / repeats
    wire = msgpack.unpackb(msgpack.packb(payload), strict_map_key=False)
    start = time.perf_counter()
    for _ in range(repeats):
        master.merge(wire)
    t_merge = (time.perf_counter() - start) / repeats
    buckets = sum(len(entry["histogram"]) for entry in payload["stats"])
    return t_serialize, t_merge, buckets, len(msgpack.packb(payload))


def median_of(rounds: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    calls, rounds = args.calls, args.rounds
    samples = make_samples(65_536)

    results: dict[str, list[float]] = {"empty": [], "reference": [], "local": [], "worker": []}
    for _ in range(rounds):  # interleaved, so a slow phase of the machine hits every series alike
        results["empty"].append(time_empty(samples, calls))
        results["reference"].append(time_reference(samples, calls))
        results["local"].append(time_record(RequestStats(), samples, calls))
        results["worker"].append(time_record(RequestStats(use_response_times_cache=False), samples, calls))
    med = {k: statistics.median(v) for k, v in results.items()}
    ns = {k: v / calls * 1e9 for k, v in med.items()}

    print(f"RequestStats.record: {calls:,} calls, 20 names, ~5 % failures, median of {rounds} rounds")
    print(f"  {'loop only (unpack a sample)':<40}{ns['empty']:6.0f} ns/call")
    print(f"  {'reference: dict[key] += 1 loop':<40}{ns['reference']:6.0f} ns/call   1.00x")
    increment = ns["reference"] - ns["empty"]
    for key, label in (
        ("local", "record, local/master (window cache on)"),
        ("worker", "record, worker (no window cache)"),
    ):
        net = ns[key] - ns["empty"]
        print(
            f"  {label:<40}{ns[key]:6.0f} ns/call  {med[key] / med['reference']:5.2f}x"
            f"   (net of the loop: {net:.0f} ns = {net / increment:.1f} dict increments)"
        )

    repeats = 200
    t_ser, t_merge, buckets, size = time_report_cycle(samples[:20_000], repeats)
    ref = median_of(rounds, lambda: time_reference(samples, 100_000)) / 100_000
    print(f"\nWorker report, 20 entries, {buckets} histogram buckets in all, {size:,} bytes as msgpack:")
    print(f"  serialize()  {t_ser * 1e6:8.1f} us   = {t_ser / ref:,.0f} reference increments")
    print(f"  merge()      {t_merge * 1e6:8.1f} us   = {t_merge / ref:,.0f} reference increments")


if __name__ == "__main__":
    main()

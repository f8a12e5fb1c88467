"""Dispatcher benchmark: how long planning takes at Locust-breaking sizes.

    .venv/bin/python benchmarks/dispatch.py              # or: make bench
    .venv/bin/python benchmarks/dispatch.py --repeat 5   # best of 5 runs for (a) and (b)
    .venv/bin/python benchmarks/dispatch.py --before-src /tmp/before/src --rounds 3   # side by side

Scenarios (1,000 workers on 50 hosts, 10 classes with weights 1..10, spawn rate 1,000,000/s):

  (a) the first step of a ramp from 0 to 1,000,000 users (the whole ramp is one step);
  (b) the same for 100,000 users;
  (c) at 1,000,000 users, removing 100 workers one at a time; each removal is timed including the
      step that re-places its users;
  (d) at 1,000,000 users, adding 100 workers one at a time, each timed with its rebalancing step.

Machines differ and CI runners are noisy, so each figure is also printed as a ratio to a reference workload
timed in the same process: a plain Python loop that builds a fresh 1,000 x 10 ``{worker: {class: count}}``
map (what any dispatcher must hand to the runner every step). A ratio of 20 means "as long as building
20 such maps". Goals: (a) <= 0.08 s, (c) <= 10 ms for the slowest of the 100 removals (not only the
median). For Locust 2.x comparison: about 0.84 s for (a) and 0.75 s per removal for (c) on the machine
where those goals were set.

Each removal is timed twice: wall time, and CPU time of this thread (``cpu``). On a shared machine the
slowest wall time is often another process holding the CPU, which the CPU time leaves out; the goal line
judges both and says so. Garbage collections that ran inside a removal are recorded with ``gc.callbacks``
and printed for the slowest removals, so a slow removal shows whether a collection caused it.

``--before-src DIR`` (e.g. ``git archive <commit> src | tar -x -C /tmp/before``, then
``--before-src /tmp/before/src``) runs every scenario for that tree and for this one, each in a fresh
process, alternating for ``--rounds`` rounds, and prints them side by side.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from horde.dispatch import UsersDispatcher

WORKERS = 1_000
CLASSES = 10
RATE = 1_000_000.0
USERS = 1_000_000
CHANGES = 100  # workers removed in (c), added in (d)
SRC = Path(__file__).resolve().parent.parent / "src"


class Node:
    def __init__(self, node_id: str) -> None:
        self.id = node_id


def make_classes() -> list[type]:
    return [type(f"User{i:02d}", (), {"weight": i + 1, "fixed_count": 0}) for i in range(CLASSES)]


def make_nodes(count: int, start: int = 0) -> list[Node]:
    return [Node(f"host{i % 50:02d}_{i:06x}") for i in range(start, start + count)]


def reference() -> float:
    """Seconds to build one fresh 1,000 x 10 users map in plain Python (median of 21)."""
    names = [f"User{i:02d}" for i in range(CLASSES)]
    ids = [f"host{i % 50:02d}_{i:06x}" for i in range(WORKERS)]
    rows = [[i + c for c in range(CLASSES)] for i in range(WORKERS)]
    samples = []
    for _ in range(21):
        t0 = time.perf_counter()
        users = {wid: dict(zip(names, row, strict=True)) for wid, row in zip(ids, rows, strict=True)}
        samples.append(time.perf_counter() - t0)
        assert len(users) == WORKERS
    return statistics.median(samples)


def first_step(users: int) -> float:
    d = UsersDispatcher(make_nodes(WORKERS), make_classes())
    d.new_dispatch(users, RATE)
    t0 = time.perf_counter()
    step = next(d)
    elapsed = time.perf_counter() - t0
    assert step.user_count == users and next(d, None) is None
    return elapsed


def ramped(users: int) -> UsersDispatcher:
    d = UsersDispatcher(make_nodes(WORKERS), make_classes())
    d.new_dispatch(users, RATE)
    list(d)
    return d


class Collections:
    """The garbage collections that run while it is ``open``: (generation, milliseconds) each."""

    def __init__(self) -> None:
        self.open = False
        self.ran: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.open:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.ran.append((info["generation"], (time.perf_counter() - self._start) * 1000))


def removals(users: int, count: int) -> dict[str, Any]:
    """Wall and CPU seconds of each removal (the removal and the step re-placing its users), and the
    garbage collections (generation, ms) that ran inside each."""
    d = ramped(users)
    # A full collection of what start-up and the ramp left (imports, the first map) is due around now in
    # any process; collect it here so that the removals are timed with the collections they cause.
    gc.collect()
    watch = Collections()
    gc.callbacks.append(watch)
    wall, cpu, collections = [], [], []
    try:
        for wid in d.worker_ids[:count]:
            watch.ran = []
            watch.open = True
            t0, c0 = time.perf_counter(), time.thread_time()
            d.remove_worker(wid)
            steps = list(d)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            watch.open = False
            collections.append(watch.ran)
            assert len(steps) == 1 and steps[0].user_count == users and steps[0].moves == 0
    finally:
        gc.callbacks.remove(watch)
    return {"wall": wall, "cpu": cpu, "gc": collections}


def additions(users: int, count: int) -> dict[str, Any]:
    d = ramped(users)
    wall = []
    moved = 0
    for node in make_nodes(count, start=WORKERS):
        t0 = time.perf_counter()
        d.add_worker(node)
        steps = list(d)
        wall.append(time.perf_counter() - t0)
        assert len(steps) == 1 and steps[0].user_count == users
        moved += steps[0].moves
    return {"wall": wall, "moved": moved}


def measure(repeat: int) -> dict[str, Any]:
    """Every scenario once, in this process."""
    return {
        "ref": reference(),
        "a": min(first_step(USERS) for _ in range(repeat)),
        "b": min(first_step(100_000) for _ in range(repeat)),
        "c": removals(USERS, CHANGES),
        "d": additions(USERS, CHANGES),
    }


def in_child(src: Path, repeat: int) -> dict[str, Any]:
    """:func:`measure` in a fresh process importing horde from ``src``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, __file__, "--child", "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child for {src} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def report(label: str, seconds: float, users: int | None, ref: float) -> None:
    rate = f"{users / seconds:>14,.0f} users/s" if users else " " * 22
    print(f"{label:<44} {seconds * 1000:>9.2f} ms {rate}   ratio {seconds / ref:>7.1f}")


def slowest(c: dict[str, Any], key: str, n: int = 3) -> str:
    """The ``n`` slowest removals by ``key``: index, cpu and wall ms, and the collections inside each."""
    order = sorted(range(len(c[key])), key=c[key].__getitem__, reverse=True)[:n]
    parts = []
    for i in order:
        gcs = ",".join(f"gen{g} {t:.1f}ms" for g, t in c["gc"][i]) or "no gc"
        parts.append(f"#{i} {ms(c['cpu'][i])} cpu/{ms(c['wall'][i])} wall ({gcs})")
    return "; ".join(parts)


def gc_counts(c: dict[str, Any]) -> str:
    per_gen = [0, 0, 0]
    for ran in c["gc"]:
        for gen, _ in ran:
            per_gen[gen] += 1
    return "/".join(map(str, per_gen))


def print_one(r: dict[str, Any]) -> None:
    ref, c, d = r["ref"], r["c"], r["d"]
    print(f"reference: one 1,000 x 10 users map built in {ref * 1000:.3f} ms")
    report("(a) first step, 1,000,000 users", r["a"], USERS, ref)
    report("(b) first step, 100,000 users", r["b"], 100_000, ref)
    report("(c) remove 1 of 1,000 workers, median", statistics.median(c["wall"]), None, ref)
    report("    slowest of 100 removals", max(c["wall"]), None, ref)
    report("    median, cpu", statistics.median(c["cpu"]), None, ref)
    report("    slowest of 100 removals, cpu", max(c["cpu"]), None, ref)
    print(f"    garbage collections during the 100 removals, generations 0/1/2: {gc_counts(c)}")
    print(f"    slowest by cpu: {slowest(c, 'cpu')}")
    print(f"    slowest by wall: {slowest(c, 'wall')}")
    report("(d) add a worker to 1,000+, median", statistics.median(d["wall"]), None, ref)
    report("    slowest of 100 additions", max(d["wall"]), None, ref)
    print(f"    users moved to the 100 new workers: {d['moved']:,} (~{d['moved'] // 100:,} each)")
    goals = [
        ("(a) <= 80 ms", r["a"] <= 0.08),
        ("(c) slowest <= 10 ms in cpu time", max(c["cpu"]) <= 0.010),
        ("in wall time", max(c["wall"]) <= 0.010),
    ]
    print("goals: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in goals))


def print_side_by_side(runs: list[tuple[str, int, dict[str, Any]]]) -> None:
    print(
        "\n(c) remove 1 of 1,000 workers at 1,000,000 users, 100 removals per run, each run a fresh process"
    )
    head = (
        f"{'tree':<8}{'run':>4}  {'median cpu':>10} {'worst cpu':>10}  {'median wall':>11} {'worst wall':>10}"
    )
    print(f"{head}  {'gc 0/1/2':>9}  {'(a) ms':>7} {'(d) median':>10}")
    for label, n, r in runs:
        c = r["c"]
        print(
            f"{label:<8}{n:>4}  {ms(statistics.median(c['cpu'])):>10} {ms(max(c['cpu'])):>10}  "
            f"{ms(statistics.median(c['wall'])):>11} {ms(max(c['wall'])):>10}  {gc_counts(c):>9}  "
            f"{ms(r['a']):>7} {ms(statistics.median(r['d']['wall'])):>10}"
        )
    for label, n, r in runs:
        print(f"  {label} run {n}, slowest by cpu: {slowest(r['c'], 'cpu', 2)}")
    print("times in ms; (a) is the best of --repeat first steps; goal: (c) worst <= 10 ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b); the best is shown")
    parser.add_argument("--before-src", metavar="DIR", help="a second horde source tree, side by side")
    parser.add_argument("--rounds", type=int, default=3, help="with --before-src: runs of each tree")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.repeat)))
        return
    if not args.before_src:
        print_one(measure(args.repeat))
        return
    runs = []
    for n in range(1, args.rounds + 1):
        for label, src in (("before", Path(args.before_src)), ("after", SRC)):
            runs.append((label, n, in_child(src, args.repeat)))
    print_side_by_side(runs)


if __name__ == "__main__":
    main()

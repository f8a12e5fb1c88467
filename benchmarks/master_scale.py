"""How far one horde master scales: CPU, heartbeat echo delay and re-dispatch time for N workers.

What runs
    * The master is the real thing, a separate process started through the CLI
      (``python -m horde -f <trivial locustfile> --master --headless --expect-workers N -u 10N -r 10N
      --heartbeat-interval 1 --heartbeat-liveness 3 --only-summary --json …``), so its CPU time can be read
      with psutil and nothing of this script runs inside it.
    * N simulated workers (``benchmarks/_sim_workers.py``) live in this process, in one asyncio loop: each
      has the two real DEALER sockets (``worker_id`` and ``worker_id|hb``), heartbeats at 1 Hz, sends a real
      20-entry ``RequestStats`` payload every 3 s, and answers ``spawn``/``stop``/``quit`` as a worker does.
      No users run. Their own CPU is reported too (they share the 2-core machine with the master).

What is measured, for each N (default 10, 100, 1000)
    1. Reference: the same N simulated workers against a *bare master* (``_bare_master`` below: a
       synchronous ZeroMQ ROUTER loop that decodes every frame with msgpack, acks ``client_ready`` and echoes
       heartbeats, and does nothing else). It is the floor any Python master pays for transport and codec,
       measured on the same machine a few seconds earlier, so the horde master's figures are printed as a
       ratio to it (the machine is noisy and shared; absolute numbers drift between runs, ratios much less).
       It listens with a large ``ZMQ_BACKLOG``, so its registration time shows what a burst of N connects
       costs when no SYN is dropped.
    2. Steady state: after all N workers are registered and the master's ramp (10 users per worker) is
       confirmed, the master's CPU % of one core over ``--seconds`` (mean, and the busiest 1-s sample), and the
       heartbeat echo delay p50/p99/max: from a worker sending a heartbeat on its ``|hb`` socket to the
       master's ``heartbeat`` reply arriving on its main socket (master processing + two local hops + this
       process's scheduling delay, whose worst case is printed as ``sim lag``).
    3. Re-dispatch: at a random moment (so the phase of the master's 1-s liveness check is sampled, not
       fixed), 10 % of the workers vanish at once (sockets closed, nothing more sent). The master must
       notice their silence (heartbeat interval x liveness = 3 s) and send new ``spawn`` messages so the
       survivors run all 10N users again. Reported: the time from the vanishing to the last survivor's new
       spawn; that minus the 3 s window; the time after the moment the master could first have declared the
       last victim missing (its last message + 3 s), which includes up to one interval of liveness-check
       granularity; and, from the master's own log timestamps, each liveness check that found victims (how
       many, and how long it took to declare them: the master answers no heartbeat meanwhile) and the time
       from the last such check to the last spawn. Also: how many spawn messages the survivors got (one each
       is ideal) and the heartbeat echo delay while all this happened.
    4. Status: the master serves its web UI (``--autostart``; ``--headless-master`` runs it headless as
       before) and ``GET /api/status`` — the RunStatus a front end polls, with one row per worker — is
       timed every second during the steady window and the re-dispatch.
    5. Sanity: the requests the master's ``--json`` report counts against those the workers reported (a
       vanished worker's last, unsent report is the only acceptable loss), the time from SIGTERM to the
       master's exit (it must quit within 30 s, or it is killed and the run fails), its exit code and the
       errors in its log.

``--before-src DIR`` runs a second master importing horde from DIR (e.g. ``git archive <commit> src | tar -x
-C /tmp/before``, then ``--before-src /tmp/before/src``) just before this tree's, against the same simulated
workers and the same bare reference, so a before/after comparison comes from one run.

Goal (issue 13): at 5,000 workers the master stays under 50 % of one core, answers heartbeats within
100 ms (p99), re-places a lost 10 % within 0.5 s of detecting them, and answers its status within 100 ms.

Run
    .venv/bin/python benchmarks/master_scale.py                    # N = 10, 100, 1000; 15 s steady each
    .venv/bin/python benchmarks/master_scale.py --quick            # smoke run: N = 10, 100; 4 s each
    .venv/bin/python benchmarks/master_scale.py --workers 1000 --seconds 30 --profile-master /tmp/m.prof
    .venv/bin/python benchmarks/master_scale.py --workers 2000,5000 --before-src /tmp/before/src

``--profile-master FILE`` runs the master under cProfile and prints its hottest functions; ``--logs DIR`` keeps
each master's stdout/stderr. The exit status is 1 when a run had problems (they are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pstats
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import psutil
import zmq

from _sim_workers import Latencies, SimFleet, make_stats_templates, refresh_payload
from horde._version import PROTOCOL_VERSION

HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_LIVENESS = 3
STATS_INTERVAL = 3.0
VANISH_FRACTION = 0.1
BARE_BACKLOG = 4096

LOCUSTFILE = """\
import asyncio

import horde


class Sim(horde.User):
    @horde.task
    async def t(self):
        await asyncio.sleep(1)
"""


# ---- small helpers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``proc`` accepts TCP connections on ``port`` (so registration time excludes its start-up)."""
    deadline = time.perf_counter() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the process exited with code {proc.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"nothing listened on port {port} within {timeout:g} s") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


def has_web_ui(src: str | None) -> bool:
    """Does the horde tree at ``src`` (None: this one) serve a web UI?"""
    return src is None or Path(src, "horde", "web").is_dir()


def tree_protocol(src: str | None) -> int:
    """The master/worker protocol the horde tree at ``src`` speaks (this tree's when None)."""
    if src is None:
        return PROTOCOL_VERSION
    text = Path(src, "horde", "_version.py").read_text()
    found = re.search(r"^PROTOCOL_VERSION = (\d+)", text, re.M)
    return int(found.group(1)) if found else 1


def rounds_text(rounds: list[tuple[int, float]]) -> str:
    """``83@350 17@70``: victims found by each liveness check and how long (ms) declaring them took."""
    return " ".join(f"{n}@{t * 1000:.0f}" for n, t in rounds) or "n/a"


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.2x``, or n/a when either is missing or ``b`` is too small to measure."""
    if math.isnan(a) or math.isnan(b) or b <= 0:
        return "n/a"
    return f"{a / b:.1f}x"


class CpuMeter:
    """CPU seconds (user + system, all threads) of one process, read between two marks."""

    def __init__(self, pid: int | None = None) -> None:
        self.proc = psutil.Process(pid)

    def mark(self) -> tuple[float, float]:
        t = self.proc.cpu_times()
        return time.perf_counter(), t.user + t.system

    @staticmethod
    def percent(a: tuple[float, float], b: tuple[float, float]) -> float:
        return 100.0 * (b[1] - a[1]) / max(1e-9, b[0] - a[0])


def ms(x: float) -> str:
    return "  n/a" if math.isnan(x) else f"{x * 1000:5.1f}"


def fmt_lat(s: dict[str, float]) -> str:
    return f"{ms(s['p50'])} /{ms(s['p99'])} /{ms(s['max'])}"


MISSING_LOG = " missing: silent for "  # the master's log line when it declares a worker missing


def log_time(line: str) -> float | None:
    """``time.time()`` of a master log line (``[2026-01-31 12:00:00,123] host/LEVEL/name: …``)."""
    try:
        stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return stamp.timestamp()


# ---- the bare reference master -------------------------------------------------------------------------
def _bare_master(port: int) -> None:
    """The floor: a blocking ROUTER loop that decodes each frame and answers registrations and heartbeats."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    # ZeroMQ's default listen backlog (100) drops SYNs when hundreds of workers connect at once, and
    # each dropped one costs a 1 s TCP retransmission: the floor should not pay for that
    sock.setsockopt(zmq.BACKLOG, BARE_BACKLOG)
    sock.bind(f"tcp://127.0.0.1:{port}")
    index = 0
    while True:
        ident, raw = sock.recv_multipart()
        msg_type, _data, _ = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        if ident.endswith(b"|hb"):
            reply = msgpack.packb(("heartbeat", {"epoch": "bare"}, None), use_bin_type=True)
            sock.send_multipart([ident[:-3], reply])
        elif msg_type == "client_ready":
            index += 1
            reply = msgpack.packb(("ack", {"index": index, "epoch": "bare"}, None), use_bin_type=True)
            sock.send_multipart([ident, reply])


def codec_reference(templates: list[dict[str, Any]]) -> dict[str, float]:
    """µs for one msgpack decode + encode of a heartbeat, and of a 20-entry stats report, in this process."""
    hb = msgpack.packb(
        (
            "heartbeat",
            {
                "state": "running",
                "current_cpu_usage": 1.0,
                "current_memory_usage": 5e7,
                "loop_lag": 0.0,
                "user_count": 10,
            },
            "host_0123456789abcdef",
        )
    )
    report = {
        "seq": 1,
        "stats": refresh_payload(templates[0], time.time(), STATS_INTERVAL),
        "user_classes_count": {"Sim": 10},
        "user_count": 10,
        "exceptions": [],
        "logs": [],
    }
    st = msgpack.packb(("stats", report, "host_0123456789abcdef"), use_bin_type=True)
    out = {"stats_bytes": float(len(st))}
    for name, raw, rounds in (("heartbeat", hb, 20000), ("stats", st, 1000)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(rounds):
                msgpack.packb(msgpack.unpackb(raw, raw=False, strict_map_key=False), use_bin_type=True)
            best = min(best, (time.perf_counter() - t0) / rounds)
        out[name] = best * 1e6
    return out


# ---- results ---------------------------------------------------------------------------------------------
@dataclass
class RefResult:
    cpu: float = float("nan")
    sim_cpu: float = float("nan")
    echo: dict[str, float] = field(default_factory=dict)
    connect_s: float = float("nan")


@dataclass
class MasterResult:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    connect_s: float = float("nan")
    ramp_s: float = float("nan")
    cpu: float = float("nan")
    cpu_max_1s: float = float("nan")
    merger_cpu: float = float("nan")  # the master's stats merger child process (nan: none ran)
    rss_mb: float = float("nan")
    sim_cpu: float = float("nan")
    load: float = float("nan")  # 1-min load average at the end of the steady window (2 cores)
    echo: dict[str, float] = field(default_factory=dict)
    echo_redispatch: dict[str, float] = field(default_factory=dict)
    sim_lag: float = float("nan")
    redispatch_total: float = float("nan")
    redispatch_first: float = float("nan")
    redispatch_reaction: float = float("nan")
    redispatch_cpu: float = float("nan")
    last_spawn_wall: float = float("nan")  # time.time() of the last survivor's new spawn
    detect_to_spawn: float = float("nan")  # from the master logging the last round of "missing" to it
    # per liveness check that found victims: (victims, seconds from its first to its last "missing" line)
    detect_rounds: list[tuple[int, float]] = field(default_factory=list)
    spawns_per_survivor: tuple[int, int] = (0, 0)
    survivors_touched: int = 0
    survivors: int = 0
    requests_reported: int = 0
    requests_by_victims: int = 0  # of which in the victims' reports (their last one may die with them)
    requests_merged: int = -1
    exit_code: int | None = None
    sigterm_sent: bool = False
    quit_s: float = float("nan")  # from SIGTERM to the master's exit
    status: dict[str, float] = field(default_factory=dict)  # GET /api/status latency, steady state
    status_redispatch: dict[str, float] = field(default_factory=dict)  # … while workers are re-placed
    detect_last_to_spawn: float = float("nan")  # from the last 'missing' line to the last spawn
    log_tail: list[str] = field(default_factory=list)


def launch(
    cmd: list[str],
    cwd: Path | None = None,
    out: Path | None = None,
    err: Path | None = None,
    src: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child process (stdout/stderr to files when given; ``src``: import horde from that tree)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    with open(out or os.devnull, "wb") as o, open(err or os.devnull, "wb") as e:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=o if out else None,
            stderr=e if err else None,
        )


class MasterFiles:
    """The master's locustfile, JSON report and logs, in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.locustfile = tmp / "sim_locustfile.py"
        self.locustfile.write_text(LOCUSTFILE)
        self.json_file = tmp / "report.json"
        self.out = tmp / "master.out"
        self.err = tmp / "master.err"

    def launch(self, cmd: list[str], src: str | None = None) -> subprocess.Popen[bytes]:
        return launch(cmd, self.tmp, self.out, self.err, src)

    def collect(self, res: MasterResult, keep: Path | None) -> None:
        """Requests the master merged (from its --json report), and errors in its log; keep its logs."""
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.err, keep.with_suffix(".err"))
            shutil.copy(self.out, keep.with_suffix(".out"))
        if self.json_file.exists():
            report = json.loads(self.json_file.read_text())
            total = [row for row in report.get("stats", []) if row.get("name") == "Aggregated"]
            if total:
                res.requests_merged = int(total[0]["num_requests"])
        log = self.err.read_text(errors="replace").splitlines()
        bad = [ln for ln in log if "Traceback" in ln or "/ERROR/" in ln or "/CRITICAL/" in ln]
        if bad:
            res.problems.append(f"{len(bad)} error line(s) in the master's log, first: {bad[0].strip()}")
        res.log_tail = log[-15:]
        missing = [t for t in map(log_time, (ln for ln in log if MISSING_LOG in ln)) if t is not None]
        missing = [t for t in missing if t <= res.last_spawn_wall]  # not stragglers declared at quit time
        # detection rounds (one liveness check each) are one heartbeat interval apart
        rounds: list[list[float]] = []
        for t in missing:
            if rounds and t - rounds[-1][-1] <= HEARTBEAT_INTERVAL / 2:
                rounds[-1].append(t)
            else:
                rounds.append([t])
        if rounds:
            res.detect_rounds = [(len(r), r[-1] - r[0]) for r in rounds]
            res.detect_to_spawn = res.last_spawn_wall - rounds[-1][0]
            res.detect_last_to_spawn = res.last_spawn_wall - rounds[-1][-1]


STATUS_POLL = 1.0  # seconds between two status requests (the web UI itself refreshes once a second)
STATUS_TIMEOUT = 10.0


class StatusProbe:
    """Times ``GET /api/status`` on the master's web UI (what a front end polls), one request at a time.

    The delay is the master's answer plus a local hop plus this process's own scheduling (it shares its
    loop with the simulated workers, as the echo delay does); a request that fails or takes longer than
    STATUS_TIMEOUT counts as lost.
    """

    def __init__(self, port: int, fleet: SimFleet) -> None:
        self.url = f"http://127.0.0.1:{port}/api/status"
        self.fleet = fleet
        self.latencies: dict[str, Latencies] = {}
        self._task: asyncio.Task[None] | None = None

    def lat(self, phase: str) -> Latencies:
        return self.latencies.setdefault(phase, Latencies())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="status-probe")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _poll(self) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=STATUS_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                phase = self.fleet.phase
                t0 = time.perf_counter()
                try:
                    async with session.get(self.url) as resp:
                        await resp.read()
                        ok = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    self.lat(phase).samples.append(time.perf_counter() - t0)
                else:
                    self.lat(phase).lost += 1
                await asyncio.sleep(STATUS_POLL)


# ---- one reference run ------------------------------------------------------------------------------------
async def run_reference(n: int, seconds: float, templates: list[dict[str, Any]]) -> RefResult:
    port = free_port()
    proc = launch([sys.executable, __file__, "_bare-master", str(port)])
    res = RefResult()
    fleet = SimFleet("127.0.0.1", port, n, HEARTBEAT_INTERVAL, STATS_INTERVAL, templates)
    try:
        await wait_listening(port, proc)
        fleet.start()
        if not await fleet.wait(lambda: fleet.acked == n, 60):
            raise RuntimeError(f"bare master: only {fleet.acked} of {n} workers registered")
        assert fleet.all_acked_at is not None
        res.connect_s = fleet.all_acked_at - fleet.started_at
        fleet.phase = "warmup"
        await asyncio.sleep(STATS_INTERVAL + 0.5)  # every worker has sent a stats report by now
        fleet.phase = "steady"
        master, me = CpuMeter(proc.pid), CpuMeter()
        m0, s0 = master.mark(), me.mark()
        await asyncio.sleep(seconds)
        m1, s1 = master.mark(), me.mark()
        res.cpu, res.sim_cpu = CpuMeter.percent(m0, m1), CpuMeter.percent(s0, s1)
        res.echo = fleet.lat("steady").summary()
    finally:
        await fleet.close()
        proc.kill()  # it has nothing to flush
        proc.wait(10)
    return res


# ---- one run against the horde master ---------------------------------------------------------------------
def master_command(
    n: int,
    users: int,
    rate: float,
    port: int,
    files: MasterFiles,
    profile: str | None,
    web_port: int | None = None,
) -> list[str]:
    prefix = [sys.executable]
    if profile:
        prefix += ["-m", "cProfile", "-o", profile]
    # with a web port the master serves its UI and REST API (started at once with --autostart), so the
    # status a front end reads can be timed while the workers report
    ui = (
        ["--headless"]
        if web_port is None
        else ["--autostart", "--web-host", "127.0.0.1", "-P", str(web_port)]
    )
    return [
        *prefix,
        "-m",
        "horde",
        "-f",
        str(files.locustfile),
        "--master",
        *ui,
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(n),
        "-u",
        str(users),
        "-r",
        f"{rate:g}",
        "-t",
        "3600",  # a safety net: the benchmark ends the run with SIGTERM, as Ctrl-C would
        "--heartbeat-interval",
        f"{HEARTBEAT_INTERVAL:g}",
        "--heartbeat-liveness",
        str(HEARTBEAT_LIVENESS),
        "--only-summary",
        "--json",
        str(files.json_file),
    ]


async def run_master(
    n: int,
    seconds: float,
    users_per_worker: int,
    rate: float | None,
    templates: list[dict[str, Any]],
    profile: str | None,
    verbose: bool,
    logs: str | None = None,
    src: str | None = None,
    web: bool = True,
) -> MasterResult:
    res = MasterResult()
    users = n * users_per_worker
    rate = rate or float(users)
    port = free_port()
    # a tree from before the web UI existed (the seed) runs headless: its status is not timed
    web_port = free_port() if web and has_web_ui(src) else None
    with tempfile.TemporaryDirectory(prefix="horde-master-scale-") as tmp:
        files = MasterFiles(Path(tmp))
        proc = files.launch(master_command(n, users, rate, port, files, profile, web_port), src)
        protocol = tree_protocol(src)
        if protocol != PROTOCOL_VERSION:  # an older tree reads another stats form: send it what it reads
            templates = make_stats_templates(protocol=protocol)
        fleet = SimFleet(
            "127.0.0.1", port, n, HEARTBEAT_INTERVAL, STATS_INTERVAL, templates, seed=n, protocol=protocol
        )
        probe = StatusProbe(web_port, fleet) if web_port is not None else None
        try:
            await _drive_master(fleet, proc, n, users, seconds, res, verbose, probe)
        except Exception as e:
            res.problems.append(f"{type(e).__name__}: {e}")
        finally:
            if probe is not None:
                await probe.close()
            if proc.poll() is None and not res.sigterm_sent:
                proc.send_signal(signal.SIGTERM)
                await fleet.wait(lambda: proc.poll() is not None, 30, poll=0.05)
            if proc.poll() is None:
                res.problems.append("the master did not exit within 30 s of SIGTERM; killed it")
                proc.kill()
            res.exit_code = proc.wait()
            await fleet.close()
        res.requests_reported = sum(w.requests_reported for w in fleet.workers)
        res.requests_by_victims = sum(w.requests_reported for w in fleet.workers if w.vanished)
        res.problems += fleet.errors[:5]
        if res.exit_code != 0:
            res.problems.append(f"the master exited with code {res.exit_code}")
        files.collect(res, Path(logs, f"master-{n}{'-before' if src else ''}") if logs else None)
    res.ok = not res.problems
    return res


async def _drive_master(
    fleet: SimFleet,
    proc: subprocess.Popen[bytes],
    n: int,
    users: int,
    seconds: float,
    res: MasterResult,
    verbose: bool,
    probe: StatusProbe | None = None,
) -> None:
    def say(text: str) -> None:
        if verbose:
            print(f"    [{n:>5}] {text}", flush=True)

    def master_alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"the master exited early with code {proc.returncode}")

    # registration
    await wait_listening(fleet.port, proc)
    fleet.start()
    if not await fleet.wait(lambda: fleet.acked == n or proc.poll() is not None, 60 + n / 20):
        raise RuntimeError(f"only {fleet.acked} of {n} workers were acknowledged")
    master_alive()
    assert fleet.all_acked_at is not None
    res.connect_s = fleet.all_acked_at - fleet.started_at
    say(f"{n} workers registered in {res.connect_s:.2f} s")

    # the initial ramp: every worker running its 10 users
    fleet.phase = "ramp"
    if not await fleet.wait(lambda: fleet.users() == users or proc.poll() is not None, 60 + users / 100):
        raise RuntimeError(f"the ramp did not complete: workers run {fleet.users()} of {users} users")
    master_alive()
    last_spawn = max(w.spawns[-1][0] for w in fleet.workers if w.spawns)
    res.ramp_s = last_spawn - fleet.all_acked_at
    say(f"ramp to {users} users confirmed {res.ramp_s:.2f} s after the last ack")

    # steady state
    fleet.phase = "settle"
    if probe is not None:
        probe.start()
    await asyncio.sleep(STATS_INTERVAL + 1.0)
    fleet.phase = "steady"
    master, me = CpuMeter(proc.pid), CpuMeter()
    # the stats merger, when the master started one
    children = [c for c in master.proc.children() if "_merger_main" in " ".join(c.cmdline())]
    merger = CpuMeter(children[0].pid) if children else None
    g0 = merger.mark() if merger is not None else None
    m0, s0 = master.mark(), me.mark()
    prev, worst = m0, 0.0
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        await asyncio.sleep(min(1.0, left))
        cur = master.mark()
        if cur[0] - prev[0] >= 0.5:
            worst = max(worst, CpuMeter.percent(prev, cur))
        prev = cur
        master_alive()
    m1, s1 = master.mark(), me.mark()
    if merger is not None and g0 is not None:
        res.merger_cpu = CpuMeter.percent(g0, merger.mark())
    res.load = os.getloadavg()[0]
    res.cpu, res.cpu_max_1s = CpuMeter.percent(m0, m1), worst
    res.sim_cpu = CpuMeter.percent(s0, s1)
    res.rss_mb = master.proc.memory_info().rss / 1e6
    res.echo = fleet.lat("steady").summary()
    res.sim_lag = fleet.sim_lag_max.get("steady", 0.0)
    if probe is not None:
        res.status = probe.lat("steady").summary()
    say(
        f"steady: master {res.cpu:.1f} % CPU, echo p50/p99/max {fmt_lat(res.echo)} ms"
        + (f", status p50/p99/max {fmt_lat(res.status)} ms" if res.status else "")
    )

    # re-dispatch after 10 % of the workers vanish
    fleet.phase = "jitter"
    # a random moment, so the liveness check's phase (up to one interval) is sampled, not fixed
    await asyncio.sleep(random.uniform(0.0, HEARTBEAT_INTERVAL))
    fleet.phase = "redispatch"
    r0 = master.mark()
    victims, t0 = fleet.vanish(VANISH_FRACTION)
    survivors = fleet.alive
    res.survivors = len(survivors)
    window = HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS
    deadline_at = max(w.last_sent for w in victims) + window  # earliest moment the last victim is "missing"
    spawns_before = {w.id: len(w.spawns) for w in survivors}
    say(f"{len(victims)} workers vanished; waiting for {users} users on {len(survivors)} survivors")
    converged = await fleet.wait(
        lambda: fleet.users(survivors) == users or proc.poll() is not None, window + 60
    )
    r1 = master.mark()
    master_alive()
    if not converged:
        raise RuntimeError(f"no re-dispatch: survivors run {fleet.users(survivors)} of {users} users")
    await asyncio.sleep(0.5)  # catch stragglers (a second round of spawns would show up here)
    new = [w.spawns[spawns_before[w.id] :] for w in survivors]
    times = [t for got in new for t, _ in got]
    # the moment the survivors' total first reached the target is the last spawn that counted
    res.redispatch_total = max(times) - t0 if times else float("nan")
    res.redispatch_first = min(times) - t0 if times else float("nan")
    res.redispatch_reaction = max(times) - deadline_at if times else float("nan")
    res.last_spawn_wall = max(times) + fleet.wall_offset if times else float("nan")
    res.redispatch_cpu = CpuMeter.percent(r0, r1)
    per = [len(got) for got in new]
    res.spawns_per_survivor = (min(per), max(per))
    res.survivors_touched = sum(1 for p in per if p)
    res.echo_redispatch = fleet.lat("redispatch").summary()
    if probe is not None:
        res.status_redispatch = probe.lat("redispatch").summary()
    say(
        f"re-dispatch: last spawn {res.redispatch_total:.2f} s after the vanishing "
        f"({res.redispatch_reaction * 1000:.0f} ms after the liveness deadline)"
    )

    # quit: the master sends quit to everyone; survivors answer with their final seq
    fleet.phase = "quit"
    if probe is not None:
        await probe.close()
    await asyncio.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    res.sigterm_sent = True
    sent = time.perf_counter()
    if await fleet.wait(lambda: proc.poll() is not None, 30, poll=0.02):
        res.quit_s = time.perf_counter() - sent
    quits = fleet.counters.get("quit received", 0)
    if quits < len(survivors):
        res.problems.append(f"only {quits} of {len(survivors)} surviving workers received quit")


# ---- reporting -------------------------------------------------------------------------------------------
def print_profile(path: str, top: int = 25) -> None:
    if not os.path.exists(path):
        print(f"  (no profile written to {path})")
        return
    print(f"\nmaster profile ({path}), top {top} by own time:")
    stats = pstats.Stats(path)
    stats.sort_stats("tottime").print_stats(top)


def _status_text(r: MasterResult) -> str:
    return fmt_lat(r.status) if r.status else "n/a"


def print_summary(
    sizes: list[int],
    refs: dict[int, RefResult],
    runs: list[tuple[str, int, MasterResult]],
    codec: dict[str, float],
    seconds: float,
) -> None:
    """``runs``: (label, N, result) rows in the order they ran (``horde``, and ``before`` with --before-src)."""
    print()
    print(f"Steady state ({seconds:g} s per size; CPU in % of one core; echo and status delay in ms)")
    head = (
        f"{'N':>5} {'master':>6} | {'master CPU':>10} {'1-s max':>7} {'x bare':>6} {'merger':>6} {'RSS MB':>6} | "
        f"{'echo p50 / p99 / max':>21} {'p99 x bare':>10} | {'status p50 / p99 / max':>22} | "
        f"{'bare CPU':>8} {'bare echo p50/p99/max':>22} | {'sims CPU':>8} {'sim lag':>7} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    for label, n, r in runs:
        ref = refs.get(n, RefResult())
        p99, ref_p99 = r.echo.get("p99", math.nan), ref.echo.get("p99", math.nan)
        print(
            f"{n:>5} {label:>6} | {r.cpu:>9.1f}% {r.cpu_max_1s:>6.1f}% {ratio(r.cpu, ref.cpu):>6} "
            f"{'-' if math.isnan(r.merger_cpu) else f'{r.merger_cpu:.1f}%':>6} {r.rss_mb:>6.0f} | "
            f"{fmt_lat(r.echo) if r.echo else 'n/a':>21} {ratio(p99, ref_p99):>10} | {_status_text(r):>22} | "
            f"{ref.cpu:>7.1f}% {fmt_lat(ref.echo) if ref.echo else 'n/a':>22} | "
            f"{r.sim_cpu:>7.1f}% {r.sim_lag * 1000:>5.0f}ms {r.load:>5.2f}"
        )
    print(
        "  x bare: horde master / bare master (same N, same workers, same traffic, measured just before);\n"
        "  merger: CPU of the master's stats merger child process (- when it started none), not in master CPU;\n"
        "  status: GET /api/status on the master's web UI every second (n/a with --headless-master, or a tree without a web UI);\n"
        "  sim lag: worst lateness of the simulated workers' own ticker; load: 1-min load average at the end"
        " of the window (2 cores; well above 1 means other tenants competed for the CPU)"
    )
    hb_us, st_us = codec["heartbeat"], codec["stats"]
    print(
        f"  codec floor: msgpack decode+encode {hb_us:.1f} us per heartbeat, {st_us:.0f} us per stats report "
        f"({codec['stats_bytes'] / 1024:.1f} KiB) -> at N=5000 about "
        f"{(5000 * hb_us + 5000 / STATS_INTERVAL * st_us) / 1e4:.1f} % of a core"
    )
    print()
    print(
        f"Re-dispatch after {VANISH_FRACTION:.0%} of the workers vanish "
        f"(liveness window {HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS:g} s)"
    )
    head2 = (
        f"{'N':>5} {'master':>6} | {'last spawn':>10} {'- window':>8} {'after deadline':>14} "
        f"{'detect->spawn':>13} {'last->spawn':>11} {'detect rounds':>17} {'first spawn':>11} | "
        f"{'spawns/surv.':>12} {'touched':>9} | {'echo p50 / p99 / max':>21} | "
        f"{'status p50 / p99 / max':>22} | {'CPU':>6}"
    )
    print(head2)
    print("-" * len(head2))
    window = HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS
    for label, n, r in runs:
        lo, hi = r.spawns_per_survivor
        print(
            f"{n:>5} {label:>6} | {r.redispatch_total:>9.2f}s {r.redispatch_total - window:>7.2f}s "
            f"{r.redispatch_reaction * 1000:>11.0f} ms {r.detect_to_spawn * 1000:>10.0f} ms "
            f"{r.detect_last_to_spawn * 1000:>8.0f} ms "
            f"{rounds_text(r.detect_rounds):>17} {r.redispatch_first:>10.2f}s | "
            f"{f'{lo}..{hi}':>12} {f'{r.survivors_touched}/{r.survivors}':>9} | "
            f"{fmt_lat(r.echo_redispatch) if r.echo_redispatch else 'n/a':>21} | "
            f"{fmt_lat(r.status_redispatch) if r.status_redispatch else 'n/a':>22} | {r.redispatch_cpu:>5.1f}%"
        )
    print(
        "  last spawn: from the vanishing to the last survivor's new spawn (minus the window: what the brief"
        " calls the master's reaction);\n"
        "  after deadline: from the moment the last victim could first be declared missing (its last message +"
        " window), so it includes up to one interval of liveness-check granularity;\n"
        "  detect->spawn: from the first 'missing' log line of the master's last detection round to the last"
        " spawn; last->spawn: from the last 'missing' line (the last detection) to the last spawn;\n"
        "  detect rounds: victims found by each liveness check @ ms from its first to its last 'missing' line"
        " (victims' deadlines are spread over one heartbeat interval, as their last beats were);\n"
        "  echo, status: delays from the vanishing until the survivors run every user again"
    )
    print()
    print("Setup and sanity")
    for label, n, r in runs:
        merged = (
            f"{r.requests_merged}/{r.requests_reported} requests merged"
            f" ({100 * r.requests_merged / max(1, r.requests_reported):.1f} %;"
            f" {r.requests_by_victims} were reported by the vanished workers)"
            if r.requests_merged >= 0
            else "no --json report"
        )
        lost = r.echo.get("lost", 0) + r.echo_redispatch.get("lost", 0) if r.echo else 0
        quit_text = f"{r.quit_s:.2f} s" if not math.isnan(r.quit_s) else "over 30 s (killed)"
        print(
            f"{n:>5} {label:>6} | registered in {r.connect_s:.2f} s "
            f"(bare master with ZMQ_BACKLOG {BARE_BACKLOG}: {refs.get(n, RefResult()).connect_s:.2f} s), "
            f"ramp confirmed {r.ramp_s:.2f} s later | {merged} | SIGTERM -> exit {quit_text}, "
            f"exit {r.exit_code} | lost echoes {lost:g}"
            + ("" if r.ok else " | PROBLEMS: " + "; ".join(r.problems))
        )
    largest = max(sizes)
    r = next((res for label, n, res in runs if n == largest and label == "horde"), MasterResult())
    if largest >= 1000 and r.echo:
        cpu_ok = r.cpu < 50.0
        lat_ok = r.echo["p99"] < 0.100
        print()
        print(
            f"Goal at N={largest}: master < 50 % of a core: {'met' if cpu_ok else 'MISSED'} ({r.cpu:.1f} %"
            + ("" if math.isnan(r.merger_cpu) else f", plus {r.merger_cpu:.1f} % in its stats merger")
            + "); "
            f"heartbeat echo p99 < 100 ms: {'met' if lat_ok else 'MISSED'} ({r.echo['p99'] * 1000:.1f} ms); "
            f"re-placed within 0.5 s of the last detection: "
            f"{'met' if r.detect_last_to_spawn < 0.5 else 'MISSED'} ({r.detect_last_to_spawn * 1000:.0f} ms)"
            + (
                f"; status p99 < 100 ms: {'met' if r.status['p99'] < 0.1 else 'MISSED'} "
                f"({r.status['p99'] * 1000:.1f} ms)"
                if r.status
                else ""
            )
        )


# ---- main --------------------------------------------------------------------------------------------------
async def amain(args: argparse.Namespace) -> int:
    sizes = [int(x) for x in args.workers.split(",") if x.strip()]
    templates = make_stats_templates()
    codec = codec_reference(templates)
    try:
        import uvloop  # noqa: F401

        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    print(
        f"horde master scale: N = {', '.join(map(str, sizes))}; {args.seconds:g} s steady per size; "
        f"{args.users_per_worker} users per worker; sims on {loop_name} in pid {os.getpid()}; "
        f"{psutil.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    refs: dict[int, RefResult] = {}
    runs: list[tuple[str, int, MasterResult]] = []
    failed = False
    sides = [("before", args.before_src)] if args.before_src else []
    sides.append(("horde", None))
    for n in sizes:
        if not args.no_reference:
            ref_seconds = max(3.0, args.seconds / 2)
            print(f"  N={n}: bare reference master, {ref_seconds:g} s ...", flush=True)
            refs[n] = await run_reference(n, ref_seconds, templates)
        for label, src in sides:
            print(f"  N={n}: {label} master{f' (from {src})' if src else ''} ...", flush=True)
            profile = None
            if args.profile_master and src is None:
                profile = args.profile_master if len(sizes) == 1 else f"{args.profile_master}.{n}"
            res = await run_master(
                n,
                args.seconds,
                args.users_per_worker,
                args.spawn_rate,
                templates,
                profile,
                not args.terse,
                args.logs,
                src,
                not args.headless_master,
            )
            runs.append((label, n, res))
            if not res.ok:
                failed = failed or src is None  # the tree under test must pass; the before tree may not
                print(f"  N={n} {label}: PROBLEMS: {'; '.join(res.problems)}")
                print("  master log tail:\n    " + "\n    ".join(line[:300] for line in res.log_tail))
            await asyncio.sleep(1.0)  # let sockets of the previous run close before the next one
    print_summary(sizes, refs, runs, codec, args.seconds)
    if args.profile_master:
        for n in sizes:
            print_profile(args.profile_master if len(sizes) == 1 else f"{args.profile_master}.{n}")
    return 1 if failed else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--workers", default="10,100,1000", help="comma-separated worker counts (default 10,100,1000)"
    )
    p.add_argument("--seconds", type=float, default=15.0, help="steady-state seconds per size (default 15)")
    p.add_argument("--quick", action="store_true", help="smoke run: N=10,100, 4 s each")
    p.add_argument("--users-per-worker", type=int, default=10, help="users the master places per worker")
    p.add_argument(
        "--spawn-rate", type=float, default=None, help="master spawn rate (default: all users in one step)"
    )
    p.add_argument("--no-reference", action="store_true", help="skip the bare-master reference runs")
    p.add_argument(
        "--before-src",
        metavar="DIR",
        help="also run a master importing horde from DIR (a src/ tree, e.g. git archive <commit> src), "
        "right before this tree's, against the same simulated workers",
    )
    p.add_argument(
        "--headless-master",
        action="store_true",
        help="run the master --headless (no web UI, so no status timing); default: web UI with --autostart",
    )
    p.add_argument("--profile-master", metavar="FILE", help="run the master under cProfile, write FILE")
    p.add_argument("--logs", metavar="DIR", help="keep each master's stdout/stderr in DIR")
    p.add_argument("--terse", action="store_true", help="no progress lines, only the tables")
    args = p.parse_args(argv)
    if args.quick:
        args.workers, args.seconds = "10,100", 4.0
    return args


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_bare-master":
        _bare_master(int(sys.argv[2]))
        return
    args = parse_args(sys.argv[1:])
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(amain(args)))
    sys.exit(uvloop.run(amain(args)))


if __name__ == "__main__":
    main()

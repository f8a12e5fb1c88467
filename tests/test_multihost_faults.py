"""Faults between hosts: a master and two workers in three network namespaces (veth pairs), with
nftables rules for packet loss and partitions, a delaying TCP proxy for latency, and a master that comes
back at a new address under the same DNS name (``/etc/netns/<ns>/hosts``, which ``ip netns exec`` mounts
over ``/etc/hosts``). Root, iproute2 and nftables needed; skipped otherwise, saying which is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from horde.rpc import keys as keymod

pytestmark = pytest.mark.slow

VIP, VIP2 = "10.231.80.1", "10.231.80.2"  # the master host's service addresses (on its loopback)
PORT = 5557
PROXY_PORT = 6557
HB = ["--heartbeat-interval", "0.2", "--heartbeat-liveness", "5"]  # missing after 1 s of silence
REPORT = 0.5  # the workers' stats report interval

LOCUSTFILE = textwrap.dedent(
    """
    from horde import FastHttpUser, task, constant

    class Remote(FastHttpUser):
        wait_time = constant(0.05)

        @task
        async def items(self):
            await self.client.get("/items")
    """
)

DELAY_PROXY = textwrap.dedent(
    """
    import asyncio, sys
    listen_host, listen_port, target_host, target_port, delay = sys.argv[1:6]

    async def pump(src, dst):
        try:
            while data := await src.read(65536):
                await asyncio.sleep(float(delay))
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()

    async def handle(reader, writer):
        up_reader, up_writer = await asyncio.open_connection(target_host, int(target_port))
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def main():
        server = await asyncio.start_server(handle, listen_host, int(listen_port))
        print("listening", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


def run(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=15, input=stdin, text=True)


def nft(ns: str, rules: str) -> None:
    run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=rules)


@dataclass
class Hosts:
    master: str
    workers: list[str]

    def hosts_file(self, ns: str) -> Path:
        return Path("/etc/netns") / ns / "hosts"

    def point_master_name(self, ns: str, ip: str) -> None:
        # written in place: the file is bind-mounted over /etc/hosts in processes already running
        with self.hosts_file(ns).open("r+") as f:
            f.seek(0)
            f.truncate()
            f.write(f"127.0.0.1 localhost\n{ip} horde-master\n")

    def partition(self, ns: str, port: int) -> None:
        """Drop the worker's control traffic (both ways); its users keep loading the target."""
        nft(
            ns,
            f"""
            table inet partition {{
                chain out {{ type filter hook output priority 0; tcp dport {port} drop; }}
                chain in {{ type filter hook input priority 0; tcp sport {port} drop; }}
            }}
            """,
        )

    def heal(self, ns: str) -> None:
        run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "partition")

    def lossy(self, ns: str, percent: int) -> None:
        nft(
            ns,
            f"""
            table inet loss {{
                chain out {{ type filter hook output priority 0; numgen random mod 100 < {percent} drop; }}
                chain in {{ type filter hook input priority 0; numgen random mod 100 < {percent} drop; }}
            }}
            """,
        )


def _missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (apt-get install iproute2)"
    if shutil.which("nft") is None:
        return "needs nftables (apt-get install nftables)"
    return None


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    missing = _missing_tools()
    if missing:
        pytest.skip(missing)
    tag = str(os.getpid())[-5:]
    master, workers = f"hfM{tag}", [f"hfW1{tag}", f"hfW2{tag}"]
    made: list[str] = []
    try:
        run("ip", "netns", "add", master)
        made.append(master)
        run("ip", "-n", master, "link", "set", "lo", "up")
        for ip in (VIP, VIP2):
            run("ip", "-n", master, "addr", "add", f"{ip}/32", "dev", "lo")
        for i, ns in enumerate(workers, start=1):
            net = f"10.231.{80 + i}"
            run("ip", "netns", "add", ns)
            made.append(ns)
            a, b = f"hfa{i}{tag}", f"hfb{i}{tag}"
            run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            run("ip", "link", "set", a, "netns", master)
            run("ip", "link", "set", b, "netns", ns)
            run("ip", "-n", master, "addr", "add", f"{net}.1/24", "dev", a)
            run("ip", "-n", ns, "addr", "add", f"{net}.2/24", "dev", b)
            for where, dev in ((master, a), (ns, b)):
                run("ip", "-n", where, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", ns, "route", "add", "10.231.80.0/24", "via", f"{net}.1")
            folder = Path("/etc/netns") / ns
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "hosts").write_text(f"127.0.0.1 localhost\n{VIP} horde-master\n")
        run("ip", "netns", "exec", master, "nft", "list", "ruleset")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot build the namespaces / nftables here: {e}")
    try:
        yield Hosts(master, workers)
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


def in_ns(ns: str, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


@pytest.fixture
def target(hosts: Hosts) -> Iterator[str]:
    proc = in_ns(hosts.master, "-m", "horde.demo.target", "--host", VIP, "--port", "8089")
    assert proc.stdout is not None and "listening" in proc.stdout.readline()
    yield f"http://{VIP}:8089"
    proc.terminate()
    proc.wait(10)


def served(hosts: Hosts) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", hosts.master, sys.executable, "-c",
         f"import urllib.request; print(urllib.request.urlopen('http://{VIP}:8089/stats').read().decode())"],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    return int(json.loads(out.stdout)["served"])


def start_master(
    hosts: Hosts, tmp: Path, url: str, run_time: int, *extra: str, bind: str = VIP, workers: int = 2
) -> subprocess.Popen[str]:
    return in_ns(
        hosts.master, "-m", "horde", "-f", str(tmp / "locustfile.py"), "--master", "--headless",
        "--master-bind-host", bind, "--master-bind-port", str(PORT), "--expect-workers", str(workers),
        "--expect-workers-max-wait", "30", "-H", url, "-u", "4", "-r", "100", "-t", str(run_time), "-s", "1",
        "--json", str(tmp / "out.json"), *HB, *extra,
    )  # fmt: skip


def start_worker(hosts: Hosts, ns: str, tmp: Path, *extra: str, port: int = PORT) -> subprocess.Popen[str]:
    return in_ns(
        ns, "-m", "horde", "-f", str(tmp / "locustfile.py"), "--worker", "--master-host", "horde-master",
        "--master-port", str(port), "--stats-report-interval", str(REPORT), *HB, *extra,
    )  # fmt: skip


def aggregated(tmp: Path) -> dict:
    report = json.loads((tmp / "out.json").read_text())
    return next(s for s in report["stats"] if s["name"] == "Aggregated")


def check_count(tmp: Path, hosts: Hosts, before: int) -> tuple[int, int]:
    """The merged count of served requests is within one report interval of what the target served."""
    total = aggregated(tmp)
    counted = total["num_requests"] - total["num_failures"]
    actual = served(hosts) - before
    tolerance = max(5, int(total["total_rps"] * REPORT))
    assert abs(counted - actual) <= tolerance, (counted, actual, tolerance)
    assert actual > 50
    return counted, actual


def finish(master: subprocess.Popen[str], workers: list[subprocess.Popen[str]]) -> tuple[str, list[str]]:
    _out, err = master.communicate(timeout=120)
    errs = []
    for w in workers:
        try:
            _wout, werr = w.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()
            _wout, werr = w.communicate()
        errs.append(werr)
    assert master.returncode == 0, err
    return err, errs


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    return tmp_path


@pytest.mark.parametrize("curve", [False, True], ids=["plain", "curve"])
def test_a_partitioned_worker_is_missing_its_users_move_and_it_rejoins_fenced(
    hosts: Hosts, target: str, files: Path, curve: bool
) -> None:
    keys: list[str] = []
    if curve:
        keymod.generate(files / "keys")
        keys = ["--keys", str(files / "keys")]
    before = served(hosts)
    master = start_master(hosts, files, target, 9, *keys)
    workers = [start_worker(hosts, ns, files, *keys) for ns in hosts.workers]
    try:
        time.sleep(4.5)  # connected, ramped, running
        hosts.partition(hosts.workers[1], PORT)
        time.sleep(2.5)  # > the 1 s liveness window
        hosts.heal(hosts.workers[1])
        err, _ = finish(master, workers)
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    assert "missing: silent for" in err, err
    assert "is back; telling it its target" in err, err
    assert "Rebalance complete" in err
    if curve:
        assert "CurveZMQ on" in err
    counted, actual = check_count(files, hosts, before)
    print(f"partition ({'curve' if curve else 'plain'}): counted {counted}, served {actual}")


def test_loss_and_latency_on_the_control_links_keep_the_count(hosts: Hosts, target: str, files: Path) -> None:
    proxy = in_ns(hosts.master, "-c", DELAY_PROXY, VIP, str(PROXY_PORT), VIP, str(PORT), "0.05")
    assert proxy.stdout is not None and "listening" in proxy.stdout.readline()
    before = served(hosts)
    for ns in hosts.workers:
        hosts.lossy(ns, 5)  # 5 % of packets both ways, the target's traffic included
    master = start_master(hosts, files, target, 6)
    workers = [start_worker(hosts, ns, files, port=PROXY_PORT) for ns in hosts.workers]
    try:
        finish(master, workers)
    finally:
        for p in (master, *workers, proxy):
            if p.poll() is None:
                p.kill()
    counted, actual = check_count(files, hosts, before)
    print(f"loss 5 % + 50 ms per hop: counted {counted}, served {actual}")


def test_workers_follow_a_master_that_restarts_at_a_new_address(
    hosts: Hosts, target: str, files: Path
) -> None:
    ns = hosts.workers[0]
    first = start_master(hosts, files, target, 60, workers=1)
    worker = start_worker(hosts, ns, files)
    second: subprocess.Popen[str] | None = None
    try:
        time.sleep(4)
        first.send_signal(signal.SIGKILL)  # gone without a word: the worker must find the new one
        first.wait(10)
        hosts.point_master_name(ns, VIP2)
        before = served(hosts)
        second = start_master(hosts, files, target, 3, bind=VIP2, workers=1)
        _out, err = second.communicate(timeout=90)
        assert second.returncode == 0, err
        _wout, werr = worker.communicate(timeout=30)
    finally:
        for p in (first, worker, *([second] if second else [])):
            if p.poll() is None:
                p.kill()
    assert f"now resolves to tcp://{VIP2}:{PORT}" in werr, werr
    total = aggregated(files)
    assert total["num_requests"] > 20
    assert total["num_requests"] <= served(hosts) - before

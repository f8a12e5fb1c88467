"""A master and workers on different hosts: two network namespaces joined by a veth pair.

The hosts are made by the test itself (root and iproute2 needed; skipped otherwise), so the only
addresses involved are those of these throwaway namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # network namespaces and real processes

SUBNET = "10.231.77"
MASTER_IP, WORKER_IP = f"{SUBNET}.1", f"{SUBNET}.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = str(os.getpid())[-6:]
    a, b = f"hordeA{tag}", f"hordeB{tag}"
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("link", "add", f"hva{tag}", "type", "veth", "peer", "name", f"hvb{tag}")
        _ip("link", "set", f"hva{tag}", "netns", a)
        _ip("link", "set", f"hvb{tag}", "netns", b)
        _ip("-n", a, "addr", "add", f"{MASTER_IP}/24", "dev", f"hva{tag}")
        _ip("-n", b, "addr", "add", f"{WORKER_IP}/24", "dev", f"hvb{tag}")
        for ns, dev in ((a, f"hva{tag}"), (b, f"hvb{tag}")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot create network namespaces here: {e}")
    try:
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_ns(ns: str, *cmd: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def test_master_and_workers_on_different_hosts(hosts: tuple[str, str], tmp_path: Path) -> None:
    master_ns, worker_ns = hosts
    (tmp_path / "locustfile.py").write_text(
        textwrap.dedent(
            """
            from horde import FastHttpUser, task, constant

            class Remote(FastHttpUser):
                wait_time = constant(0.05)

                @task
                async def items(self):
                    await self.client.get("/items")
            """
        )
    )
    target = in_ns(master_ns, "-m", "horde.demo.target", "--host", MASTER_IP, "--port", "8089")
    try:
        assert target.stdout is not None and "listening" in target.stdout.readline()
        common = ["-m", "horde", "-f", str(tmp_path / "locustfile.py"), "--heartbeat-interval", "0.2"]
        master = in_ns(
            master_ns, *common, "--master", "--headless", "--master-bind-host", MASTER_IP,
            "--expect-workers", "2", "--expect-workers-max-wait", "20", "-H", f"http://{MASTER_IP}:8089",
            "-u", "4", "-r", "100", "-t", "3", "-s", "2", "--json", str(tmp_path / "out.json"),
        )  # fmt: skip
        workers = [
            in_ns(
                worker_ns, *common, "--worker", "--master-host", MASTER_IP, "--stats-report-interval", "0.5"
            )
            for _ in range(2)
        ]
        _out, err = master.communicate(timeout=60)
        assert master.returncode == 0, err
        for w in workers:
            w.communicate(timeout=20)
            assert w.returncode == 0
        served = subprocess.run(
            ["ip", "netns", "exec", master_ns, sys.executable, "-c",
             f"import urllib.request; print(urllib.request.urlopen('http://{MASTER_IP}:8089/stats').read().decode())"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        report = json.loads((tmp_path / "out.json").read_text())
        total = next(s for s in report["stats"] if s["name"] == "Aggregated")["num_requests"]
        assert total == json.loads(served.stdout)["served"] > 20
        assert report["user_count"] == 4
    finally:
        target.terminate()
        target.wait(10)

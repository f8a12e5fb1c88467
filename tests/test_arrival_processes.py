"""An arrival rate over a master and two real worker processes (ZeroMQ on loopback), one killed with
SIGKILL mid-run: the survivor takes the whole rate once the master notices, and the target-side count
stays within the dead worker's unnoticed share of rate x duration."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from horde import HttpUser, task
from horde.env import Environment
from horde.load.arrival import ARRIVALS_ENDED, ConstantArrivalRate
from horde.load.arrival_pool import arrival_stats
from tests.demo_target import running_target, served

pytestmark = pytest.mark.slow  # real processes

# the workers' locustfile imports the arrival models: that registers the plan kind in the worker process
LOCUSTFILE = textwrap.dedent(
    """
    import horde.load.arrival  # noqa: F401
    from horde import HttpUser, task

    class Browser(HttpUser):
        @task
        async def items(self):
            await self.client.get("/items")
    """
)
HB, LIVENESS = 0.2, 3


class Browser(HttpUser):  # the master's view of the same class (it runs none)
    @task
    async def items(self) -> None: ...


@pytest.fixture
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def worker(tmp: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "horde", "-f", str(tmp / "locustfile.py"), "--worker",
            "--master-port", str(port), "--stats-report-interval", "0.5",
            "--heartbeat-interval", str(HB), "--heartbeat-liveness", str(LIVENESS),
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


async def test_a_killed_worker_s_share_moves_to_the_survivor(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    rate, duration, kill_at = 100.0, 8.0, 3.0
    env = Environment(user_classes=[Browser], host=target)
    master = env.create_master_runner("127.0.0.1", 0, heartbeat_interval=HB, heartbeat_liveness=LIVENESS)
    master.start_background()
    stats = arrival_stats(env)
    workers = [worker(tmp_path, master.port) for _ in range(2)]
    try:
        assert await master.wait_for_workers(2, 60)
        before = served(target)
        await master.start_load(ConstantArrivalRate(rate, duration, pre_allocated=4, max_users=40))
        started = time.monotonic()
        await asyncio.sleep(kill_at)
        os.kill(workers[1].pid, signal.SIGKILL)
        killed = time.monotonic() - started
        while master.state != "stopped":
            assert time.monotonic() - started < duration + 30, "the schedule did not end the test"
            await asyncio.sleep(0.1)
        assert master.stop_reason == ARRIVALS_ENDED
        count = served(target) - before
    finally:
        await master.quit()
        for w in workers:
            if w.poll() is None:
                w.kill()
            w.wait(10)
    # the dead worker's share (rate / 2) is lost from the kill until the master notices (the liveness
    # window, plus a heartbeat interval of slack), and only then
    window = HB * LIVENESS + HB
    expected = rate * duration
    lost_at_most = rate / 2 * (window + 0.3)
    print(f"served {count} of {expected:g}; killed at {killed:.2f} s; lost at most {lost_at_most:g}")
    assert expected - lost_at_most - 0.01 * expected <= count <= expected + 0.01 * expected
    assert stats.iterations <= count  # the dead worker's last unreported iterations are missing, no more
    assert stats.dropped_iterations == 0

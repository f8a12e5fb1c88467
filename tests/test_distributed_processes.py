"""Distributed runs with real processes on loopback: the fault scenarios users meet in real clusters."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from horde._version import PROTOCOL_VERSION
from tests.demo_target import running_target, served

pytestmark = pytest.mark.slow  # real processes

LOCUSTFILE = textwrap.dedent(
    """
    from horde import HttpUser, task, constant

    class Browser(HttpUser):
        wait_time = constant(0.05)

        @task
        async def items(self):
            await self.client.get("/items")
    """
)
FAST = ["--heartbeat-interval", "0.2", "--heartbeat-liveness", "3"]


@pytest.fixture
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout:g} s")
        time.sleep(0.1)


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts TCP connections on ``port`` (a master starting on a busy machine)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def horde(tmp: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "horde", "-f", str(tmp / "locustfile.py"), *args],
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def master(tmp: Path, port: int, url: str, *args: str) -> subprocess.Popen[str]:
    return horde(
        tmp,
        "--master",
        "--headless",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "-H",
        url,
        "--json",
        str(tmp / "out.json"),
        *FAST,
        *args,
    )


def worker(tmp: Path, port: int, *args: str) -> subprocess.Popen[str]:
    return horde(tmp, "--worker", "--master-port", str(port), "--stats-report-interval", "0.5", *FAST, *args)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def aggregated(tmp: Path) -> dict:
    data = json.loads((tmp / "out.json").read_text())
    return next(s for s in data["stats"] if s["name"] == "Aggregated")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    return tmp_path


@pytest.mark.parametrize("merger", ["0", "1"], ids=["merged-in-master", "stats-merger-process"])
def test_master_and_three_workers_count_exactly_what_the_server_served(
    tmp: Path, target: str, merger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HORDE_STATS_MERGER", merger)  # "1": the child process that adds reports up
    port = free_port()
    before = served(target)
    m = master(tmp, port, target, "--expect-workers", "3", "-u", "6", "-r", "100", "-t", "3", "-s", "2")
    workers = [worker(tmp, port) for _ in range(3)]
    code, out, err = finish(m)
    assert code == 0, err
    for w in workers:
        assert finish(w, 20)[0] == 0
    assert ("Stats merger ready" in err) is (merger == "1")
    assert aggregated(tmp)["num_requests"] == served(target) - before > 50
    final_table = out.split("Workers:")[-1]
    rows = [line.split() for line in final_table.splitlines() if "_" in line]  # ids are <host>_<hex>
    assert sorted(int(r[2]) for r in rows) == [2, 2, 2]  # each worker ran 2 of the 6 users


def test_killed_worker_is_replaced_and_the_others_are_all_counted(tmp: Path, target: str) -> None:
    port = free_port()
    before = served(target)
    m = master(tmp, port, target, "--expect-workers", "3", "-u", "6", "-r", "100", "-t", "5", "-s", "2")
    workers = [worker(tmp, port) for _ in range(3)]
    # kill it mid-test: once every worker runs users (a loaded machine may take seconds to get there)
    wait_for(lambda: served(target) - before > 30, timeout=40)
    time.sleep(1)
    os.kill(workers[2].pid, signal.SIGKILL)
    _code, out, err = finish(m)
    for w in workers[:2]:
        finish(w, 20)
    workers[2].wait(5)
    assert "missing" in err
    final_table = out.split("Workers:")[-1]
    running_rows = [line for line in final_table.splitlines() if " running " in line or " ready " in line]
    assert len(running_rows) >= 2
    reported = aggregated(tmp)["num_requests"]
    lost_at_most = 2 * int(0.5 / 0.05) * 3  # the killed worker's last unreported half second, with slack
    assert served(target) - before - lost_at_most <= reported <= served(target) - before


def test_workers_rejoin_a_new_master_on_the_same_port(tmp: Path, target: str) -> None:
    port = free_port()
    first = master(tmp, port, target, "--expect-workers", "2", "-u", "2", "-r", "100", "-t", "60")
    workers = [worker(tmp, port, "--master-timeout", "30") for _ in range(2)]
    time.sleep(3)
    first.kill()
    first.communicate()
    second = master(
        tmp,
        port,
        target,
        "--expect-workers",
        "2",
        "--expect-workers-max-wait",
        "20",
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "2",
    )
    code, _out, err = finish(second)
    assert code == 0, err
    assert aggregated(tmp)["num_requests"] > 0
    for w in workers:
        assert finish(w, 20)[0] == 0


def test_garbage_sent_to_the_master_is_ignored(tmp: Path, target: str) -> None:
    port = free_port()
    before = served(target)
    m = master(tmp, port, target, "--expect-workers", "2", "-u", "4", "-r", "100", "-t", "4", "-s", "2")
    workers = [worker(tmp, port) for _ in range(2)]
    wait_listening(port)
    time.sleep(1)
    with socket.create_connection(("127.0.0.1", port)) as raw:  # not even ZeroMQ
        raw.sendall(os.urandom(256))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(f"tcp://127.0.0.1:{port}")
    for frame in (os.urandom(100), msgpack.packb({"a": 1}), msgpack.packb(["stats", [], None]), b""):
        sock.send(frame)
    sock.close()
    ctx.term()
    code, _out, err = finish(m)
    for w in workers:
        finish(w, 20)
    assert code == 0, err
    assert "Ignored a bad message" in err
    assert aggregated(tmp)["num_requests"] == served(target) - before


def test_worker_of_another_protocol_is_refused_clearly(tmp: Path, target: str) -> None:
    port = free_port()
    m = master(
        tmp, port, target, "--expect-workers", "1", "--expect-workers-max-wait", "3", "-u", "1", "-t", "1"
    )
    w = worker(tmp, port, "--protocol-version", "99")
    code, _out, err = finish(w, 20)
    assert code == 1
    assert "refused" in err and "protocol 99" in err and f"protocol {PROTOCOL_VERSION}" in err
    code, _, err = finish(m)
    assert code == 1 and "Gave up waiting for workers" in err


def test_processes_two_equals_a_two_worker_run(tmp: Path, target: str) -> None:
    before = served(target)
    p = horde(
        tmp,
        "--processes",
        "2",
        "--headless",
        "-H",
        target,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "3",
        "-s",
        "2",
        "--json",
        str(tmp / "out.json"),
        *FAST,
    )
    code, out, err = finish(p)
    assert code == 0, err
    assert aggregated(tmp)["num_requests"] == served(target) - before > 20
    table = out.split("Workers:")[-1]
    assert (
        len([line for line in table.splitlines() if "_" in line and ("ready" in line or "running" in line)])
        == 2
    )
    assert json.loads((tmp / "out.json").read_text())["user_count"] == 4

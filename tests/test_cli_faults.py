"""Faults a CI pipeline meets, through the real ``horde`` command: a SIGTERM while stopping, a master killed
with ``kill -9``, a locustfile with a syntax error, users that measure nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.demo_target import running_target

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def horde_proc(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "horde", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


SLOW_TASKS = textwrap.dedent(
    """
    import asyncio
    from horde import HttpUser, task

    class Slow(HttpUser):
        @task
        async def long(self):
            await self.client.get("/items")
            await asyncio.sleep(30)  # a task that would keep a graceful stop waiting for -s 60
    """
)


def test_sigterm_during_the_stop_phase_ends_within_a_second_with_the_json_written(
    tmp_path: Path, target: str
) -> None:
    (tmp_path / "locustfile.py").write_text(SLOW_TASKS)
    out = tmp_path / "out.json"
    proc = horde_proc(
        "--headless",
        "-H",
        target,
        "-u",
        "2",
        "-r",
        "10",
        "-t",
        "2s",
        "-s",
        "60",
        "--json",
        str(out),
        cwd=tmp_path,
    )
    time.sleep(3.5)  # past the run time: the users are now being given their 60 s to finish
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert time.monotonic() - sent < 1.5
    data = json.loads(out.read_text())
    assert data["stats"][-1]["num_requests"] >= 2


def test_kill_9_of_the_master_takes_its_worker_processes_with_it(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(
        textwrap.dedent(
            """
            from horde import HttpUser, task, constant

            class Busy(HttpUser):
                wait_time = constant(0.05)

                @task
                async def go(self):
                    await self.client.get("/items")
            """
        )
    )
    proc = horde_proc(
        "--headless", "-H", target, "-u", "4", "-r", "10", "-t", "60s", "--processes", "2", cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 20
        children: list[psutil.Process] = []
        while time.monotonic() < deadline and len(children) < 2:
            children = psutil.Process(proc.pid).children()
            time.sleep(0.2)
        assert len(children) == 2
        time.sleep(2)
        proc.kill()
        proc.wait(5)
        _, alive = psutil.wait_procs(children, timeout=3)
        assert not alive, f"worker processes outlived their master: {alive}"
    finally:
        for child in psutil.Process().children(recursive=True):
            child.kill()


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text("from horde import User\n\nclass Broken(User:\n    pass\n")
    proc = horde_proc("--headless", "-u", "1", cwd=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "locustfile.py (line 3)" in err
    assert "Traceback" not in err


def test_users_that_send_nothing_fail_the_run_with_the_reason(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(
        textwrap.dedent(
            """
            from horde import HttpUser, task

            class Forgot(HttpUser):
                @task
                async def go(self):
                    self.client.get("/items")  # the classic porting mistake: no await
            """
        )
    )
    proc = horde_proc("--headless", "-H", target, "-u", "2", "-r", "10", "-t", "2s", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "not one request was recorded" in out + err


def test_a_task_that_blocks_the_loop_is_named_with_its_line_and_fix(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(
        textwrap.dedent(
            """
            import time
            from horde import HttpUser, task

            class Sleepy(HttpUser):
                @task
                async def nap(self):
                    await self.client.get("/items")
                    time.sleep(0.2)
            """
        )
    )
    proc = horde_proc("--headless", "-H", target, "-u", "1", "-r", "10", "-t", "2s", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    text = out + err
    assert "locustfile.py:9 (Sleepy.nap): `time.sleep(0.2)` blocked the event loop" in text
    assert "await asyncio.sleep" in text
    summary = out[out.index("Warnings:") :]
    assert "locustfile.py:9" in summary and "x, worst" in summary


def test_a_master_stopped_while_waiting_for_workers_does_not_pass(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text(SLOW_TASKS)
    proc = horde_proc(
        "--master", "--headless", "-H", "http://127.0.0.1:9", "--expect-workers", "2",
        "--master-bind-host", "127.0.0.1", "--master-bind-port", "0",
        cwd=tmp_path,
    )  # fmt: skip
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "Stopped before the test started" in out + err


def test_a_target_that_never_answers_is_not_a_pass(tmp_path: Path) -> None:
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept every connection, read nothing back, answer never
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        (tmp_path / "locustfile.py").write_text(
            textwrap.dedent(
                """
                from horde import HttpUser, task

                class Patient(HttpUser):
                    @task
                    async def wait(self):
                        await self.client.get("/never")
                """
            )
        )
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        proc = horde_proc(
            "--headless",
            "-H",
            url,
            "-u",
            "3",
            "-r",
            "10",
            "-t",
            "2s",
            "--json-file",
            "out.json",
            cwd=tmp_path,
        )
        out, err = proc.communicate(timeout=60)
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()
    assert proc.returncode == 1
    assert "not one was answered" in out + err
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["num_aborted"] >= 3 and data["stats"][-1]["num_requests"] == 0


def test_the_open_files_limit_is_raised_to_the_hard_limit_and_a_shortfall_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import resource

    from horde.cli.common import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        with caplog.at_level(logging.WARNING):
            raise_open_files_limit(100)
        new_soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert new_soft == hard or hard == resource.RLIM_INFINITY
        assert not caplog.records  # 100 users fit
        if hard != resource.RLIM_INFINITY:
            raise_open_files_limit(hard + 1)
            assert "Too many open files" in caplog.text
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

"""``--processes N``: a master and N worker processes on this machine, over the same protocol as a
cluster, so a one-machine run behaves exactly like a distributed one."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from horde.cli.common import PROCESSES_CHILD_ENV, LoadedTest

logger = logging.getLogger("horde.main")

CHILD_EXIT_WAIT = 15.0


def worker_argv(argv: list[str]) -> list[str]:
    """The parent's arguments without --processes (and its value)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--processes":
            skip = True
            continue
        if arg.startswith("--processes="):
            continue
        out.append(arg)
    return out


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it the moment its parent dies (Linux), so a master
    killed with ``kill -9`` never leaves workers loading the target with nobody to stop them."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class WorkerProcesses:
    """Starts worker processes and makes sure none is left behind."""

    def __init__(self, count: int, argv: list[str]) -> None:
        self.count = count
        self.argv = worker_argv(argv)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, master_host: str | None = None, master_port: int | None = None) -> None:
        extra = ["--worker"] if "--worker" not in self.argv else []
        if master_port is not None:
            extra += ["--master-host", master_host or "127.0.0.1", "--master-port", str(master_port)]
        env = {k: v for k, v in os.environ.items() if k != "HORDE_PROCESSES"}
        env[PROCESSES_CHILD_ENV] = "1"
        for _ in range(self.count):
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "horde", *self.argv, *extra], env=env, preexec_fn=_die_with_parent
                )
            )

    def wait(self, timeout: float = CHILD_EXIT_WAIT) -> int:
        """Wait for every worker (terminating stragglers); the worst exit code."""
        deadline = time.monotonic() + timeout
        worst = 0
        for proc in self.procs:
            try:
                code = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("worker process %d did not exit; terminating it", proc.pid)
                proc.terminate()
                try:
                    code = proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
            worst = max(worst, code if code >= 0 else 1)
        return worst

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_processes(options: argparse.Namespace, argv: list[str], loaded: LoadedTest) -> int:
    from horde.cli.common import run_event_loop
    from horde.cli.headless import run_headless
    from horde.cli.webui import run_web

    run_front_end = run_headless if options.headless else run_web

    count = (os.cpu_count() or 1) if options.processes == -1 else options.processes
    workers = WorkerProcesses(count, argv)
    if options.worker:
        return _run_workers_only(workers)
    options.master_bind_host = "127.0.0.1"
    options.master_bind_port = 0
    try:
        code = int(
            run_event_loop(
                run_front_end(
                    options,
                    loaded,
                    expect_workers=count,
                    on_master=lambda port: workers.start("127.0.0.1", port),
                )
            )
        )
        return max(code, workers.wait())
    finally:
        workers.kill()


def _run_workers_only(workers: WorkerProcesses) -> int:
    """Workers only (their master is elsewhere): the first Ctrl-C reaches the workers too and they
    stop gracefully, so keep waiting; a second one kills them."""
    interrupts = 0

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            logger.warning("Killing the worker processes")
            workers.kill()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        workers.start()
        return workers.wait(timeout=float("inf"))
    finally:
        signal.signal(signal.SIGINT, previous)
        workers.kill()

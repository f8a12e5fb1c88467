"""Benchmark targets and the bare reference client used by ``benchmarks/throughput.py``.

A target is an HTTP server answering every request with ``200 ok``: nginx when it is installed (the
fastest thing a load generator can meet on one core), else :func:`serve_builtin`, a minimal uvloop
server written here that answers without parsing more than the end of each request head.

:func:`reference_loop` is the yardstick: a minimal keep-alive client (httptools parser, a
``BufferedProtocol`` reading into one reused buffer, one task per connection) with none of the user
machinery. Its rate, measured in the same session on the same cores, is what makes the other figures
comparable on a noisy machine.

:func:`start_target` yields a :class:`Target` that can also be re-pinned between runs, report the CPU
time its processes used, and (nginx) count the requests it served through ``stub_status``: the
``--processes`` mode of ``throughput.py`` uses these to check horde's counts against the server's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import psutil

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile 400000;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log crit;
events {{ worker_connections 300000; }}  # memory.py and scale.py hold 5,000-100,000 connections
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
{status}    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STATUS_PATH = "/__nginx_status"
STATUS_LOCATION = f"        location = {STATUS_PATH} {{ stub_status; }}\n"


def pinned(cpu: int | None) -> Any:
    """A ``preexec_fn`` that pins the child process to one CPU (None: leave it free)."""
    return pinned_to(None if cpu is None else {cpu})


def pinned_to(cpus: Iterable[int] | None) -> Any:
    """A ``preexec_fn`` that pins the child process (and what it starts later) to a set of CPUs."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        return None
    chosen = set(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


def all_cpus() -> set[int]:
    return (
        set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    )


def tree_cpu_seconds(root: psutil.Process) -> float:
    """User + system CPU time of a process and its descendants, living or already reaped by it."""
    total = 0.0
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        pass
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue  # exited since the listing: its time is in its parent's children_* from now on
        total += cpu_of(t)
    return total


def cpu_of(t: Any) -> float:
    """Seconds of a psutil ``cpu_times()`` result: user + system, with reaped children's."""
    return float(t.user + t.system + t.children_user + t.children_system)


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the target did not listen on port {port} within {timeout:g}s") from None
            time.sleep(0.05)


def has_stub_status(nginx: str) -> bool:
    try:
        proc = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "http_stub_status_module" in proc.stderr + proc.stdout


@dataclass
class Target:
    """A running target: its URL, its process tree, and what it can tell about itself."""

    kind: str  # "nginx" or "builtin"
    desc: str
    url: str
    proc: subprocess.Popen[bytes]
    status: bool  # nginx with stub_status: served() works
    _procs: list[psutil.Process] = field(default_factory=list, repr=False)

    def set_cpus(self, cpus: Iterable[int] | None) -> None:
        """Pin every process of the target to ``cpus`` (None: every CPU this machine offers)."""
        chosen = all_cpus() if cpus is None else set(cpus)
        root = psutil.Process(self.proc.pid)
        for proc in [root, *root.children(recursive=True)]:
            proc.cpu_affinity(sorted(chosen))

    def cpu_seconds(self) -> float:
        """CPU time the target's processes have used so far (the process list is looked up once)."""
        if not self._procs:
            root = psutil.Process(self.proc.pid)
            self._procs = [root, *root.children(recursive=True)]
        try:
            return sum(cpu_of(p.cpu_times()) for p in self._procs)
        except psutil.Error:
            self._procs = []  # a process of the target went away: look again next time
            return tree_cpu_seconds(psutil.Process(self.proc.pid))

    def served(self) -> int | None:
        """Requests the server has read so far (nginx ``stub_status``, this query included), else None."""
        if not self.status:
            return None
        host, _, port = self.url.split("://", 1)[1].partition(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"GET {STATUS_PATH} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        # "Active connections: 1 \nserver accepts handled requests\n 5 5 17 \nReading: ..."
        lines = data.split(b"\r\n\r\n", 1)[-1].decode().splitlines()
        return int(lines[2].split()[2])


@contextmanager
def run_target(kind: str = "auto", cpu: int | None = None) -> Iterator[tuple[str, str]]:
    """Start a target; yields ``(description, url)`` and stops it afterwards.

    ``kind`` is ``nginx``, ``builtin`` or ``auto`` (nginx when ``nginx`` is on PATH or in /usr/sbin).
    """
    with start_target(kind, None if cpu is None else {cpu}) as target:
        yield (target.desc, target.url)


@contextmanager
def start_target(kind: str = "auto", cpus: Iterable[int] | None = None) -> Iterator[Target]:
    """Start a target pinned to ``cpus`` (None: free); yields a :class:`Target`, stops it afterwards."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if kind == "auto":
        kind = "nginx" if nginx else "builtin"
    port = free_port()
    cpus = None if cpus is None else sorted(cpus)
    status = False
    with tempfile.TemporaryDirectory(prefix="horde-bench-") as prefix:
        if kind == "nginx":
            if nginx is None:
                raise RuntimeError("nginx is not installed: apt-get install nginx-light")
            Path(prefix, "tmp").mkdir()
            status = has_stub_status(nginx)
            conf = Path(prefix, "nginx.conf")
            conf.write_text(
                NGINX_CONF.format(prefix=prefix, port=port, status=STATUS_LOCATION if status else "")
            )
            cmd = [nginx, "-p", prefix, "-c", str(conf)]
            desc = "nginx (worker_processes 1, return 200)"
        else:
            cmd = [sys.executable, __file__, "serve", str(port)]
            desc = "builtin uvloop target"
        proc = subprocess.Popen(cmd, preexec_fn=pinned_to(cpus), stdin=subprocess.DEVNULL)
        try:
            wait_listening(port)
            where = f", CPU {','.join(map(str, cpus))}" if cpus is not None else ""
            yield Target(kind, desc + where, f"http://127.0.0.1:{port}", proc, status)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the built-in target ---------------------------------------------------------------------------

_OK = b"HTTP/1.1 200 OK\r\nServer: horde-bench\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class _OkProtocol(asyncio.Protocol):
    """Answers each request head (requests without bodies, as the benchmark sends) with ``200 ok``.

    It counts head terminators instead of parsing, so the target costs as little CPU as possible.
    """

    def __init__(self) -> None:
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        n = data.count(b"\r\n\r\n")
        cut = data.rfind(b"\r\n\r\n")
        self.tail = data[cut + 4 :] if cut >= 0 else data
        if n and self.transport is not None:
            self.transport.write(_OK * n)


def serve_builtin(port: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_OkProtocol, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the bare reference client ---------------------------------------------------------------------


class _RefConn(asyncio.BufferedProtocol):
    """One keep-alive connection of the reference client: completes a future per response."""

    def __init__(self) -> None:
        self.buffer = memoryview(bytearray(65536))
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.parser.feed_data(self.buffer[:nbytes])

    def on_message_complete(self) -> None:
        if self.waiter is not None:
            self.waiter.set_result(None)
            self.waiter = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))


async def reference_loop(url: str, connections: int, seconds: float) -> int:
    """Requests completed by ``connections`` tasks sending ``GET /`` back to back for ``seconds``."""
    loop = asyncio.get_running_loop()
    host, _, port = url.split("://", 1)[1].partition(":")
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: ref\r\n\r\n".encode()
    count = 0
    stop = False

    async def one() -> None:
        nonlocal count
        _, conn = await loop.create_connection(_RefConn, host, int(port))
        assert conn.transport is not None
        while not stop:
            conn.waiter = loop.create_future()
            conn.transport.write(request)
            await conn.waiter
            count += 1
        conn.transport.close()

    tasks = [loop.create_task(one()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # warm up: every connection open and busy
    start = count
    await asyncio.sleep(seconds)
    done = count - start
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return done


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve_builtin(int(sys.argv[2]))
    else:
        print("usage: python benchmarks/_targets.py serve PORT", file=sys.stderr)
        sys.exit(2)

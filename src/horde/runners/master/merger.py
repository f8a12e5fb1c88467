"""The stats merger: a child process that adds the workers' reports up, off the master's event loop.

Why: a master answers heartbeats, re-places users and serves its status from one event loop, and at a few
thousand workers adding their reports up (every histogram bucket of every entry of every report, a
Python loop each) became most of that loop's work; past one core the master fell behind on everything at
once. Here the master hands each decoded report to a child process (one msgpack frame over a private
ZeroMQ PAIR socket) and gets back, a few times a second, one report that sums all of them, which it merges
as it would a worker's. The master's loop then does per report only what it must (sequence numbers, user
counts, exceptions, events); the adding runs on another core.

Exactness: merging is adding counts, so merging the sum of reports equals merging each (histograms are
exact, see :mod:`horde.stats.histogram`). What the master shows lags by at most one push interval
(:data:`PUSH_INTERVAL`), and :meth:`StatsMerger.flush` closes that gap before the final numbers are read.
A ``reset`` travels through the same FIFO socket, so a sum pushed before it is recognised (by its epoch)
and dropped.

Failure: a report the child finds malformed comes back as ``invalid`` and is counted and logged by the
master as it would be without the child. When the socket is full (the child is behind) a report is merged
in the master instead, so nothing waits and nothing is dropped. If the child dies, the master merges
everything itself from then on and logs how many reports the child took with it (an error: the run's
numbers are incomplete).

When: with ``HORDE_STATS_MERGER`` unset (``auto``), the master starts the child once
:data:`AUTO_MIN_WORKERS` workers have registered, if it may use two CPUs or more; below that, merging in
the loop costs too little to be worth a process (and on one CPU the child would only take turns with
it). ``HORDE_STATS_MERGER=1`` starts it with the master, ``=0`` never.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import zmq

from horde.stats.compact import encode_and_reset, merge_report
from horde.stats.entries import RequestStats
from horde.stats.wire import StatsPayloadError

logger = logging.getLogger("horde.runners.master")

ENV_SWITCH = "HORDE_STATS_MERGER"
AUTO_MIN_WORKERS = 300
PUSH_INTERVAL = 0.25  # seconds between the child's sums
QUEUE_LIMIT = 5_000  # about the reports queued to the child before the master merges them itself
BATCH_LIMIT = 256  # reports in one frame to the child at most
BATCH_DELAY = 0.01  # seconds a report may wait for others to share its frame
FLUSH_TIMEOUT = 60.0  # seconds a stop waits for the child's last sum at most...
FLUSH_STALL = 5.0  # ...and without any sum arriving
RECV_POLL = 0.02  # seconds between two looks at what the child sent


def merger_mode() -> str:
    """``"auto"``, ``"on"`` or ``"off"`` from ``HORDE_STATS_MERGER`` (unknown values mean auto)."""
    value = os.environ.get(ENV_SWITCH, "").strip().lower()
    if value in ("1", "on", "true", "yes"):
        return "on"
    if value in ("0", "off", "false", "no"):
        return "off"
    return "auto"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells, else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pack(*items: Any) -> bytes:
    return msgpack.packb(items, use_bin_type=True)


def _unpack(frame: bytes) -> Any:
    return msgpack.unpackb(frame, raw=False, strict_map_key=False)


class StatsMerger:
    """The master's end: hand reports over, take the sums back into ``stats``.

    ``on_invalid(node_id, reason)`` is called for a report the child refused (nothing of it was added);
    ``on_lost(count)`` when reports handed over can no longer reach ``stats`` (the child died or hung).
    """

    def __init__(
        self,
        stats: RequestStats,
        on_invalid: Callable[[str, str], None],
        push_interval: float = PUSH_INTERVAL,
        on_lost: Callable[[int], None] | None = None,
    ) -> None:
        self.stats = stats
        self.on_invalid = on_invalid
        self.on_lost = on_lost
        self.push_interval = push_interval
        self.ready = False  # the child said hello: reports go to it
        self.failed = False  # the child died or could not start: everything is merged here
        self.handed = 0  # reports handed to the child since the last reset
        self.returned = 0  # of those, merged (or refused) and accounted for by a sum
        self.local = 0  # reports merged here while the child was starting or behind
        self.lost = 0  # reports the child took with it when it died
        self._epoch = 0
        self._tokens = itertools.count(1)
        self._flushes: dict[int, asyncio.Future[None]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None
        self._ctx: zmq.Context[Any] | None = None
        # one plain socket, read by polling: a send on a socket that asyncio also waits on can consume
        # the edge-triggered wake-up of a frame that arrived meanwhile, and the reader then sleeps for ever
        self._sync: zmq.Socket[bytes] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._batch: list[tuple[str, Any]] = []  # reports submitted since the last frame to the child

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind the socket and start the child; returns at once (reports merge here until it is ready)."""
        if self._proc is not None or self.failed:
            return
        self._ctx = zmq.Context()
        sock: zmq.Socket[bytes] = self._ctx.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, QUEUE_LIMIT // 16)  # batches (several reports each)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SNDTIMEO, 2000)  # a reset or flush never blocks the loop for longer
        if zmq.has("ipc") and sys.platform != "win32":
            self._dir = tempfile.mkdtemp(prefix="horde-merger-")  # mode 0700: only this user can connect
            endpoint = f"ipc://{self._dir}/s"
            sock.bind(endpoint)
        else:
            port = sock.bind_to_random_port("tcp://127.0.0.1")
            endpoint = f"tcp://127.0.0.1:{port}"
        self._sync = sock
        env = dict(os.environ)
        # the child imports the same horde tree as this process, whatever put it on sys.path
        tree = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (tree, env.get("PYTHONPATH", "")) if p)
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "horde.runners.master._merger_main",
                    endpoint,
                    str(self.push_interval),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to the master's terminal is the master's to handle
            )
        except OSError as e:
            logger.error("Could not start the stats merger process (%s); merging in the master", e)
            self.failed = True
            self._close_socket()
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive(), name="stats-merger-receive"),
            loop.create_task(self._watch(), name="stats-merger-watch"),
        ]
        logger.info("Stats merger process started (pid %d)", self._proc.pid)

    @property
    def active(self) -> bool:
        return self.ready and not self.failed

    def submit(self, node_id: str, payload: Any) -> bool:
        """Hand one report (its ``stats`` payload, packed or decoded) to the child; False: merge it yourself.

        Reports go out in batches, one frame for all those submitted within :data:`BATCH_DELAY`: a ZeroMQ
        send costs about as much as merging a small report (a send per report, or per event-loop turn,
        was 7-8 % of a 5,000-worker master's CPU; reports arrive spread out, one a turn).
        """
        if not self.active or self._sync is None:
            return False
        self._batch.append((node_id, payload))
        self.handed += 1
        if len(self._batch) >= BATCH_LIMIT:
            self._send_batch()
        elif len(self._batch) == 1:
            asyncio.get_running_loop().call_later(BATCH_DELAY, self._send_batch)
        return True

    def _send_batch(self) -> None:
        """Send the reports submitted since the last batch; if the child is behind, merge them here."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self.active and self._sync is not None:
            try:
                self._sync.send(_pack("reports", batch), zmq.NOBLOCK)
                return
            except (zmq.ZMQError, TypeError, ValueError):
                pass  # zmq.Again: the child is behind; merging here keeps its queue bounded
        self.handed -= len(batch)
        self.local += len(batch)
        for node_id, payload in batch:
            try:
                merge_report(self.stats, payload)
            except StatsPayloadError as e:
                self.on_invalid(node_id, str(e))

    def reset(self) -> None:
        """The master's stats were reset: what the child holds, and any sum on its way, is dropped."""
        self._send_batch()  # reports submitted before the reset belong before it
        self._epoch += 1
        self.handed = self.returned = 0
        if self.active and self._sync is not None:
            try:
                self._sync.send(_pack("reset", self._epoch))  # waits (2 s at most) only behind a full queue
            except zmq.ZMQError as e:
                # a child that cannot take a reset would keep its old epoch and every later sum be dropped
                self._give_up(f"it did not take a reset ({e})")

    async def flush(self, timeout: float = FLUSH_TIMEOUT, stall: float = FLUSH_STALL) -> bool:
        """Wait until every report handed over so far is in ``stats``; False if some never will be.

        A child behind a queue of thousands of reports on a busy machine takes a while, so the wait goes on
        as long as its sums keep coming: it gives up after ``stall`` seconds without one, or ``timeout``
        in all (the stop must end; what the child held is then reported missing).
        """
        if not self.active or self._sync is None:
            return not self.handed or self.returned >= self.handed
        token = next(self._tokens)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._flushes[token] = fut
        began = last_progress = loop.time()
        seen = self.returned
        self._send_batch()
        try:
            self._sync.send(_pack("flush", token))
            while not fut.done():
                await asyncio.wait([fut], timeout=0.25)
                now = loop.time()
                if self.returned != seen:
                    seen, last_progress = self.returned, now
                if not fut.done() and (now - last_progress > stall or now - began > timeout):
                    self._give_up(
                        f"it did not answer a flush within {now - began:.0f} s "
                        f"({now - last_progress:.0f} s without a sum)"
                    )
                    return False
            return not self.failed or self.lost == 0
        except zmq.ZMQError as e:
            self._give_up(f"it could not be asked to flush ({e})")
            return False
        finally:
            self._flushes.pop(token, None)

    async def close(self) -> None:
        """Stop the child (after a flush, if the caller wants the last sums) and release everything."""
        self._send_batch()  # the caller flushed first if it wants them counted
        proc, self._proc = self._proc, None
        self.ready = False
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if proc is not None:
            if proc.poll() is None and self._sync is not None:
                try:
                    self._sync.send(_pack("quit"), zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
            for _ in range(40):
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._close_socket()

    def _close_socket(self) -> None:
        if self._sync is not None:
            self._sync.close(linger=0)
            self._sync = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # ---- what the child sends ------------------------------------------------------------------------
    async def _receive(self) -> None:
        """Take what the child sent, every :data:`RECV_POLL` seconds (a sum comes 4 times a second)."""
        while True:
            sock = self._sync
            while sock is not None:
                try:
                    frame = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    self._on_frame(_unpack(frame))
                except Exception:  # a bug here must not stop the sums from being read
                    logger.exception("Bad frame from the stats merger")
            await asyncio.sleep(RECV_POLL)

    def _on_frame(self, msg: Any) -> None:
        kind = msg[0]
        if kind == "hello":
            self.ready = True
            assert self._sync is not None
            # resets made while it was starting were not sent: it starts at the master's epoch
            self._sync.send(_pack("reset", self._epoch))
            logger.info("Stats merger ready: worker reports are added up in process %d", msg[1])
        elif kind == "invalid":
            _, epoch, node_id, reason = msg
            if epoch == self._epoch:
                self.returned += 1
            self.on_invalid(node_id, reason)
        elif kind in ("sum", "flushed"):
            token, epoch, count, payload = msg[1], msg[2], msg[3], msg[4]
            if epoch == self._epoch:
                self.returned += count
                if count:
                    merge_report(self.stats, payload)
            if kind == "flushed":
                fut = self._flushes.get(token)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    def _give_up(self, why: str) -> None:
        """Stop using a child that is alive but not doing its job: kill it, merge here from now on."""
        if self.failed:
            return
        self.failed, self.ready = True, False
        self._lose(f"The stats merger was stopped: {why}; merging in the master from now on.")
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def _lose(self, what: str) -> None:
        lost = self.lost = self.handed - self.returned
        logger.error("%s %d worker report(s) it held are missing from the numbers", what, lost)
        if lost and self.on_lost is not None:
            self.on_lost(lost)
        for fut in self._flushes.values():
            if not fut.done():
                fut.set_result(None)

    async def _watch(self) -> None:
        """Notice the child's death: merge everything here from then on, and say what was lost."""
        proc = self._proc
        assert proc is not None
        while proc.poll() is None:
            await asyncio.sleep(0.5)
        if self._proc is not proc or self.failed:
            return  # closed on purpose, or given up on already
        self.failed, self.ready = True, False
        self._lose(
            f"The stats merger process exited (code {proc.returncode}); merging in the master from now on."
        )


# ---- the child ----------------------------------------------------------------------------------------
def _fresh() -> RequestStats:
    # no entry or error limits here: the master applies its own when it merges the sums
    return RequestStats(use_response_times_cache=False, max_entries=None, max_errors=1_000_000)


def serve(endpoint: str, push_interval: float) -> None:
    """The child's loop: merge reports, push a sum every ``push_interval`` s, answer flush/reset/quit."""
    parent = os.getppid()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    sock.send(_pack("hello", os.getpid()))
    stats, epoch, merged = _fresh(), 0, 0
    next_push = time.monotonic() + push_interval
    while True:
        wait_ms = max(0, int((next_push - time.monotonic()) * 1000)) + 1
        if sock.poll(wait_ms):
            while time.monotonic() < next_push:  # drain, but push on time even under a flood
                try:
                    msg = _unpack(sock.recv(zmq.NOBLOCK))
                except zmq.Again:
                    break
                kind = msg[0]
                if kind == "reports":
                    for node_id, payload in msg[1]:
                        try:
                            merge_report(stats, payload)
                        except StatsPayloadError as e:
                            sock.send(_pack("invalid", epoch, node_id, str(e)))
                        else:
                            merged += 1
                elif kind == "flush":
                    sock.send(_pack("flushed", msg[1], epoch, merged, encode_and_reset(stats)))
                    merged = 0
                elif kind == "reset":
                    stats, epoch, merged = _fresh(), msg[1], 0
                elif kind == "quit":
                    sock.close()
                    ctx.term()
                    return
        now = time.monotonic()
        if now >= next_push:
            if merged:
                sock.send(_pack("sum", 0, epoch, merged, encode_and_reset(stats)))
                merged = 0
            next_push = now + push_interval
            if os.getppid() != parent:  # the master is gone
                return

"""Simulated horde workers for ``benchmarks/master_scale.py``: many cheap clients in one process.

Each :class:`SimWorker` speaks the real master/worker protocol (``horde.rpc.protocol``) over the real
transport: a ZeroMQ DEALER with ``IDENTITY = worker_id`` for everything, plus a second connection with
identity ``worker_id + "|hb"`` that only sends heartbeats. What a worker does is reduced to what the master
sees: it registers (``client_ready`` → ``ack``), heartbeats every ``heartbeat_interval`` seconds, reports a
20-entry stats payload every ``stats_interval`` seconds, answers ``spawn`` with ``spawning`` and
``spawning_complete`` (keeping the absolute per-class counts the master assigns), and answers ``stop``
and ``quit``. No users run.

To stay cheap at a thousand workers (two sockets each) the fleet does not use ``zmq.asyncio``: sockets are
plain non-blocking ZeroMQ sockets, each main socket's notification fd is registered with the event loop
(``loop.add_reader``) and drained on wake-up, and one ticker task walks time slots of 10 ms, sending the
heartbeats and stats reports that fall into each slot (every worker gets a random phase, as real workers
started at different moments would).

The heartbeat "echo delay" is measured per worker: the send time of each heartbeat is queued, and the
master's ``heartbeat`` reply (which arrives on the worker's main socket) is matched to the oldest one.
That is the master's processing time plus two local hops plus this process's own scheduling delay (the
ticker's lateness is reported as ``sim_lag`` so the two can be told apart).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack
import zmq

import horde
from horde._version import PROTOCOL_VERSION
from horde.stats import RequestStats
from horde.stats.compact import encode_and_reset, pack_counts, pack_report

HEARTBEAT_SUFFIX = "|hb"
# A ZeroMQ socket costs two descriptors (its TCP connection and its mailbox's eventfd), so two per
# worker cost four: 5,000 workers need 20,000, the hard limit on the machine this was measured on,
# and the last ten could not connect. The heartbeat channel only ever sends, so it is a plain TCP
# socket speaking ZMTP 3.0 (the NULL mechanism, a DEALER with the "|hb" identity) instead: the master
# sees the same peer, and a worker costs three descriptors.
_ZMTP_GREETING = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32


def _zmtp_property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + len(value).to_bytes(4, "big") + value


def _zmtp_frame(body: bytes, command: bool = False) -> bytes:
    flags = 0x04 if command else 0x00
    if len(body) < 256:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 0x02]) + len(body).to_bytes(8, "big") + body


class RawDealer:
    """A send-only ZMTP 3.0 DEALER over one non-blocking TCP socket (one descriptor instead of two).

    ``send`` raises ``zmq.Again`` when the kernel cannot take the whole frame now, as a DEALER at its
    high-water mark would (the heartbeat is then skipped, as before). What the peer sends (its
    greeting and READY) is read and dropped when the socket becomes readable.
    """

    __slots__ = ("_pending", "sock")

    def __init__(self, host: str, port: int, identity: bytes) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setblocking(False)
        ready = (
            b"\x05READY" + _zmtp_property(b"Socket-Type", b"DEALER") + _zmtp_property(b"Identity", identity)
        )
        self._pending = _ZMTP_GREETING + _zmtp_frame(ready, command=True)
        self._flush()

    def _flush(self) -> bool:
        while self._pending:
            try:
                sent = self.sock.send(self._pending)
            except BlockingIOError:
                return False
            self._pending = self._pending[sent:]
        return True

    def send(self, data: bytes, flags: int = 0) -> None:
        if not self._flush():
            raise zmq.Again()
        frame = _zmtp_frame(data)
        try:
            sent = self.sock.send(frame)
        except BlockingIOError:
            raise zmq.Again() from None
        if sent < len(frame):
            self._pending = frame[sent:]  # the rest goes out before the next frame

    def discard_input(self) -> None:
        try:
            while self.sock.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self, linger: int = 0) -> None:
        self.sock.close()


TICK = 0.01  # seconds per ticker slot
ECHO_GIVE_UP = 10.0  # a heartbeat unanswered this long is counted as lost, not matched later


def _pack(msg_type: str, data: Any, node_id: str | None) -> bytes:
    raw: bytes = msgpack.packb((msg_type, data, node_id), use_bin_type=True)
    return raw


def _sockopt(sock: zmq.Socket[bytes], option: int) -> int:
    """An integer socket option (the notification fd, the pending events)."""
    return cast(int, sock.getsockopt(option))


def make_stats_templates(
    count: int = 8, entries: int = 20, requests: int = 400, seed: int = 1, protocol: int = PROTOCOL_VERSION
) -> list[dict[str, Any]]:
    """``count`` different real stats payloads, ``entries`` names each, in the form ``protocol`` speaks.

    Protocol 2 and later send entries as arrays (``horde.stats.compact.encode_and_reset``, what a worker of
    this tree sends); protocol 1 as maps (``RequestStats.serialize_and_reset``, for a ``--before-src`` master).
    """
    rng = random.Random(seed)
    templates = []
    for _ in range(count):
        stats = RequestStats(use_response_times_cache=False)
        for i in range(requests):
            stats.record("GET", f"/e{i % entries}", rng.lognormvariate(3.0, 0.8), 100, None)
        templates.append(_report(stats, protocol))
    return templates


def _report(stats: RequestStats, protocol: int) -> dict[str, Any]:
    return encode_and_reset(stats) if protocol >= 2 else stats.serialize_and_reset()


def payload_requests(payload: dict[str, Any]) -> int:
    """The requests a payload of either form reports."""
    total = payload["stats_total"]
    return int(total[4] if "entry_format" in payload else total["num_requests"])


def refresh_payload(template: dict[str, Any], now: float, interval: float) -> dict[str, Any]:
    """The template with its timestamps and per-second counters moved to the last ``interval`` seconds.

    A real report covers ``interval`` seconds, so its requests are spread over that many per-second keys.
    """
    if not payload_requests(template):
        return template
    secs = list(range(int(now) - max(1, round(interval)) + 1, int(now) + 1))

    def per_sec(n: int) -> dict[int, int]:
        share, rest = divmod(n, len(secs))
        return {sec: share + (1 if i < rest else 0) for i, sec in enumerate(secs)}

    def entry(e: dict[str, Any]) -> dict[str, Any]:
        e = dict(e)
        e["start_time"] = now - interval
        e["last_request_timestamp"] = now
        e["num_reqs_per_sec"] = per_sec(e["num_requests"])
        e["num_fail_per_sec"] = {}
        return e

    def row(r: list[Any]) -> list[Any]:
        r = list(r)
        r[2], r[3] = now - interval, now  # start_time, last_request_timestamp
        r[12] = pack_counts(per_sec(r[4]))  # num_reqs_per_sec
        r[13] = b""
        return r

    refresh: Callable[[Any], Any] = row if "entry_format" in template else entry
    return {
        **template,
        "stats": [refresh(e) for e in template["stats"]],
        "stats_total": refresh(template["stats_total"]),
        "errors": {},
    }


@dataclass
class Latencies:
    """Heartbeat echo delays (seconds) collected during one phase of the benchmark."""

    samples: list[float] = field(default_factory=list)
    lost: int = 0

    def summary(self) -> dict[str, float]:
        s = sorted(self.samples)
        if not s:
            return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan"), "lost": self.lost}
        return {
            "n": len(s),
            "p50": s[len(s) // 2],
            "p99": s[min(len(s) - 1, int(len(s) * 0.99))],
            "max": s[-1],
            "lost": self.lost,
        }


class SimWorker:
    """One simulated worker: two DEALER sockets and the little state the master can observe."""

    __slots__ = (
        "acked",
        "alive",
        "counts",
        "epoch",
        "hb",
        "hb_slot",
        "id",
        "index",
        "last_sent",
        "main",
        "pending_hb",
        "quit",
        "ready_sent_at",
        "requests_reported",
        "retry_delay",
        "spawns",
        "state",
        "stats_seq",
        "stats_slot",
        "vanished",
    )

    def __init__(self, index: int, worker_id: str, main: zmq.Socket[bytes], hb: RawDealer) -> None:
        self.index = index
        self.id = worker_id
        self.main = main
        self.hb = hb
        self.acked = False
        self.alive = True
        self.vanished = False  # made to vanish by vanish()
        self.quit = False  # the master said quit (and it answered)
        self.epoch: str | None = None
        self.state = "ready"
        self.counts: dict[str, int] = {}
        self.stats_seq = 0
        self.requests_reported = 0  # requests in the stats reports handed to ZeroMQ
        self.pending_hb: deque[float] = deque()
        self.spawns: list[tuple[float, int]] = []  # (receipt time, seq) of every spawn message
        self.last_sent = 0.0
        self.ready_sent_at = 0.0
        self.retry_delay = 0.5
        self.hb_slot = 0
        self.stats_slot = 0

    @property
    def user_count(self) -> int:
        return sum(self.counts.values())


class SimFleet:
    """``n`` simulated workers connected to ``host:port``; drive it from a running asyncio loop.

    >>> fleet = SimFleet("127.0.0.1", 5557, 100)
    >>> fleet.start()
    >>> await fleet.wait(lambda: fleet.acked == 100, 30)
    """

    def __init__(
        self,
        host: str,
        port: int,
        n: int,
        heartbeat_interval: float = 1.0,
        stats_interval: float = 3.0,
        templates: list[dict[str, Any]] | None = None,
        seed: int = 0,
        protocol: int = PROTOCOL_VERSION,
    ) -> None:
        self.host = host
        self.port = port
        self.endpoint = f"tcp://{host}:{port}"
        self.n = n
        self.heartbeat_interval = heartbeat_interval
        self.stats_interval = stats_interval
        self.protocol = protocol  # what the master under test speaks (an older tree's may differ)
        self.templates = templates or make_stats_templates(protocol=protocol)
        self.empty = _report(RequestStats(use_response_times_cache=False), protocol)
        self.rng = random.Random(seed)
        self.context = zmq.Context(io_threads=1)
        self.context.set(zmq.MAX_SOCKETS, max(1024, n + 64))
        self.workers: list[SimWorker] = []
        self.hb_slots: list[list[SimWorker]] = [[] for _ in range(max(1, round(heartbeat_interval / TICK)))]
        self.stats_slots: list[list[SimWorker]] = [[] for _ in range(max(1, round(stats_interval / TICK)))]
        self.phase = "connect"
        self.latencies: dict[str, Latencies] = {}
        self.counters: dict[str, int] = {}
        self.acked = 0
        self.all_acked_at: float | None = None
        self.started_at = 0.0
        self.wall_offset = time.time() - time.perf_counter()  # perf_counter + this = time.time()
        self.sim_lag_max: dict[str, float] = {}
        self.errors: list[str] = []
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._host = socket.gethostname().replace("_", "-")[:20] or "sim"

    # ---- setup ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open every socket, register every worker, and start the ticker (heartbeats, stats, retries)."""
        self._loop = asyncio.get_running_loop()
        self.started_at = time.perf_counter()
        for i in range(self.n):
            wid = f"{self._host}_{uuid.uuid4().hex}"
            main = self.context.socket(zmq.DEALER)
            main.setsockopt(zmq.LINGER, 0)
            main.setsockopt(zmq.IDENTITY, wid.encode())
            main.connect(self.endpoint)
            hb = RawDealer(self.host, self.port, (wid + HEARTBEAT_SUFFIX).encode())
            self._loop.add_reader(hb.sock.fileno(), hb.discard_input)
            w = SimWorker(i, wid, main, hb)
            w.hb_slot = self.rng.randrange(len(self.hb_slots))
            w.stats_slot = self.rng.randrange(len(self.stats_slots))
            self.hb_slots[w.hb_slot].append(w)
            self.stats_slots[w.stats_slot].append(w)
            self.workers.append(w)
            self._loop.add_reader(_sockopt(main, zmq.FD), self._drain, w)
        for w in self.workers:
            self._send_ready(w, time.perf_counter())
        self._ticker = self._loop.create_task(self._tick_forever(), name="sim-ticker")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        for w in self.workers:
            if w.alive:
                self._close_worker(w)
        self.context.term()

    def _close_worker(self, w: SimWorker) -> None:
        w.alive = False
        assert self._loop is not None
        try:
            self._loop.remove_reader(_sockopt(w.main, zmq.FD))
        except zmq.ZMQError:
            pass
        self._loop.remove_reader(w.hb.sock.fileno())
        w.main.close(linger=0)
        w.hb.close(linger=0)

    # ---- bookkeeping helpers ------------------------------------------------------------------------
    def count(self, what: str, n: int = 1) -> None:
        self.counters[what] = self.counters.get(what, 0) + n

    def lat(self, phase: str | None = None) -> Latencies:
        phase = phase or self.phase
        got = self.latencies.get(phase)
        if got is None:
            got = self.latencies[phase] = Latencies()
        return got

    @property
    def alive(self) -> list[SimWorker]:
        return [w for w in self.workers if w.alive]

    def users(self, workers: list[SimWorker] | None = None) -> int:
        return sum(w.user_count for w in (self.alive if workers is None else workers))

    async def wait(self, condition: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
        """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True

    # ---- sending -------------------------------------------------------------------------------------
    def _send_main(self, w: SimWorker, raw: bytes, now: float | None = None) -> bool:
        try:
            w.main.send(raw, zmq.NOBLOCK)
        except zmq.Again:
            self.count("main send queue full")
            return False
        w.last_sent = time.perf_counter() if now is None else now
        return True

    def _wire(self, payload: dict[str, Any]) -> Any:
        """The report as this tree's workers send it: packed from protocol 2 on."""
        return pack_report(payload) if self.protocol >= 2 else payload

    def _ready_message(self, w: SimWorker) -> bytes:
        data = {
            "version": horde.__version__,
            "protocol": self.protocol,
            "user_classes_count": dict(w.counts),
        }
        return _pack("client_ready", data, w.id)

    def _send_ready(self, w: SimWorker, now: float) -> None:
        w.ready_sent_at = now
        self._send_main(w, self._ready_message(w))
        self._drain(w)  # a send may have consumed the fd's wake-up for messages already queued

    def _send_heartbeat(self, w: SimWorker, now: float) -> None:
        payload = {
            "state": w.state,
            "current_cpu_usage": 1.0,
            "current_memory_usage": 50_000_000,
            "loop_lag": 0.0,
            "user_count": w.user_count,
        }
        try:
            w.hb.send(_pack("heartbeat", payload, w.id), zmq.NOBLOCK)
        except zmq.Again:
            self.count("heartbeat send queue full")
            return
        w.last_sent = now
        pending = w.pending_hb
        while pending and now - pending[0] > ECHO_GIVE_UP:
            pending.popleft()
            self.lat().lost += 1
        pending.append(now)

    def _send_stats(self, w: SimWorker, now: float) -> None:
        # like a real worker, a worker without users has nothing to report but still reports
        template = self.templates[w.index % len(self.templates)] if w.counts else self.empty
        w.stats_seq += 1
        data = {
            "seq": w.stats_seq,
            "stats": self._wire(refresh_payload(template, time.time(), self.stats_interval)),
            "user_classes_count": dict(w.counts),
            "user_count": w.user_count,
            "exceptions": [],
            "logs": [],
        }
        if self._send_main(w, _pack("stats", data, w.id), now):
            w.requests_reported += payload_requests(template)
        self._drain(w)

    # ---- the ticker ----------------------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        n_hb, n_stats = len(self.hb_slots), len(self.stats_slots)
        while True:
            late = loop.time() - (start + k * TICK)
            if late < 0:
                await asyncio.sleep(-late)
            elif late > self.sim_lag_max.get(self.phase, 0.0):
                self.sim_lag_max[self.phase] = late
            now = time.perf_counter()
            for w in self.hb_slots[k % n_hb]:
                if w.alive and w.acked and not w.quit:
                    self._send_heartbeat(w, now)
            for w in self.stats_slots[k % n_stats]:
                if w.alive and w.acked and not w.quit:
                    self._send_stats(w, now)
            if k % 10 == 0 and self.acked < self.n:
                for w in self.workers:
                    if w.alive and not w.acked and now - w.ready_sent_at >= w.retry_delay:
                        w.retry_delay = min(w.retry_delay * 2, 5.0)
                        self.count("client_ready retries")
                        self._send_ready(w, now)
            k += 1

    # ---- receiving -----------------------------------------------------------------------------------
    def _drain(self, w: SimWorker) -> None:
        sock = w.main
        if not w.alive:
            return
        try:
            while _sockopt(sock, zmq.EVENTS) & zmq.POLLIN:
                self._handle(w, sock.recv(zmq.NOBLOCK))
                if not w.alive:
                    return
        except zmq.ZMQError as e:
            if w.alive:
                self.errors.append(f"{w.id}: receive failed: {e}")

    def _handle(self, w: SimWorker, raw: bytes) -> None:
        if w.quit:
            self.count("messages after quit")
            return
        now = time.perf_counter()
        try:
            msg_type, data, _ = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception as e:
            self.errors.append(f"{w.id}: undecodable frame from the master: {e}")
            return
        if msg_type == "heartbeat":
            if w.pending_hb:
                self.lat().samples.append(now - w.pending_hb.popleft())
            else:
                self.count("unmatched heartbeat echoes")
        elif msg_type == "spawn":
            self._on_spawn(w, data, now)
        elif msg_type == "ack":
            if not w.acked:
                w.acked = True
                self.acked += 1
                if self.acked == self.n:
                    self.all_acked_at = now
            w.epoch = data.get("epoch")
        elif msg_type == "spawning_complete":
            self.count("spawning_complete broadcasts")
        elif msg_type == "stop":
            w.counts = {}
            w.state = "ready"
            self._send_main(w, _pack("client_stopped", {"stats_seq": w.stats_seq}, w.id))
        elif msg_type == "quit":
            self.count("quit received")
            self._send_main(w, _pack("quit", {"stats_seq": w.stats_seq}, w.id))
            w.quit = True  # a real worker exits now: nothing more is sent or answered
        elif msg_type == "reregister":
            self.count("reregister received")
            self._send_main(w, self._ready_message(w))
        elif msg_type == "refuse":
            self.errors.append(f"{w.id}: refused by the master: {data}")
        else:
            self.count(f"unexpected {msg_type!r}")

    def _on_spawn(self, w: SimWorker, data: dict[str, Any], now: float) -> None:
        seq = int(data["seq"])
        w.spawns.append((now, seq))
        self._send_main(w, _pack("spawning", {"seq": seq}, w.id))
        for name, n in data["user_classes_count"].items():
            if n:
                w.counts[name] = int(n)
            else:
                w.counts.pop(name, None)
        w.state = "running"
        self._send_main(
            w, _pack("spawning_complete", {"seq": seq, "user_classes_count": dict(w.counts)}, w.id)
        )

    # ---- faults ---------------------------------------------------------------------------------------
    def vanish(self, fraction: float) -> tuple[list[SimWorker], float]:
        """Close every ``1/fraction``-th worker's sockets at once; returns them and the moment it happened."""
        step = max(1, round(1 / fraction))
        victims = [w for w in self.workers if w.alive and w.index % step == step - 1]
        at = time.perf_counter()
        for w in victims:
            w.vanished = True
            self._close_worker(w)
        return victims, at

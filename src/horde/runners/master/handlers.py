"""What each worker message does on the master, and workers joining, going missing and coming back.

Handlers run in the controller task, one message at a time, after the reader validated the payload
against its schema (``horde.rpc.protocol``): a handler never sees a payload of the wrong shape.
"""

from __future__ import annotations

import logging
from typing import Any

from horde._version import PROTOCOL_VERSION, __version__
from horde.load import ARRIVALS_ENDED, SHAPE_ENDED
from horde.load.closed import KIND as USERS
from horde.rpc.protocol import Message
from horde.runners.base import QUIT_BY_USER_CODE, RunnerState
from horde.runners.master.controller import ControllerMixin
from horde.runners.master.core import MISSING_FORGET_AFTER
from horde.runners.master.liveness import sweep
from horde.runners.nodes import WorkerNode
from horde.stats import StatsPayloadError
from horde.stats.compact import merge_report, unpack_report

logger = logging.getLogger("horde.runners.master")

# ends a worker may report that are the test finishing as planned (horde.session.NORMAL_ENDS; the third is
# horde.env.ITERATIONS_DONE, a layer above the runners): those keep their reason, every other stop a
# worker asks for names it, and the session counts it as an early end (exit code 1)
BEHIND_RECHECK = 0.1  # seconds between liveness sweeps while the reader has frames waiting
# at least this long between two sweeps: workers lost together (their deadlines spread over one heartbeat
# interval) are re-placed in ~20 re-plans, not one per 10 ms; a loss is declared at most 50 ms late
LIVENESS_COALESCE = 0.05
# the states a heartbeat may report (a worker's stopping/cleanup beats leave the master's view as it is)
_BEAT_STATES = {s.value: s for s in (RunnerState.READY, RunnerState.SPAWNING, RunnerState.RUNNING)}
NORMAL_ENDS = frozenset({ARRIVALS_ENDED, SHAPE_ENDED, "the iteration limit was reached", QUIT_BY_USER_CODE})


class HandlersMixin(ControllerMixin):
    async def _on_message(self, msg: Message, link: str | None = None) -> None:
        node_id = msg.node_id
        assert node_id is not None
        link = link or node_id  # replies to a worker we do not (yet) know go back on the link it used
        node = self.nodes.get(node_id)
        if msg.type == "client_ready":
            await self._on_client_ready(node_id, node, msg.data, link)
            return
        if msg.type == "fetch_locustfile":
            await self._ship_locustfile(link, msg.data)
            return
        if node is None:
            if msg.type not in ("quit", "client_stopped"):
                # a worker of an earlier master (or one we forgot): ask it to introduce itself again,
                # unless this master is on its way out; a stats report it sent is resent after that
                reply = "quit" if self._quitting() else "reregister"
                data: dict[str, Any] = {"epoch": self.epoch}
                if msg.type == "stats" and isinstance(msg.data, dict):
                    data["stats_seq"] = msg.data.get("seq")
                await self._send(link, Message(reply, data))
            return
        node.last_seen = self._now()
        if node.state == RunnerState.MISSING and msg.type != "quit":
            await self._worker_returned(node)
        handler = getattr(self, f"_msg_{msg.type}", None)
        if handler is not None:
            await handler(node, msg.data)
        else:
            self._handle_custom(msg)

    def _quitting(self) -> bool:
        return self._quit_task is not None

    # ---- joining -------------------------------------------------------------------------------------
    async def _on_client_ready(
        self, node_id: str, node: WorkerNode | None, data: dict[str, Any], link: str | None = None
    ) -> None:
        link = link or node_id
        if self._quitting() and node is None:
            await self._send(link, Message("quit", {}))
            return
        if data["protocol"] != PROTOCOL_VERSION:
            await self._refuse(link, data)
            return
        if node is not None and not self._same_worker(node, data, link):
            return
        running = {k: v for k, v in data["user_classes_count"].items() if v}
        if node is not None:
            await self._known_worker_ready(node, running)
        else:
            await self._new_worker(node_id, running, data.get("session"), link)

    def _same_worker(self, node: WorkerNode, data: dict[str, Any], link: str) -> bool:
        """Is this registration the worker we know (a reconnect), not another peer using its id?

        The worker proves it with the session secret it registered with. A worker that registered
        without one (an older or simulated worker) can be taken over only once it is missing.
        """
        session = data.get("session")
        proven = node.session is not None and session == node.session
        if not proven and not (node.session is None and node.state == RunnerState.MISSING):
            self.dropped_messages["identity takeover"] += 1
            logger.warning(
                "Refused a connection claiming to be worker %s: %s; the worker keeps its link",
                node.id,
                "wrong session token" if session else "no session token",
            )
            return False
        if link != (node.connection or node.id):
            logger.info("Worker %s reconnected on a new link", node.id)
            node.connection = link
            self.transport.route(node.id, link)
        return True

    async def _ship_locustfile(self, link: str, data: dict[str, Any]) -> None:
        """A worker without a locustfile asks for ours (the transport already authenticated it)."""
        if data["protocol"] != PROTOCOL_VERSION:
            await self._refuse(link, data)
            return
        if self.bundle is None:
            logger.error("A worker asked for the locustfile: %s", self.bundle_problem)
            await self._send(link, Message("refuse", {"reason": self.bundle_problem or "no locustfile"}))
            return
        logger.info(
            "Sending the locustfile (%d files, %.1f kB, sha256 %s…) to %s",
            len(self.bundle.files),
            self.bundle.size / 1000,
            self.bundle.sha256[:12],
            link,
        )
        await self._send(link, Message("locustfile", self.bundle.to_wire()))

    async def _refuse(self, node_id: str, data: dict[str, Any]) -> None:
        reason = (
            f"protocol mismatch: this master speaks horde protocol {PROTOCOL_VERSION} (horde {__version__}), "
            f"the worker speaks protocol {data['protocol']} (horde {data['version']})"
        )
        logger.error("Refused worker %s: %s", node_id, reason)
        refusal = {"reason": reason, "master_version": __version__, "master_protocol": PROTOCOL_VERSION}
        await self._send(node_id, Message("refuse", refusal))

    async def _new_worker(
        self, node_id: str, running: dict[str, int], session: str | None = None, link: str | None = None
    ) -> None:
        node = self.nodes.add(node_id, self._now())
        node.user_classes_count = running
        node.session = session
        if link is not None and link != node_id:
            node.connection = link
            self.transport.route(node_id, link)
        await self._send(node_id, Message("ack", {"index": node.index, "epoch": self.epoch}))
        self._changed()
        self._use_merger()
        logger.info("Worker %s connected (%d workers)", node_id, len(self.nodes.active))
        self.environment.events.worker_connect.fire(client_id=node_id)
        if self._testing() and self._driver is not None:
            if running:
                logger.info("Adopting worker %s and its %d running users", node_id, node.user_count)
                node.target = dict(running)  # the next targets are sent as changes against what it runs
            self._driver.add_worker(node, self._now())
            await self._rebalance()
        elif running:
            # users left over from a test this master does not run: they must stop
            logger.info(
                "Worker %s still runs %d users of an earlier test; stopping them", node_id, node.user_count
            )
            await self._send(node_id, Message("stop", {}))

    async def _known_worker_ready(self, node: WorkerNode, running: dict[str, int]) -> None:
        """A worker we know introduced itself again (it reconnected): keep its slot, re-assert its target."""
        node.last_seen = self._now()
        await self._send(node.id, Message("ack", {"index": node.index, "epoch": self.epoch}))
        if node.state == RunnerState.MISSING:
            await self._worker_returned(node)
            return
        node.user_classes_count = running
        if running == node.target:
            return
        if self._testing():
            if self._driver is not None and self._driver.planner.kind == USERS:
                await self._send_full_target(node, node.target)  # other kinds keep what they were told
        elif running:
            # no test here: a fence would start one on the worker (with zero users, but "running")
            await self._send(node.id, Message("stop", {}))

    # ---- heartbeats and state ------------------------------------------------------------------------
    async def _msg_heartbeat(self, node: WorkerNode, data: dict[str, Any]) -> None:
        self._on_heartbeat(node, data)

    def _on_heartbeat(self, node: WorkerNode, data: dict[str, Any]) -> None:
        """Record a heartbeat and echo it at once (called from the reader: the hot path)."""
        state = _BEAT_STATES.get(data["state"])
        if state is not None and node.state != RunnerState.MISSING:
            if node.state != state:
                self._changed()
            node.state = state
        node.cpu_usage = float(data["current_cpu_usage"])
        node.memory_usage = int(data["current_memory_usage"])
        node.loop_lag = float(data["loop_lag"])
        node.last_heartbeat = now = self._clock.time()
        if node.cpu_usage > 90 and not node.cpu_warning_emitted:
            node.cpu_warning_emitted = True
            logger.warning(
                "Worker %s exceeded the CPU threshold (%.0f%%); its numbers may be distorted",
                node.id,
                node.cpu_usage,
            )
        self.environment.events.heartbeat_sent.fire(client_id=node.id, timestamp=now)
        self.transport.send_nowait(node.id, self._heartbeat_reply)

    async def _msg_stop_test(self, node: WorkerNode, data: dict[str, Any]) -> None:
        reason = data["reason"]
        normal = reason in NORMAL_ENDS
        (logger.info if normal else logger.error)("Worker %s stopped the test: %s", node.id, reason)
        if self._testing():
            self.stop_test(reason if normal else f"worker {node.id}: {reason}")

    async def _msg_spawning(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if node.state != RunnerState.SPAWNING:
            self._changed()
        node.state = RunnerState.SPAWNING

    async def _msg_spawning_complete(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if node.state != RunnerState.RUNNING:
            self._changed()
        node.state = RunnerState.RUNNING
        node.spawn_seq_done = max(node.spawn_seq_done, data["seq"])
        node.user_classes_count = self._reconciled(node, data["user_classes_count"])
        if node.spawn_seq_done >= node.spawn_seq_sent:
            self._unconfirmed.discard(node.id)
        await self._check_ramp_acks()

    # ---- stats reports -------------------------------------------------------------------------------
    async def _msg_stats(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if not self._next_report(node, data["seq"]):
            return
        if data.get("stats_generation", self._stats_generation) < self._stats_generation:
            self.dropped_messages["stats from before a reset"] += 1
            node.user_classes_count = self._reconciled(node, data["user_classes_count"])
            return
        merger, report = self._merger, data["stats"]
        if merger is None or not merger.submit(node.id, report):
            try:
                merge_report(self.environment.stats, report)
            except StatsPayloadError as e:
                self._drop("invalid", f"stats from {node.id}: {e}")
                return
        node.user_classes_count = self._reconciled(node, data["user_classes_count"])
        self._take_exceptions_and_logs(node, data)
        events = self.environment.events
        if type(report) is bytes and events.worker_report.listeners:
            data = _WorkerReport(data)  # decoded only if a listener reads data["stats"]
        events.worker_report.fire(client_id=node.id, data=data)

    def _reconciled(self, node: WorkerNode, reported: dict[str, int]) -> dict[str, int]:
        """The user counts a worker reports, checked against the target it was sent.

        Fewer users than the target is real (a ramp in progress, users that failed to start) and is
        shown as reported. More than the target once the worker confirmed its latest spawn (or between
        tests) is not believed: it is logged and counted at the target.
        """
        counts = {k: v for k, v in reported.items() if v}
        if self._testing():
            if self._driver is None or self._driver.planner.kind != USERS:
                return counts  # other plan kinds size their users themselves
            if node.spawn_seq_done < node.spawn_seq_sent:
                return counts  # a step down in flight: the extra users are stopping
        over = {k: v for k, v in counts.items() if v > node.target.get(k, 0)}
        if not over:
            return counts
        node.count_mismatches += 1
        if node.count_mismatches == 1 or node.count_mismatches % 100 == 0:
            logger.warning(
                "Worker %s reports %s, more than the %s it was sent; counting its target (%d such reports)",
                node.id,
                _fmt(over),
                _fmt({k: node.target.get(k, 0) for k in over}),
                node.count_mismatches,
            )
        return {k: min(v, node.target.get(k, 0)) for k, v in counts.items() if node.target.get(k, 0)}

    def _next_report(self, node: WorkerNode, seq: int) -> bool:
        """False for a retried report (already merged); warn about reports that never arrived."""
        if seq <= node.stats_seq:
            self.dropped_messages["duplicate stats"] += 1
            return False
        if seq > node.stats_seq + 1 and node.stats_seq >= 0:
            logger.warning(
                "Stats reports %d..%d of worker %s never arrived", node.stats_seq + 1, seq - 1, node.id
            )
        node.stats_seq = seq
        return True

    def _take_exceptions_and_logs(self, node: WorkerNode, data: dict[str, Any]) -> None:
        for row in data["exceptions"]:
            if isinstance(row, dict) and isinstance(row.get("traceback"), str):
                self.log_exception(
                    node.id, str(row.get("msg", "")), row["traceback"], int(row.get("count", 1))
                )
        if data["logs"]:
            lines = [str(line) for line in data["logs"]]
            self.environment.worker_logs.setdefault(node.id, []).extend(lines)
            for line in lines:
                logger.warning("[%s] %s", node.id, line)

    def _check_final_report(self, node: WorkerNode, data: dict[str, Any]) -> None:
        if data["stats_seq"] > node.stats_seq:
            logger.warning(
                "Worker %s sent %d stats reports that never arrived; their numbers are missing",
                node.id,
                data["stats_seq"] - node.stats_seq,
            )

    # ---- leaving -------------------------------------------------------------------------------------
    async def _msg_client_stopped(self, node: WorkerNode, data: dict[str, Any]) -> None:
        self._check_final_report(node, data)
        node.user_classes_count = {}
        node.target = {}
        if node.state != RunnerState.READY:
            self._changed()
        node.state = RunnerState.READY
        self._acknowledged(node.id)
        if self._pending is not None and not self._pending.waiting:
            await self._finish_pending()

    async def _msg_quit(self, node: WorkerNode, data: dict[str, Any]) -> None:
        self._check_final_report(node, data)
        self.nodes.remove(node.id)
        self.transport.forget(node.id)
        self._changed()
        self._forget_from_plan([node.id])
        # len(nodes), not len(nodes.active): counting the active ones is O(workers) per quit, O(N²) a quit
        logger.info("Worker %s quit (%d workers left)", node.id, len(self.nodes))
        if self._pending is not None:
            self._acknowledged(node.id)
            if not self._pending.waiting:
                await self._finish_pending()
            return
        await self._after_worker_left()

    async def _after_worker_left(self) -> None:
        if self._testing():
            if not self.nodes.active:
                logger.warning("The last worker is gone; stopping the test")
                self.stop_test("the last worker is gone")
                return
            await self._rebalance()

    def _forget_from_plan(self, node_ids: list[str]) -> None:
        """Take workers out of the running plan: it re-plans once for all of them, not once per worker.

        The planner learns every loss before the driver is told of any: the driver re-plans an idle plan
        when it hears of them, so it then trims the pending step once for all of them (a planner's
        remove_worker of a worker it no longer has is a no-op).
        """
        for node_id in node_ids:
            self._unconfirmed.discard(node_id)  # a worker that left confirms nothing
        driver = self._driver
        if driver is None:
            return
        now = self._now()
        for node_id in node_ids:
            driver.planner.remove_worker(node_id)
        driver.remove_workers(node_ids, now)

    # ---- liveness ------------------------------------------------------------------------------------
    async def _check_liveness(self, now: float) -> None:
        """Mark every worker silent for longer than the liveness window missing, then re-place once.

        All losses found in one sweep are handled together: one rebalance, not one per worker, so a rack
        going down does not keep the master from answering the others.
        """
        window = self.heartbeat_interval * self.heartbeat_liveness
        # frames still waiting to be read may be the very heartbeats that prove a worker alive: judge
        # silence only up to the moment the reader had read everything (an overloaded master must not
        # declare its whole cluster missing because it fell behind). A reader that is behind but reading
        # serves every worker's queue in turn, so it may judge up to one window before its last read: a
        # master that stays behind still notices a worker that is gone (after two windows of silence),
        # while one whose reader stalled (a long pause, nothing read) declares no one
        behind = self.transport.has_pending()
        seen_until = max(min(now, self._caught_up), min(now, self._last_read) - window) if behind else now
        found = sweep(self.nodes, seen_until, window, self.heartbeat_interval, MISSING_FORGET_AFTER)
        for node in found.forgotten:
            logger.info(
                "Forgetting worker %s (missing for %.0f s)", node.id, now - (node.missing_since or now)
            )
            self.nodes.remove(node.id)
            self.transport.forget(node.id)
        # behind, look again soon (not at once: the controller would do nothing but sweep)
        gap = BEHIND_RECHECK if behind else min(LIVENESS_COALESCE, self.heartbeat_interval / 10)
        self._next_liveness_check = max(found.next_due, now + gap)
        if found.lost:
            await self._workers_lost(found.lost, now)

    async def _workers_lost(self, nodes: list[WorkerNode], now: float) -> None:
        for node in nodes:
            logger.warning(
                "Worker %s missing: silent for %.1f s; re-placing its %d users",
                node.id,
                now - node.last_seen,
                node.user_count,
            )
            node.state = RunnerState.MISSING
            node.missing_since = now
            node.user_classes_count = {}
            node.target = {}
            self._changed()
            self._acknowledged(node.id)
        self._forget_from_plan([node.id for node in nodes])
        if self._pending is not None:
            if not self._pending.waiting:
                await self._finish_pending()
            return
        await self._after_worker_left()

    async def _worker_returned(self, node: WorkerNode) -> None:
        """A missing worker spoke again: fence it first (it may not run users it was not given)."""
        logger.info("Worker %s is back; telling it its target before it may run users again", node.id)
        node.state = RunnerState.READY
        node.missing_since = None
        self._changed()
        if not (self._testing() and self._driver is not None):
            await self._send(node.id, Message("stop", {}))
            return
        await self._send_full_target(node, {})
        self._driver.add_worker(node, self._now())
        await self._rebalance()


class _WorkerReport(dict[str, Any]):
    """A stats message's data as ``worker_report`` listeners get it: ``data["stats"]`` (or ``.get``) is the
    report decoded, as it was on the worker, decoded on first read only (horde's own listener reads other
    keys; decoding thousands of reports a second for it was 3 % of a 5,000-worker master)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        if key == "stats" and type(value) is bytes:
            try:
                value = unpack_report(value)
            except StatsPayloadError:
                return value  # refused by the merge (or the merger) already
            super().__setitem__(key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no users"

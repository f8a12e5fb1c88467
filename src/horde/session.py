"""One test from request to result, for every front end: the headless console, the web UI, library code.

A :class:`TestRun` wraps an Environment and its runner (local or master; the session never asks which).
It owns what a test means beyond running users: the run-time timer, the choice between a load shape and a
user count, waiting for ``--expect-workers``, the once-per-second stats tick that feeds the history, the
outputs and the ``stats_tick`` event, and the verdict (:class:`RunResult` with its exit code).

    run = TestRun(env, outputs=[ConsoleOutput()])
    await run.open()
    run.start(StartRequest(user_count=100, spawn_rate=10, run_time=60))
    await run.wait()
    result = await run.close()

Front ends read :meth:`TestRun.status` (a frozen, JSON-ready :class:`RunStatus` whose ``version`` changes
whenever anything in it changes, so a UI can push only changes; built once a tick and shared, rebuilt at once
when the run's or a worker's state changes) and :attr:`TestRun.history`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from horde.env import ITERATIONS_DONE
from horde.exceptions import ConfigurationError
from horde.load import (
    ARRIVALS_ENDED,
    SHAPE_ENDED,
    ClosedUsers,
    LoadModel,
    ShapeModel,
    arrival_stats,
    format_duration,
)
from horde.runners.base import QUIT_BY_USER_CODE
from horde.runners.status import WorkerStatus
from horde.stats.history import StatsHistory
from horde.stats.snapshot import StatsSnapshot, take_snapshot
from horde.thresholds.evaluate import THRESHOLD_EXIT_CODE, Verdict
from horde.thresholds.output import ThresholdOutput, no_data_warnings

if TYPE_CHECKING:
    from horde.env import Environment
    from horde.reports.output import Output
    from horde.runners.base import Runner
    from horde.stats import RequestStats

logger = logging.getLogger(__name__)

#: Seconds between two stats ticks (snapshot → history → outputs → ``stats_tick``).
TICK_INTERVAL = 1.0

_ACTIVE_STATES = ("spawning", "running", "cleanup", "stopping")

#: Runner stop reasons that are a planned end, not a failure of the run (the shape said so).
NORMAL_ENDS = frozenset({SHAPE_ENDED, ITERATIONS_DONE, ARRIVALS_ENDED, QUIT_BY_USER_CODE})


@dataclass(frozen=True)
class StartRequest:
    """What a front end asks for when it starts a test (the form, ``POST /swarm``, the flags).

    ``user_count``/``spawn_rate`` drive the closed user-count model; with a load shape in the locustfile
    (and ``use_shape`` left true) the shape decides instead. ``run_time`` is in seconds (``None``: until
    stopped). ``user_classes`` restricts the run to those classes (the class picker).
    """

    user_count: int | None = None
    spawn_rate: float | None = None
    host: str | None = None
    run_time: float | None = None
    user_classes: tuple[str, ...] | None = None
    use_shape: bool = True
    #: any other load model (an arrival rate, a test-only model): it decides instead of the fields above
    model: LoadModel | None = None

    def problems(self, env: Environment) -> list[str]:
        """Every reason this request cannot start, each one sentence (empty when it can)."""
        out: list[str] = []
        shaped = self.use_shape and env.shape_class is not None
        if not shaped:
            if self.user_count is not None and (
                isinstance(self.user_count, bool)
                or not isinstance(self.user_count, int)
                or self.user_count < 0
            ):
                out.append(f"user count must be a whole number >= 0, got {self.user_count!r}")
            if self.spawn_rate is not None and not _positive(self.spawn_rate):
                out.append(f"spawn rate must be a number > 0, got {self.spawn_rate!r}")
        if self.run_time is not None and not _positive(self.run_time):
            out.append(f"run time must be a number of seconds > 0, got {self.run_time!r}")
        if self.host is not None and self.host and "://" not in self.host:
            out.append(f"host {self.host!r} needs a scheme, e.g. http://{self.host}")
        if self.user_classes is not None:
            known = env.user_classes_by_name()
            unknown = [n for n in self.user_classes if n not in known]
            if unknown:
                out.append(
                    f"unknown user class(es) {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}"
                )
            elif not self.user_classes:
                out.append("select at least one user class")
        return out


@dataclass(frozen=True)
class RunStatus:
    """Everything a front end shows about the run now; JSON-ready through :meth:`to_dict`.

    :meth:`TestRun.status` hands every caller the same object until it goes stale (see there): the
    per-worker rows and the user totals are as of the last tick, the other fields as of the last call.
    """

    state: str
    user_count: int
    user_classes_count: dict[str, int]
    target_user_count: int
    spawn_rate: float
    host: str | None
    start_time: float | None
    run_time: float | None
    stop_reason: str | None
    workers: tuple[WorkerStatus, ...]
    warnings: tuple[str, ...]
    load: str | None  # the load model's one-sentence description
    distributed: bool = False  # a master: the users run on the workers listed in ``workers``
    #: moves when a build differs from the previous one in any field, per-worker CPU and heartbeat included
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "user_count": self.user_count,
            "user_classes_count": dict(self.user_classes_count),
            "target_user_count": self.target_user_count,
            "spawn_rate": self.spawn_rate,
            "host": self.host,
            "start_time": self.start_time,
            "run_time": self.run_time,
            "stop_reason": self.stop_reason,
            "workers": [w.to_dict() for w in self.workers],
            "worker_count": len(self.workers),
            "warnings": list(self.warnings),
            "load": self.load,
            "distributed": self.distributed,
            "version": self.version,
        }

    def _content(self) -> tuple[Any, ...]:
        """What ``version`` tracks: every field but the version itself."""
        return (
            self.state,
            self.user_count,
            tuple(sorted(self.user_classes_count.items())),
            self.target_user_count,
            self.spawn_rate,
            self.host,
            self.start_time,
            self.run_time,
            self.stop_reason,
            tuple(self.workers),
            self.warnings,
            self.load,
            self.distributed,
        )


class _LiveFields(NamedTuple):
    """What :meth:`TestRun.status` reads on every call to tell whether the shared status is still current."""

    state: Any
    worker_changes: int | None
    target_user_count: int
    spawn_rate: float
    host: str | None
    start_time: float | None
    run_time: float | None
    stop_reason: str | None
    warnings: tuple[str, ...]
    model: LoadModel | None


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run, handed to every output's ``stop`` and to the CLI for the exit code."""

    start_time: float
    end_time: float
    user_count: int
    user_classes_count: dict[str, int]
    stats: RequestStats
    snapshot: StatsSnapshot
    history: StatsHistory
    exceptions: tuple[dict[str, Any], ...]
    workers: tuple[WorkerStatus, ...]
    warnings: tuple[str, ...]
    stop_reason: str | None
    exit_code: int
    options: argparse.Namespace | None = None
    host: str | None = None
    locustfile: str | None = None
    spawn_rate: float | None = None
    run_time: float | None = None
    thresholds: tuple[Verdict, ...] = ()
    markers: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    #: figures of the load model beyond the request stats, e.g. ``{"arrival": {...}}`` for an open model
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max(0.0, self.end_time - self.start_time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "user_count": self.user_count,
            "user_classes_count": dict(self.user_classes_count),
            "stats": self.snapshot.to_dict(),
            "exceptions": [_exception_row(row) for row in self.exceptions],
            "workers": [w.to_dict() for w in self.workers],
            "warnings": list(self.warnings),
            "stop_reason": self.stop_reason,
            "exit_code": self.exit_code,
            "host": self.host,
            "locustfile": self.locustfile,
            "thresholds": [v.to_dict() for v in self.thresholds],
            **self.figures,
        }


def _exception_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "count": row.get("count", 0),
        "msg": row.get("msg", ""),
        "traceback": row.get("traceback", ""),
        "nodes": sorted(row.get("nodes", ())),
    }


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


class TestRun:
    """One test session over an Environment whose runner already exists (``env.create_*_runner()``).

    ``outputs`` receive ``start(run)`` at :meth:`open`, ``on_tick(snapshot)`` every tick while a test runs,
    and ``stop(result)`` exactly once at :meth:`close` — also after Ctrl-C, SIGTERM or a StopTest, because
    the CLI always closes the run. An output that raises is logged and counted as an unhandled error; the
    others still run.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        env: Environment,
        *,
        outputs: Iterable[Output] = (),
        tick_interval: float = TICK_INTERVAL,
        locustfile: str | None = None,
        thresholds: ThresholdOutput | None = None,
    ) -> None:
        if env.runner is None:
            raise ConfigurationError("TestRun needs an environment with a runner (env.create_local_runner())")
        self.env = env
        self.runner: Runner = env.runner
        self.outputs: list[Output] = list(outputs)
        #: the threshold checker: its verdicts go into RunResult.thresholds and decide exit code 3
        self.thresholds = thresholds
        if thresholds is not None:
            if thresholds not in self.outputs:
                self.outputs.insert(0, thresholds)
            if thresholds.on_abort is None:
                thresholds.on_abort = lambda reason: self.stop(reason)
        self.tick_interval = tick_interval
        self.locustfile = locustfile
        self.history = StatsHistory(clock=env.clock)
        self.latest: StatsSnapshot | None = None
        self.markers: list[dict[str, Any]] = []
        self.run_time: float | None = None
        self.started_at: float | None = None
        self.request: StartRequest | None = None
        self.model: LoadModel | None = None  # the model of the running (or last) test
        self.stop_reason: str | None = None  # the session's own reason (run time); the runner has its own
        self._timer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        # the shared status (see status()): what it was built from, at which tick and when
        self._status: RunStatus | None = None
        self._status_live: _LiveFields | None = None
        self._status_tick = -1
        self._status_built = -math.inf
        self._ticks = 0  # ticks taken: a new tick makes the shared status stale
        self._version = 0
        self._opened = False
        self._closed: RunResult | None = None
        self._was_active = False
        self._peak_users = 0  # most users seen running at a tick of the current test
        self._warning_sources: list[Callable[[], list[str]]] = []
        # the open model's figures (dropped iterations, scheduling lag), summed over workers on a master
        self.arrivals = arrival_stats(env)
        self.add_warning_source(lambda: self.arrivals.summary_warnings() if self.arrivals.active else [])

    @property
    def options(self) -> argparse.Namespace | None:
        return self.env.parsed_options

    def add_warning_source(self, source: Callable[[], list[str]]) -> None:
        """Lines ``source()`` returns join the run's warnings (status, summary, reports), e.g. the
        blocking-call detector's findings."""
        self._warning_sources.append(source)

    def _warnings(self) -> list[str]:
        lines = list(self.runner.summary_warnings())
        aborted = self.env.stats.num_aborted
        if aborted:
            lines.append(
                f"{aborted} request(s) were still in flight when their users stopped: counted as aborted, not "
                "as answers or failures of the target (raise --stop-timeout to let them finish)"
            )
        for source in self._warning_sources:
            lines.extend(source())
        return lines

    # ---- lifecycle --------------------------------------------------------------------------------
    async def open(self) -> None:
        """Start the runner's background work, the stats tick, and every output."""
        if self._opened:
            return
        self._opened = True
        self.runner.start_background()
        for output in self.outputs:
            self._call(output, "start", self)
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="stats-tick")

    async def wait_for_workers(self, count: int, max_wait: float | None = None) -> bool:
        """Wait until ``count`` workers are ready (True at once for a local run); False after ``max_wait``."""
        return await self.runner.wait_for_workers(count, max_wait)

    def start(self, request: StartRequest) -> None:
        """Start a test (or re-target a running one): every problem is raised at once, before any change."""
        problems = request.problems(self.env)
        if problems:
            raise ConfigurationError("; ".join(problems))
        if self.runner.state == "stopping" or self.runner.state == "cleanup":
            raise ConfigurationError("the test is stopping; start again once it has stopped")
        env = self.env
        fresh = self.runner.state not in ("spawning", "running")
        if request.host is not None and request.host:
            env.host = request.host
        self.request = request
        self.stop_reason = None
        if fresh:
            self.history.clear()
            self.markers.clear()
            self.started_at = env.clock.time()
            self._peak_users = 0
            env.prepare_run()  # the run's class and task selection, before the model is built from it
        model = self.model_for(request)
        options = env.parsed_options
        if fresh and options is not None and hasattr(options, "run_time"):
            # the run time travels to the workers with the options, so a worker that loses its master
            # stops by itself after it, however the test was started (flags, web form, API)
            options.run_time = request.run_time
        if fresh:
            logger.info("Starting: %s", model.describe())
        if isinstance(model, ClosedUsers):  # Locust's line, which users grep for
            logger.info("Ramping to %d users at a rate of %g per second", model.user_count, model.spawn_rate)
        self.runner.start_load(model)
        self.model = model
        self._mark("start" if fresh else "edit", model.describe())
        if not isinstance(model, ShapeModel):  # a shape decides when it ends (its tick returns None)
            self._arm_timer(request.run_time)

    def model_for(self, request: StartRequest) -> LoadModel:
        """The load model a request asks for: its own, the locustfile's shape, or closed user counts."""
        env = self.env
        if request.model is not None:
            return request.model
        if request.use_shape and env.shape_class is not None:
            return ShapeModel(
                env.shape_class,
                env.user_classes,
                run_time=request.run_time,
                dispatcher_class=env.dispatcher_class,
            )
        return ClosedUsers(
            env.user_classes,
            request.user_count if request.user_count is not None else 1,
            request.spawn_rate or 1.0,
            classes=list(request.user_classes) if request.user_classes is not None else None,
            run_time=request.run_time,
            dispatcher_class=env.dispatcher_class,
        )

    def edit(self, user_count: int, spawn_rate: float) -> None:
        """Change the user count of a running test (keeps its run time, host and class selection)."""
        base = self.request or StartRequest()
        self.start(
            StartRequest(
                user_count=user_count,
                spawn_rate=spawn_rate,
                host=base.host,
                run_time=None,  # the running timer keeps going; an edit does not restart it
                user_classes=base.user_classes,
                use_shape=False,
            )
        )

    def stop(self, reason: str | None = None) -> asyncio.Future[None]:
        """Stop the test (running tasks may finish within stop_timeout); the run can be started again."""
        self._cancel_timer()
        if reason is not None:
            self.stop_reason = reason
        self._mark("stop", reason or "stopped")
        return self.runner.stop()

    def reset_stats(self) -> None:
        """Zero the statistics and the exception table now (``GET /stats/reset``), as Locust does."""
        self.env.stats.reset_all()
        self.runner.exceptions.clear()
        self._mark("reset", "statistics reset")
        self.env.events.reset_stats.fire()

    def hurry(self) -> None:
        """Stop at once: running tasks are not allowed to finish (a second Ctrl-C)."""
        self.runner.hurry()

    async def wait(self) -> None:
        """Wait until the current test has stopped (its run time ran out, a shape ended, a StopTest…)."""
        await self.runner.wait_stopped()

    async def close(self, *, exit_code: int | None = None, gave_up: str | None = None) -> RunResult:
        """End the run: quit the runner, take the final tick, fire ``quitting``, then hand the result to
        every output (exactly once; later calls return the same result).

        ``quitting`` fires before the verdict, so a listener may still set ``environment.process_exit_code``
        (a common Locust pattern). An output that fails while writing turns a passing exit code into 2.
        """
        if self._closed is not None:
            return self._closed
        self._cancel_timer()
        self.runner.monitor.sample_now()  # the final reading: a short saturated run is still named
        try:
            await self.runner.quit()
        finally:
            if self._ticker is not None:
                self._ticker.cancel()
                await asyncio.gather(self._ticker, return_exceptions=True)
            self.tick()  # the final snapshot: outputs' last rows equal the final totals exactly
            await self.env.events.quitting.fire_async(environment=self.env, reverse=True)
            result = self.result(gave_up=gave_up, exit_code=exit_code)
            failed = sum(not self._call(output, "stop", result) for output in self.outputs)
            if failed and result.exit_code == 0:
                result = replace(result, exit_code=2)
            self._closed = result
        return result

    # ---- the timer ----------------------------------------------------------------------------------
    def _arm_timer(self, run_time: float | None) -> None:
        if run_time is None:
            return
        self._cancel_timer()
        self.run_time = float(run_time)
        logger.info("Run time limit set to %s", format_duration(self.run_time))
        self._timer = asyncio.get_running_loop().create_task(self._run_time_limit(run_time), name="run-time")

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task() and not timer.done():
            timer.cancel()

    async def _run_time_limit(self, seconds: float) -> None:
        # a deadline on the monotonic clock, checked at every wake-up (at least once a second): a task that
        # blocks the loop delays the stop by at most that one blocking slice, never by the time the loop's
        # cached clock fell behind (uvloop keeps its own "now" per iteration)
        clock = self.env.clock
        deadline = clock.monotonic() + seconds
        while (remaining := deadline - clock.monotonic()) > 0:
            await clock.sleep(min(remaining, 1.0))
        self._timer = None
        logger.info("--run-time limit reached, shutting down")
        self.stop_reason = "the run time limit was reached"
        self._mark("stop", self.stop_reason)
        await self.runner.stop()

    # ---- ticks ---------------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        clock = self.env.clock
        while True:
            began = clock.monotonic()
            active = self.runner.state in _ACTIVE_STATES
            if active or self._was_active:
                self.tick()
            self._was_active = active
            await clock.sleep(self.tick_interval - (clock.monotonic() - began))

    def tick(self) -> StatsSnapshot:
        """Take one snapshot and feed it to the history, the outputs and ``stats_tick`` (public so tests and
        front ends can force one)."""
        self._ticks += 1
        classes = _user_classes_count(self.runner)
        snapshot = take_snapshot(
            self.env.stats,
            user_count=sum(classes.values()),
            user_classes_count=classes,
            now=self.env.clock.time(),
        )
        self.latest = snapshot
        self._peak_users = max(self._peak_users, snapshot.user_count)
        self.history.append(snapshot)
        for output in self.outputs:
            self._call(output, "on_tick", snapshot)
        self.env.events.stats_tick.fire(environment=self.env, snapshot=snapshot)
        return snapshot

    def _call(self, output: Output, method: str, arg: Any) -> bool:
        try:
            getattr(output, method)(arg)
        except Exception as e:
            self.env.events.unhandled_errors += 1
            logger.error("%s output failed (%s): %s", type(output).__name__, method, e)
            logger.debug("output failure", exc_info=True)
            return False
        return True

    # ---- views ---------------------------------------------------------------------------------------
    def status(self) -> RunStatus:
        """The run as a front end shows it; ``version`` moves whenever any field changes.

        One status is shared by every caller (``/api/status``, the web UI's push, the tick's outputs) until
        it goes stale: at the next tick, once a tick interval has passed without one (no test running), or
        at once when a field that is cheap to read changes — the run's state, the set or state of the
        workers (``worker_state_changes`` on a master), targets, host, times, stop reason, warnings, model.
        So the per-worker figures (users, CPU, memory, loop lag, last heartbeat) and the user totals are read
        once a tick: at 5,000 workers a row per worker costs milliseconds, and every worker's heartbeat
        changes its row every second anyway. ``version`` counts the builds whose fields (all of them, the
        per-worker ones included) differ from the previous build's, so an unchanged rebuild keeps it.
        """
        live = self._live()
        cached = self._status
        if (
            cached is not None
            and live == self._status_live
            and self._status_tick == self._ticks
            and self.env.clock.monotonic() - self._status_built < self.tick_interval
        ):
            return cached
        return self._build_status(live)

    def _live(self) -> _LiveFields:
        """The fields read at every :meth:`status` call: cheap, and a change in any of them is news."""
        runner = self.runner
        return _LiveFields(
            state=runner.state,
            worker_changes=getattr(runner, "worker_state_changes", None),
            target_user_count=runner.target_user_count,
            spawn_rate=runner.spawn_rate,
            host=self.env.host,
            start_time=self.started_at,
            run_time=self.run_time,
            stop_reason=self._stop_reason(),
            warnings=tuple(self._warnings()),
            model=self.model,
        )

    def _build_status(self, live: _LiveFields) -> RunStatus:
        runner = self.runner
        classes = _user_classes_count(runner)
        status = RunStatus(
            state=str(live.state),
            user_count=sum(classes.values()),
            user_classes_count=classes,
            target_user_count=live.target_user_count,
            spawn_rate=live.spawn_rate,
            host=live.host,
            start_time=live.start_time,
            run_time=live.run_time,
            stop_reason=live.stop_reason,
            workers=self._worker_rows(),
            warnings=live.warnings,
            load=live.model.describe() if live.model is not None else None,
            distributed=runner.distributed,
        )
        previous = self._status
        if previous is None or previous._content() != status._content():
            self._version += 1
        status = replace(status, version=self._version)
        self._status = status
        self._status_live = live
        self._status_tick = self._ticks
        self._status_built = self.env.clock.monotonic()
        return status

    def _worker_rows(self) -> tuple[WorkerStatus, ...]:
        """The runner's rows, with each worker's share of an open model when one runs (the rate split)."""
        rows = tuple(self.runner.worker_statuses())
        shares = self.arrivals.workers if self.arrivals.active else {}
        if not shares:
            return rows
        return tuple(w.with_load(_share_text(shares[w.id])) if w.id in shares else w for w in rows)

    def result(self, *, gave_up: str | None = None, exit_code: int | None = None) -> RunResult:
        """The run's outcome now (final once :meth:`close` returned)."""
        runner = self.runner
        env = self.env
        snapshot = self.latest or self.tick()
        warnings = self._warnings()
        verdict = self._verdict_problems(snapshot)
        warnings[:0] = ([gave_up] if gave_up else []) + verdict
        verdicts = tuple(self.thresholds.evaluate(snapshot, env.stats)) if self.thresholds is not None else ()
        warnings += no_data_warnings(verdicts)
        start = runner.test_started_at or self.started_at or env.clock.time()
        code = (
            exit_code if exit_code is not None else self.exit_code(gave_up=bool(gave_up), verdicts=verdicts)
        )
        request = self.request
        return RunResult(
            start_time=start,
            end_time=env.clock.time(),
            user_count=runner.final_user_classes_total(),
            user_classes_count=dict(runner.final_user_classes_count or runner.user_classes_count),
            stats=env.stats,
            snapshot=snapshot,
            history=self.history,
            exceptions=tuple(runner.exceptions.values()),
            workers=self._worker_rows(),
            warnings=tuple(warnings),
            stop_reason=self._stop_reason(),
            exit_code=code,
            options=env.parsed_options,
            host=env.host,
            locustfile=self.locustfile,
            spawn_rate=request.spawn_rate if request else None,
            run_time=self.run_time,
            markers=tuple(self.markers),
            thresholds=verdicts,
            figures={"arrival": self.arrivals.figures()} if self.arrivals.active else {},
        )

    def exit_code(self, *, gave_up: bool = False, verdicts: tuple[Verdict, ...] = ()) -> int:
        """The verdict as a process exit code, in this order of precedence.

        1. a code set by user code (``environment.process_exit_code``);
        2. ``1`` when the run never started because workers did not come (``--expect-workers-max-wait``);
        3. ``3`` when a ``--threshold`` was breached: the gate the user asked for comes first;
        4. ``--exit-code-on-error`` (default 1) when a task raised, or a request failed — except that with
           thresholds configured and all of them passing, failed requests count only through them
           (``fail_ratio<1%`` means some failures are acceptable; add ``failures==0`` to refuse any);
        5. ``2`` when a listener, an output or horde itself hit an unhandled error (after failures, as in
           Locust);
        6. ``1`` when the test ended early for a reason that was not the user's (a StopTest, the last
           worker lost, users that could not start) or when users ran but not one request was recorded:
           a run that measured nothing or stopped early is never a pass;
        7. ``0``.
        """
        env = self.env
        if env.process_exit_code is not None:
            return int(env.process_exit_code)
        if gave_up:
            return 1
        if any(v.ok is False for v in verdicts):
            return THRESHOLD_EXIT_CODE
        thresholds_passed = bool(verdicts) and all(v.ok for v in verdicts)
        failed_requests = env.stats.total.num_failures > 0 and not thresholds_passed
        if failed_requests or self.runner.exceptions:
            options = env.parsed_options
            return int(getattr(options, "exit_code_on_error", 1) if options is not None else 1)
        if env.events.unhandled_errors:
            return 2
        if self._verdict_problems(self.latest):
            return 1
        return 0

    def _verdict_problems(self, snapshot: StatsSnapshot | None) -> list[str]:
        """Why this run cannot pass although nothing failed: it ended early, or it measured nothing."""
        problems = []
        reason = self.runner.stop_reason
        if reason and reason not in NORMAL_ENDS:
            problems.append(f"The test ended early: {reason}")
        requests = snapshot.total.num_requests if snapshot is not None else self.env.stats.total.num_requests
        aborted = self.env.stats.num_aborted
        if self._peak_users > 0 and requests == 0 and aborted:
            problems.append(
                f"{aborted} request(s) were sent and not one was answered before the users stopped: the "
                "target accepted them but never responded (see network_timeout on the user class)"
            )
        elif self._peak_users > 0 and requests == 0:
            problems.append(
                f"{self._peak_users} user(s) ran but not one request was recorded. Usual causes: a task "
                "left as a plain `def` (make it `async def`), a client call without `await`, or a task "
                "that never calls the client (report custom work with events.request.fire)."
            )
        return problems

    def _stop_reason(self) -> str | None:
        return self.runner.stop_reason or self.stop_reason

    def _mark(self, kind: str, text: str) -> None:
        self.markers.append({"time": self.env.clock.time(), "kind": kind, "text": text})


def _user_classes_count(runner: Runner) -> dict[str, int]:
    """The runner's users per class, a copy. Their total is its ``user_count`` (a runner defines it as this
    sum), so callers add them up instead of reading that too: on a master each read sums every worker."""
    return dict(runner.user_classes_count)


def _share_text(row: dict[str, Any]) -> str:
    """``12.5/s, pool 4 of 20`` from a worker's arrival-rate figures."""
    return f"{row.get('rate', 0.0):g}/s, pool {row.get('pool', 0)} of {row.get('max_users', 0)}"

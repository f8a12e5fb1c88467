"""The ``"arrival-rate"`` plan kind in one process: a pacer makes arrivals, a pool of users runs them.

* :class:`ArrivalApplier` (registered for the kind) reads a payload (this process's share of the schedule
  and of the pool limits), keeps the pool at ``pre_allocated`` users, and runs a pacer task that sleeps on
  the environment's clock until each arrival and hands it to a free user of the class the weighted picker
  chose. No free user: a user still running ``on_start`` takes it when ready, else the pool grows by one
  (up to ``max_users``), else the arrival is **dropped and counted**, with one warning per test.
* Pool users are the locustfile's own classes, run by the runner's UserGroup (so they count, stop within
  stop_timeout and are killed by a second Ctrl-C like closed users). Each is an instance of a subclass made
  per class (same name) whose task loop waits for arrivals instead of running tasks with ``wait_time``:
  the user keeps its client, cookies and ``on_start`` state between iterations.
* :class:`ArrivalStats` (one per environment, :func:`arrival_stats`) holds the figures: iterations started,
  dropped iterations, scheduling lag (how late iterations started, a histogram), and records each request
  of an iteration a second time, timed from the iteration's *intended* start, as ``<name> (from intended
  start)`` (same method), on its entry only (the Aggregated total counts each request once). Workers add
  their figures to their stats report (``report_to_master``); the master sums them (``worker_report``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import weakref
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from horde.exceptions import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopTest, StopUser
from horde.load.arrival import ARRIVALS_ENDED, KIND, profile_from_wire
from horde.load.arrival_schedule import ArrivalSchedule, RateProfile
from horde.load.registry import LoadHost, register_kind
from horde.stats.histogram import Histogram
from horde.user.task import DefaultTaskSet
from horde.user.users import WAITING, User

if TYPE_CHECKING:
    from horde.env import Environment

logger = logging.getLogger(__name__)

#: the suffix of the entries timed from the intended start: ``GET /items (from intended start)``
INTENDED_SUFFIX = " (from intended start)"
#: the scheduled (intended) start of the iteration running in this context, on ``env.clock.monotonic()``
INTENDED_START: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "horde_intended_start", default=None
)
#: seconds the last iterations get to finish after the schedule's last arrival, before the test stops
END_GRACE = 30.0
_RETIRE = object()  # handed to a free user instead of an arrival: leave the pool


# ---- figures ---------------------------------------------------------------------------------------------


class ArrivalStats:
    """Arrival-rate figures of one environment (a process running the pool, or a master summing workers).

    >>> figures = arrival_stats(env).figures()
    >>> figures["dropped_iterations"], figures["scheduling_lag_ms"]["p99"]
    """

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.active = False  # this process ran (or heard of) an arrival-rate plan in this test
        self.reset()
        events = environment.events
        events.request.add_listener(self._on_request)
        events.report_to_master.add_listener(self._on_report)
        events.worker_report.add_listener(self._on_worker_report)
        events.test_start.add_listener(self._on_test_start)

    def reset(self) -> None:
        self.iterations = 0
        self.dropped_iterations = 0
        self.lag = Histogram()  # µs, cumulative over the test
        self.lag_max_us = 0
        self.pool_size = 0
        self.busy = 0
        self.max_users = 0
        self.rate = 0.0
        self.warned = False
        self.workers: dict[str, dict[str, Any]] = {}  # master: the latest figures of each worker
        self._sent_iterations = 0
        self._sent_dropped = 0
        self._lag_delta = Histogram()

    # ---- recording (the process running the pool) ----------------------------------------------------
    def started(self, lag_s: float) -> None:
        us = max(0, int(lag_s * 1_000_000 + 0.5))
        self.iterations += 1
        self.lag.record(us)
        self._lag_delta.record(us)
        if us > self.lag_max_us:
            self.lag_max_us = us

    def dropped(self, pool_size: int, max_users: int, rate: float) -> None:
        self.dropped_iterations += 1
        if not self.warned:
            self.warned = True
            logger.warning(
                "Dropped an iteration: all %d users of the pool are busy and the pool is at max_users (%d). "
                "The pool is too small for %.4g iterations/s, or the target is too slow (each iteration "
                "would need to take under %.3g s); raise --max-users or look at the target",
                pool_size,
                max_users,
                rate,
                max_users / rate if rate > 0 else float("inf"),
            )

    def _on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: Any = None,
        **_: Any,
    ) -> None:
        due = INTENDED_START.get()
        if due is None:
            return
        env = self.environment
        entry = env.stats.get(name + INTENDED_SUFFIX, request_type)
        entry.log(max(0.0, (env.clock.monotonic() - due) * 1000.0), response_length)
        if exception is not None:
            entry.log_error(exception)

    # ---- distributed -------------------------------------------------------------------------------
    def _on_test_start(self, **_: Any) -> None:
        self.reset()
        self.active = False

    def _on_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        if not self.active:
            return
        data["arrival"] = {
            "iterations": self.iterations - self._sent_iterations,
            "dropped": self.dropped_iterations - self._sent_dropped,
            "lag": {str(k): v for k, v in self._lag_delta.to_wire().items()},
            "lag_max_us": self.lag_max_us,
            "pool": self.pool_size,
            "busy": self.busy,
            "max_users": self.max_users,
            "rate": self.rate,
        }
        self._sent_iterations, self._sent_dropped = self.iterations, self.dropped_iterations
        self._lag_delta = Histogram()

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        arrival = data.get("arrival")
        if not isinstance(arrival, dict):
            return
        try:
            iterations, dropped = int(arrival["iterations"]), int(arrival["dropped"])
            lag = Histogram.from_wire(arrival.get("lag", {}))
            row = {
                "pool": int(arrival.get("pool", 0)),
                "busy": int(arrival.get("busy", 0)),
                "max_users": int(arrival.get("max_users", 0)),
                "rate": float(arrival.get("rate", 0.0)),
            }
            lag_max = int(arrival.get("lag_max_us", 0))
        except (KeyError, TypeError, ValueError) as e:
            logger.warning("Ignored malformed arrival-rate figures from %s: %r", client_id, e)
            return
        self.active = True
        self.iterations += iterations
        self.dropped_iterations += dropped
        self.lag.merge(lag)
        self.lag_max_us = max(self.lag_max_us, lag_max)
        previous = self.workers.get(client_id, {})
        row["dropped_iterations"] = int(previous.get("dropped_iterations", 0)) + dropped
        row["iterations"] = int(previous.get("iterations", 0)) + iterations
        self.workers[client_id] = row
        self.pool_size = sum(w["pool"] for w in self.workers.values())
        self.busy = sum(w["busy"] for w in self.workers.values())

    def forget_worker(self, client_id: str) -> None:
        """A worker left: its pool no longer counts (its iterations and drops still do)."""
        row = self.workers.get(client_id)
        if row is not None:
            row["pool"] = row["busy"] = 0
            row["rate"] = 0.0

    # ---- reading -------------------------------------------------------------------------------------
    def lag_ms(self, q: float) -> float:
        """Scheduling lag percentile ``q`` (0..1) in milliseconds (0 when no iteration started)."""
        if not self.lag:
            return 0.0
        return self.lag.percentiles((q,), None, self.lag_max_us)[0] / 1000.0

    def figures(self) -> dict[str, Any]:
        """JSON-ready figures for the console, ``--json`` and thresholds (``dropped_iterations``)."""
        return {
            "iterations": self.iterations,
            "dropped_iterations": self.dropped_iterations,
            "scheduling_lag_ms": {
                "p50": self.lag_ms(0.5),
                "p99": self.lag_ms(0.99),
                "max": self.lag_max_us / 1000.0,
            },
            "pool_users": self.pool_size,
            "busy_users": self.busy,
            "workers": {wid: dict(row) for wid, row in self.workers.items()},
        }

    def summary_warnings(self) -> list[str]:
        """Lines for the final summary (empty when nothing was dropped)."""
        if not self.dropped_iterations:
            return []
        total = self.iterations + self.dropped_iterations
        return [
            f"{self.dropped_iterations} of {total} iterations were dropped "
            f"({100.0 * self.dropped_iterations / total:.2f}%): the pool was at max_users with every user "
            "busy; raise --max-users, or the target is too slow for this rate"
        ]

    def describe(self) -> str:
        """One line for the console: ``iterations 1200, dropped 0, lag p99 0.4 ms``."""
        return (
            f"iterations {self.iterations}, dropped {self.dropped_iterations}, scheduling lag "
            f"p50 {self.lag_ms(0.5):.2f} ms, p99 {self.lag_ms(0.99):.2f} ms, max {self.lag_max_us / 1000:.2f} ms"
        )


_STATS: weakref.WeakKeyDictionary[Any, ArrivalStats] = weakref.WeakKeyDictionary()


def arrival_stats(environment: Environment) -> ArrivalStats:
    """The environment's ArrivalStats, attached (listeners added) on first use. Call it once on a master
    before an arrival-rate test so the workers' figures are summed there."""
    stats = _STATS.get(environment)
    if stats is None:
        stats = _STATS[environment] = ArrivalStats(environment)
    return stats


# ---- the pool --------------------------------------------------------------------------------------------


class _Picker:
    """Smooth weighted round robin: exact proportions over any window of ``sum(weights)`` picks."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = {n: w for n, w in weights.items() if w > 0}
        self.total = sum(self.weights.values())
        self.current = dict.fromkeys(self.weights, 0.0)

    def next(self) -> str:
        current = self.current
        best, best_value = "", float("-inf")
        for name, weight in self.weights.items():
            value = current[name] + weight
            current[name] = value
            if value > best_value:
                best, best_value = name, value
        current[best] -= self.total
        return best


class _ClassPool:
    """The pool users of one class."""

    def __init__(self, name: str, original: type[User], pool_class: type[User]) -> None:
        self.name = name
        self.original = original
        self.pool_class = pool_class
        self.size = 0  # alive (starting, free or busy)
        self.starting = 0  # not yet through on_start
        self.free: deque[asyncio.Future[Any]] = deque()
        self.pending: deque[float] = deque()  # arrivals promised to a user that is starting
        self.retire = 0  # users to retire as they become free
        self.leaving = 0  # users told to retire that have not ended yet

    @property
    def staying(self) -> int:
        return self.size - self.retire - self.leaving


def _pool_class(original: type[User], pool: ArrivalPool) -> type[User]:
    """A subclass of ``original`` (same name) whose users take arrivals instead of running a task loop."""

    def __init__(self: User, environment: Any) -> None:
        original.__init__(self, environment)
        tasks_for = getattr(environment, "tasks_for", None)
        self.tasks = tasks_for(original) if tasks_for is not None else list(original.tasks)  # type: ignore[misc]
        self._taskset = _IterationLoop(self, pool)

    async def run(self: User) -> None:
        try:
            await original.run(self)
        finally:
            pool.user_ended(self)

    namespace = {
        "__init__": __init__,
        "run": run,
        "__module__": original.__module__,
        "__qualname__": original.__qualname__,
        "__doc__": original.__doc__,
        "abstract": False,
        "_horde_arrival_original": original,
    }
    made: type[User] = type(original)(original.__name__, (original,), namespace)  # type: ignore[misc]
    return made


class _IterationLoop(DefaultTaskSet):
    """A pool user's life after on_start: wait (idle, cancelled at once by a stop) for an arrival, run one
    task, repeat; a stop asked during an iteration ends the user when it finishes."""

    def __init__(self, user: User, pool: ArrivalPool) -> None:
        super().__init__(user)
        self.pool = pool

    async def run(self) -> None:
        user, pool = self.user, self.pool
        while True:
            user._check_stop_condition()
            user._state = WAITING
            due = await pool.next_arrival(user)
            user._state = "running"
            await pool.run_iteration(self, due)


class ArrivalPool:
    """The users of one process's arrival-rate plan, and how arrivals find one."""

    def __init__(self, host: LoadHost, stats: ArrivalStats, classes: Sequence[type[User]]) -> None:
        self.host = host
        self.stats = stats
        self.max_users = 0
        self.rate = 0.0
        self.busy = 0
        self._classes: dict[str, _ClassPool] = {}
        for cls in classes:
            self._classes[cls.__name__] = _ClassPool(cls.__name__, cls, _pool_class(cls, self))
        self.picker = _Picker({c.__name__: float(getattr(c, "weight", 1)) for c in classes})
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    @property
    def size(self) -> int:
        return sum(c.size for c in self._classes.values())

    def _publish(self) -> None:
        stats = self.stats
        stats.pool_size, stats.busy, stats.max_users, stats.rate = (
            self.size,
            self.busy,
            self.max_users,
            self.rate,
        )

    # ---- growing and shrinking ------------------------------------------------------------------------
    async def grow(self, counts: dict[str, int]) -> None:
        """Start ``counts[name]`` more users of each class (never stopping any: the targets are what runs
        now plus these)."""
        counts = {n: k for n, k in counts.items() if k > 0 and n in self._classes}
        if not counts:
            return
        users = self.host.users
        targets = dict(users.counts())
        for name, k in counts.items():
            cp = self._classes[name]
            cp.size += k
            cp.starting += k
            targets[name] = targets.get(name, 0) + k
        classes = {n: cp.pool_class for n, cp in self._classes.items()}
        try:
            await users.apply(targets, classes, self.host.environment.stop_timeout)
        finally:
            self._publish()

    def preallocation(self, count: int) -> dict[str, int]:
        """How ``count`` users split over the classes by weight (largest remainder, picker order)."""
        weights = self.picker.weights
        total = sum(weights.values())
        if count <= 0 or total <= 0:
            return {}
        exact = {n: count * w / total for n, w in weights.items()}
        out = {n: int(v) for n, v in exact.items()}
        rest = count - sum(out.values())
        for name in sorted(exact, key=lambda n: (out[n] - exact[n], list(weights).index(n)))[:rest]:
            out[name] += 1
        return out

    @property
    def staying(self) -> int:
        """Users not told to leave the pool."""
        return sum(c.staying for c in self._classes.values())

    def shrink_to(self, limit: int) -> None:
        """Retire users beyond ``limit``: free ones now, busy or starting ones when they become free."""
        excess = self.staying - max(0, limit)
        while excess > 0:
            cp = max(self._classes.values(), key=lambda c: c.staying)
            if cp.staying <= 0:
                return
            while cp.free:
                fut = cp.free.pop()
                if not fut.done():
                    fut.set_result(_RETIRE)
                    cp.leaving += 1
                    break
            else:
                cp.retire += 1
            excess -= 1

    # ---- arrivals ----------------------------------------------------------------------------------------
    def offer(self, due: float) -> str | None:
        """Place one arrival; returns the class to grow by one user if it needs a new one."""
        name = self.picker.next()
        cp = self._classes[name]
        while cp.free:
            fut = cp.free.popleft()
            if not fut.done():  # a user being stopped (cancelled while idle) takes nothing
                fut.set_result(due)
                return None
        if cp.starting > len(cp.pending):
            cp.pending.append(due)  # a user finishing on_start takes it
            return None
        if self.staying < self.max_users:
            cp.pending.append(due)
            return name
        self.stats.dropped(self.size, self.max_users, self.rate)
        return None

    async def next_arrival(self, user: User) -> float:
        """Wait, idle, for this user's next arrival (its first call means on_start is done)."""
        cp = self._classes[type(user).__name__]
        if not getattr(user, "_horde_pool_ready", False):
            user._horde_pool_ready = True  # type: ignore[attr-defined]
            cp.starting -= 1
        if cp.retire > 0:
            cp.retire -= 1
            cp.leaving += 1
            user._horde_leaving = True  # type: ignore[attr-defined]
            raise StopUser()
        if cp.pending:
            return cp.pending.popleft()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        cp.free.append(fut)
        result = await fut  # a stop cancels an idle user here at once (it is WAITING)
        if result is _RETIRE:
            user._horde_leaving = True  # type: ignore[attr-defined]
            raise StopUser()
        return float(result)

    async def run_iteration(self, loop: _IterationLoop, due: float) -> None:
        """One task of the user, timed from ``due`` (the arrival's scheduled time)."""
        user = loop.user
        env = user.environment
        self.stats.started(env.clock.monotonic() - due)
        token = INTENDED_START.set(due)
        self.busy += 1
        try:
            tasks = user.tasks
            if not tasks:
                raise StopTest(f"{type(user).__name__} has no tasks to run")
            user._task_started_at = env.clock.monotonic()
            await loop.execute_task(random.choice(tasks))
        except (RescheduleTask, RescheduleTaskImmediately, InterruptTaskSet):
            pass
        except (StopUser, StopTest, asyncio.CancelledError):
            raise
        except Exception as e:
            user._task_failed(e)
        finally:
            self.busy -= 1
            INTENDED_START.reset(token)

    def user_ended(self, user: User) -> None:
        cp = self._classes.get(type(user).__name__)
        if cp is None:
            return
        cp.size -= 1
        if getattr(user, "_horde_leaving", False):
            cp.leaving -= 1
        if not getattr(user, "_horde_pool_ready", False):
            cp.starting -= 1  # on_start failed or the user was stopped while starting
        orphans = len(cp.pending) - cp.starting
        if orphans > 0 and not self.closed:
            # arrivals promised to a user that will never come: offer them again (grow or drop)
            due = [cp.pending.pop() for _ in range(orphans)]
            self._spawn(self._replace(cp.name, due), "arrival-pool-regrow")
        self._publish()

    async def _replace(self, name: str, dues: list[float]) -> None:
        cp = self._classes[name]
        grow = 0
        for due in reversed(dues):
            if self.staying + grow < self.max_users:
                cp.pending.append(due)
                grow += 1
            else:
                self.stats.dropped(self.size, self.max_users, self.rate)
        await self.grow({name: grow})

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def in_flight(self) -> int:
        return self.busy

    async def close(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for cp in self._classes.values():
            cp.pending.clear()


# ---- the applier -------------------------------------------------------------------------------------------


class ArrivalApplier:
    """The ``"arrival-rate"`` kind in one process: keep the pool, pace the arrivals of this share."""

    def __init__(self, host: LoadHost) -> None:
        self.host = host
        self.environment = host.environment
        self.stats = arrival_stats(self.environment)
        self.pool: ArrivalPool | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._origin: float | None = None  # clock.monotonic() of the schedule's time 0
        self._plan: Any = None
        self._units: Any = None
        self._profile: RateProfile | None = None
        self._schedule: ArrivalSchedule | None = None
        self._held: float | None = None  # count of the arrival the pacer waits for
        self._rng = random.Random()
        self.ended = False

    async def apply(self, payload: Any) -> None:
        env = self.environment
        clock = env.clock
        now = clock.monotonic()
        self.stats.active = True
        if self.pool is None:
            names = payload.get("classes")
            known = env.user_classes_by_name()
            classes = [known[n] for n in names if n in known] if names else list(env.user_classes)
            self.pool = ArrivalPool(self.host, self.stats, classes)
            if payload.get("seed") is not None:
                self._rng.seed(f"{payload['seed']}:{payload.get('worker_index', 0)}")
        pool = self.pool
        pool.max_users = int(payload.get("max_users", 0))
        plan = payload.get("plan")
        fresh = self._origin is None or plan != self._plan
        units = (payload.get("rate_units"), bool(payload.get("poisson")))
        if fresh:
            self._origin = now - float(payload.get("elapsed", 0.0))
        if fresh or units != self._units:
            self._restart(profile_from_wire(payload["schedule"]), bool(payload.get("poisson")), now, fresh)
        self._plan, self._units = plan, units
        pool.rate = self._profile.rate(now - self._origin) if self._profile is not None else 0.0  # type: ignore[operator]
        pool.shrink_to(pool.max_users)
        want = min(int(payload.get("pre_allocated", 0)), pool.max_users) - pool.size
        if want > 0:
            await pool.grow(pool.preallocation(want))
        pool._publish()

    def _restart(self, profile: RateProfile, poisson: bool, now: float, fresh: bool) -> None:
        assert self._origin is not None
        t = now - self._origin
        phase = 0.0
        if not fresh and self._schedule is not None and self._profile is not None:
            held = self._held if self._held is not None else self._schedule.peek_count()
            phase = min(1.0, max(0.0, held - self._profile.count(t)))
        if self._pacer is not None and not self._pacer.done():
            self._pacer.cancel()
        self._profile = profile
        self._schedule = ArrivalSchedule(profile, t, phase=phase, poisson=poisson, rng=self._rng)
        self._held = None
        self._pacer = asyncio.get_running_loop().create_task(self._pace(self._schedule), name="arrival-pacer")

    async def _pace(self, schedule: ArrivalSchedule) -> None:
        clock = self.environment.clock
        pool = self.pool
        assert pool is not None and self._origin is not None
        origin = self._origin
        try:
            while True:
                self._held = schedule.peek_count()
                t = schedule.next_time()
                if t is None:
                    break
                due = origin + t
                wait = due - clock.monotonic()
                if wait > 0:
                    await clock.sleep(wait)
                self._held = None
                grow = pool.offer(due)
                if grow is not None:
                    await pool.grow({grow: 1})
                if not (wait > 0):
                    await asyncio.sleep(0)  # behind schedule: still let the users run between arrivals
        except asyncio.CancelledError:
            raise
        except Exception:
            self.environment.events.unhandled_errors += 1
            logger.exception("the arrival pacer failed")
            raise
        self._held = None
        await self._finish(pool)

    async def _finish(self, pool: ArrivalPool) -> None:
        """The schedule is done: let the last iterations finish (up to END_GRACE), then end the test."""
        clock = self.environment.clock
        waited = 0.0
        while pool.in_flight > 0 and waited < END_GRACE:
            await clock.sleep(0.05)
            waited += 0.05
        self.ended = True
        runner = self.environment.runner
        if runner is not None:
            runner.stop_test(ARRIVALS_ENDED)

    async def stop(self) -> None:
        pacer, self._pacer = self._pacer, None
        if pacer is not None and not pacer.done():
            pacer.cancel()
            await asyncio.gather(pacer, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
            self.pool._publish()


register_kind(KIND, ArrivalApplier)

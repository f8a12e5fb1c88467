"""The run session: one test from request to result, on a real LocalRunner, with time on a FakeClock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from horde import LoadTestShape, User, task
from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.exceptions import ConfigurationError
from horde.runners.status import WorkerStatus
from horde.session import RunResult, StartRequest, TestRun
from horde.stats.snapshot import StatsSnapshot


class Worker(User):
    """Records one 5 ms request per task, as a non-HTTP user would (manual reporting)."""

    @task
    async def work(self) -> None:
        self.environment.events.request.fire(
            request_type="job", name="work", response_time=5.0, response_length=10, exception=None, context={}
        )
        await asyncio.sleep(0.001)


class Other(User):
    weight = 3

    @task
    async def idle(self) -> None:
        await asyncio.sleep(0.01)


class Recorder:
    """A test-only Output plugged in through the public seam: it sees what every output sees."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.ticks: list[StatsSnapshot] = []
        self.results: list[RunResult] = []

    def start(self, run: Any) -> None:
        self.started.append(run)

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        self.ticks.append(snapshot)

    def stop(self, result: RunResult) -> None:
        self.results.append(result)


def make_run(
    *classes: type[User], shape: LoadTestShape | None = None, **kw: Any
) -> tuple[TestRun, FakeClock]:
    clock = FakeClock()
    env = Environment(user_classes=list(classes) or [Worker], events=Events(), clock=clock, shape_class=shape)
    env.create_local_runner()
    return TestRun(env, **kw), clock


async def settle(clock: FakeClock, seconds: float) -> None:
    """Advance the fake clock in small steps, giving real I/O and user tasks time to run between."""
    steps = max(1, int(seconds / 0.05))
    for _ in range(steps):
        clock.advance(seconds / steps)
        await asyncio.sleep(0.002)


async def test_outputs_see_start_every_tick_and_one_result_with_the_final_totals() -> None:
    out = Recorder()
    run, clock = make_run(outputs=[out])
    await run.open()
    run.start(StartRequest(user_count=3, spawn_rate=100))
    await settle(clock, 3.0)
    assert run.status().state == "running"
    result = await run.close()
    assert out.started == [run]
    assert len(out.ticks) >= 3
    assert len(out.results) == 1 and out.results[0] is result
    assert result.snapshot.total.num_requests == run.env.stats.total.num_requests > 0
    assert out.ticks[-1].total.num_requests == result.snapshot.total.num_requests  # the final tick
    assert result.exit_code == 0
    assert await run.close() is result  # once only
    assert len(out.results) == 1


async def test_history_keeps_every_tick_and_the_markers_say_what_happened() -> None:
    run, clock = make_run()
    await run.open()
    run.start(StartRequest(user_count=2, spawn_rate=100))
    await settle(clock, 2.0)
    run.edit(4, 100)
    await settle(clock, 2.0)
    await run.stop()
    assert len(run.history) >= 3  # one point per second of fake time
    assert [m["kind"] for m in run.markers] == ["start", "edit", "stop"]
    await run.close()


async def test_run_time_stops_the_test_and_says_why() -> None:
    run, clock = make_run()
    await run.open()
    run.start(StartRequest(user_count=1, spawn_rate=10, run_time=5))
    await settle(clock, 4.0)
    assert run.status().state == "running"
    await settle(clock, 1.5)
    await asyncio.wait_for(run.wait(), 2)
    assert run.status().stop_reason == "the run time limit was reached"
    assert run.status().run_time == 5
    await run.close()


async def test_stopping_cancels_the_timer_so_a_new_test_is_not_cut_short() -> None:
    run, clock = make_run()
    await run.open()
    run.start(StartRequest(user_count=1, spawn_rate=10, run_time=3))
    await settle(clock, 1.0)
    await run.stop()
    run.start(StartRequest(user_count=1, spawn_rate=10))
    await settle(clock, 5.0)
    assert run.status().state == "running"
    assert run.status().stop_reason is None
    await run.close()


async def test_every_problem_of_a_request_is_reported_at_once_and_nothing_starts() -> None:
    run, _ = make_run(Worker, Other)
    await run.open()
    bad = StartRequest(
        user_count=-1, spawn_rate=float("nan"), host="example.com", run_time=0, user_classes=("Nope",)
    )
    with pytest.raises(ConfigurationError) as e:
        run.start(bad)
    text = str(e.value)
    for part in ("user count", "spawn rate", "host", "run time", "Nope"):
        assert part in text
    assert run.status().state == "ready"
    await run.close()


async def test_status_version_moves_only_when_something_changed() -> None:
    run, clock = make_run(Worker, Other)
    await run.open()
    first = run.status()
    assert run.status().version == first.version
    run.start(StartRequest(user_count=4, spawn_rate=100, run_time=60))
    await settle(clock, 1.0)
    status = run.status()
    assert status.version > first.version
    assert status.user_count == 4 and status.target_user_count == 4
    assert status.load == "4 users at 100/s, weights Worker 1 : Other 3, for 1m"
    assert [w.id for w in status.workers] == ["local"]
    data = status.to_dict()
    assert data["worker_count"] == 1 and data["workers"][0]["id"] == "local"
    await run.close()


async def test_reset_stats_zeroes_numbers_and_fires_the_event() -> None:
    run, clock = make_run()
    fired: list[bool] = []
    run.env.events.reset_stats.add_listener(lambda **kw: fired.append(True))
    await run.open()
    run.start(StartRequest(user_count=2, spawn_rate=100))
    await settle(clock, 1.0)
    assert run.env.stats.total.num_requests > 0
    run.reset_stats()
    assert run.env.stats.total.num_requests == 0
    assert fired == [True]
    await run.close()


async def test_a_shape_decides_instead_of_the_user_count() -> None:
    class TwoSteps(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            t = self.get_run_time()
            return None if t > 3 else ((1, 10) if t < 2 else (3, 10))

    clock = FakeClock()
    shape = TwoSteps(clock=clock)
    env = Environment(user_classes=[Worker], events=Events(), clock=clock, shape_class=shape)
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    run.start(StartRequest(user_count=50, spawn_rate=50))
    await settle(clock, 1.0)
    assert run.status().user_count == 1
    await settle(clock, 1.5)
    assert run.status().user_count == 3
    await settle(clock, 2.0)
    await asyncio.wait_for(run.wait(), 2)
    assert run.status().stop_reason == "the load shape ended"
    assert run.status().load == "users and spawn rate from the load shape TwoSteps, re-read every second"
    await run.close()


async def test_exit_code_policy_in_order() -> None:
    run, _ = make_run()
    await run.open()
    assert run.exit_code() == 0
    assert run.exit_code(gave_up=True) == 1
    run.env.events.unhandled_errors += 1
    assert run.exit_code() == 2
    run.env.stats.record("GET", "/x", 1.0, 0, RuntimeError("boom"))
    assert run.exit_code() == 1
    run.env.process_exit_code = 7
    assert run.exit_code() == 7
    await run.close()


async def test_an_output_that_fails_at_the_end_turns_a_pass_into_exit_2() -> None:
    class Broken(Recorder):
        def stop(self, result: RunResult) -> None:
            raise OSError("disk full")

    good = Recorder()
    run, _ = make_run(outputs=[Broken(), good])
    await run.open()
    result = await run.close()
    assert result.exit_code == 2
    assert len(good.results) == 1  # the other outputs still got the result


async def test_users_that_record_nothing_never_pass() -> None:
    class Silent(User):
        @task
        async def nothing(self) -> None:
            await asyncio.sleep(0.01)

    run, clock = make_run(Silent)
    await run.open()
    run.start(StartRequest(user_count=2, spawn_rate=100))
    await settle(clock, 2.0)
    result = await run.close()
    assert result.exit_code == 1
    assert any("not one request was recorded" in w for w in result.warnings)


async def test_a_stop_test_is_an_early_end_not_a_pass() -> None:
    from horde.exceptions import StopTest

    class Quitter(Worker):
        @task
        async def work(self) -> None:
            await super().work()
            raise StopTest("out of test data")

    run, clock = make_run(Quitter)
    await run.open()
    run.start(StartRequest(user_count=1, spawn_rate=100, run_time=60))
    await settle(clock, 1.0)
    await asyncio.wait_for(run.wait(), 2)
    result = await run.close()
    assert result.stop_reason == "out of test data"
    assert result.exit_code == 1
    assert result.warnings[0] == "The test ended early: out of test data"


async def test_tags_that_empty_one_class_run_the_others_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    from horde import tag

    class Tagged(User):
        @tag("checkout")
        @task
        async def buy(self) -> None:
            self.environment.events.request.fire(
                request_type="job",
                name="buy",
                response_time=1.0,
                response_length=0,
                exception=None,
                context={},
            )
            await asyncio.sleep(0.001)

    clock = FakeClock()
    env = Environment(user_classes=[Tagged, Other], events=Events(), clock=clock, tags=["checkout"])
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    run.start(StartRequest(user_count=4, spawn_rate=100))
    await settle(clock, 1.0)
    assert run.status().user_classes_count == {"Tagged": 4}
    assert "leaves Other without tasks" in caplog.text
    result = await run.close()
    assert result.exit_code == 0


async def test_tags_that_empty_every_class_stop_the_test_with_a_non_zero_exit() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Worker], events=Events(), clock=clock, tags=["nothing-has-this"])
    env.create_local_runner()
    run = TestRun(env)
    await run.open()
    run.start(StartRequest(user_count=1, spawn_rate=10))
    await settle(clock, 0.5)
    await asyncio.wait_for(run.wait(), 2)
    result = await run.close()
    assert result.exit_code != 0
    assert "tags" in (result.stop_reason or "")


async def test_a_local_run_is_not_distributed_and_a_master_is() -> None:
    run, _ = make_run()
    await run.open()
    assert run.status().distributed is False and run.status().to_dict()["distributed"] is False
    await run.close()
    env = Environment(user_classes=[Worker], events=Events())
    master = env.create_master_runner("127.0.0.1", 0)
    try:
        assert master.distributed is True
    finally:
        await master.quit()


class StatusReader:
    """An output that reads the run's status twice per tick, as the console and a report do."""

    def __init__(self) -> None:
        self.run: Any = None
        self.seen: list[tuple[Any, Any]] = []

    def start(self, run: Any) -> None:
        self.run = run

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        self.seen.append((self.run.status(), self.run.status()))

    def stop(self, result: RunResult) -> None:
        pass


def roster(run: TestRun, monkeypatch: pytest.MonkeyPatch) -> tuple[list[WorkerStatus], list[int]]:
    """Replace the runner's rows with a list the test edits; count how often the session asks for them."""
    rows = [WorkerStatus("w1", 0, "running", 2, {"Worker": 2}, cpu_percent=10.0, last_heartbeat=100.0)]
    asked: list[int] = []

    def worker_statuses() -> list[WorkerStatus]:
        asked.append(1)
        return list(rows)

    monkeypatch.setattr(run.runner, "worker_statuses", worker_statuses)
    return rows, asked


async def test_the_status_is_built_once_a_tick_and_shared_by_every_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = StatusReader(), StatusReader()
    run, _clock = make_run(outputs=[a, b])
    rows, asked = roster(run, monkeypatch)
    await run.open()
    run.tick()
    run.tick()
    (first, again), (other, _) = a.seen[0], b.seen[0]
    assert first is again is other  # both outputs of one tick, and the front ends until the next tick
    assert a.seen[1][0] is not first and a.seen[1][0] is b.seen[1][0]  # the next tick built a new one
    assert run.status() is a.seen[1][0] and len(asked) == 2  # one build a tick, however many readers
    rows[0] = replace(rows[0], cpu_percent=55.0, last_heartbeat=101.0)
    assert run.status().workers[0].cpu_percent == 10.0  # a heartbeat shows at the next tick...
    run.tick()
    assert run.status().workers[0].cpu_percent == 55.0 and len(asked) == 3
    await run.close()


async def test_the_shared_status_is_rebuilt_at_once_when_a_state_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, clock = make_run()
    rows, asked = roster(run, monkeypatch)
    await run.open()
    first = run.status()
    assert run.status() is first and len(asked) == 1
    rows.append(WorkerStatus("w2", 1, "ready"))
    monkeypatch.setattr(run.runner, "worker_state_changes", 1, raising=False)  # what a master bumps
    joined = run.status()
    assert [w.id for w in joined.workers] == ["w1", "w2"] and joined.version == first.version + 1
    run.start(StartRequest(user_count=1, spawn_rate=100))
    await settle(clock, 0.1)  # the ramp starts: the runner's state is no longer "ready"
    started = run.status()
    assert started is not joined and started.state != "ready" and started.load is not None
    run.env.host = "http://elsewhere"
    assert run.status().host == "http://elsewhere"
    await run.close()


async def test_without_ticks_the_status_is_rebuilt_once_a_tick_interval_and_keeps_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, clock = make_run()
    rows, asked = roster(run, monkeypatch)  # no test runs, so no ticks: workers still heartbeat
    first = run.status()
    clock.advance(run.tick_interval / 2)
    assert run.status() is first
    clock.advance(run.tick_interval / 2)
    same = run.status()
    assert same is not first and len(asked) == 2
    assert same.version == first.version  # rebuilt, but not one field changed
    rows[0] = replace(rows[0], last_heartbeat=101.0)
    clock.advance(run.tick_interval)
    assert run.status().version == first.version + 1  # any field: a worker's heartbeat time too

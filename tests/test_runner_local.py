"""LocalRunner: ramping at the spawn rate, re-targeting, stop_timeout semantics, quit, events."""

from __future__ import annotations

import asyncio
import time

import pytest

from horde import User, constant, task
from horde.clock import FakeClock
from horde.env import Environment
from horde.exceptions import RunnerAlreadyExistsError


class Idle(User):
    wait_time = constant(600)

    @task
    async def nothing(self) -> None: ...


async def settle(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_start_returns_at_once_and_ramps_at_the_spawn_rate() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle], clock=clock)
    runner = env.create_local_runner()
    ramp = runner.start(10, 2)
    assert runner.target_user_count == 10  # visible before the ramp ends
    await settle()
    assert runner.user_count == 2 and runner.state == "spawning"
    for expected in (4, 6, 8, 10):
        clock.advance(1)
        await settle()
        assert runner.user_count == expected
    await ramp
    assert runner.state == "running"
    assert runner.target_user_classes_count == {"Idle": 10}
    await runner.quit()
    assert runner.state == "stopped" and runner.user_count == 0


async def test_ramp_down_is_paced_too() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle], clock=clock)
    runner = env.create_local_runner()
    await runner.start(10, 100)
    ramp = runner.start(2, 4)
    await settle()
    assert runner.user_count == 6
    clock.advance(1)
    await settle()
    assert runner.user_count == 2
    await ramp
    await runner.quit()


async def test_retarget_cancels_the_unfinished_ramp() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle], clock=clock)
    runner = env.create_local_runner()
    runner.start(10, 2)  # 2 users a second: 2, 4, 6, 8, 10
    await settle()
    clock.advance(1)
    await settle()
    assert runner.user_count == 4
    runner.start(5, 5)
    await settle()
    assert runner.user_count == 5
    for _ in range(5):  # the abandoned ramp must not keep adding users
        clock.advance(1)
        await settle()
    assert runner.user_count == 5 and runner.target_user_count == 5
    await runner.quit()


async def test_two_classes_follow_the_weights() -> None:
    class A(Idle):
        pass

    class B(Idle):
        pass

    env = Environment(user_classes=[A, B])
    runner = env.create_local_runner()
    await runner.start(10, 100)
    assert runner.user_classes_count == {"A": 5, "B": 5}
    await runner.start(5, 100)
    assert sum(runner.user_classes_count.values()) == 5
    await runner.quit()


async def test_test_start_once_and_stop_events_exactly_once() -> None:
    env = Environment(user_classes=[Idle])
    fired: list[str] = []
    env.events.test_start.add_listener(lambda environment: fired.append("start"))
    env.events.test_stopping.add_listener(lambda environment: fired.append("stopping"))
    env.events.test_stop.add_listener(lambda environment: fired.append("stop"))
    runner = env.create_local_runner()
    await runner.start(3, 100)
    await runner.start(5, 100)  # re-targeting a running test is not a fresh test
    await runner.stop()
    await runner.quit()
    assert fired == ["start", "stopping", "stop"]
    # a stop followed by a new start is a fresh test again
    await runner.start(1, 100)
    await runner.stop()
    assert fired == ["start", "stopping", "stop", "start", "stopping", "stop"]


async def test_never_started_runner_stops_without_events() -> None:
    env = Environment(user_classes=[Idle])
    fired: list[str] = []
    env.events.test_stop.add_listener(lambda environment: fired.append("stop"))
    runner = env.create_local_runner()
    await runner.quit()
    assert fired == []


async def test_test_stopping_runs_before_users_on_stop() -> None:
    stopped_users: list[int] = []
    seen_at_stopping: list[int] = []

    class Tracked(Idle):
        async def on_stop(self) -> None:
            stopped_users.append(1)

    env = Environment(user_classes=[Tracked])
    env.events.test_stopping.add_listener(lambda environment: seen_at_stopping.append(len(stopped_users)))
    runner = env.create_local_runner()
    await runner.start(3, 100)
    await runner.quit()
    assert seen_at_stopping == [0] and len(stopped_users) == 3


async def test_failing_listener_is_logged_counted_and_others_still_run() -> None:
    env = Environment(user_classes=[Idle])
    calls: list[int] = []

    def boom(environment: Environment) -> None:
        raise RuntimeError("listener bug")

    env.events.test_stop.add_listener(lambda environment: calls.append(1))
    env.events.test_stop.add_listener(boom)
    env.events.test_stop.add_listener(lambda environment: calls.append(3))
    runner = env.create_local_runner()
    await runner.start(1, 100)
    await runner.quit()
    assert calls == [1, 3] and env.events.unhandled_errors == 1


async def test_async_listeners_are_awaited() -> None:
    env = Environment(user_classes=[Idle])
    done: list[str] = []

    async def slow_start(environment: Environment) -> None:
        await asyncio.sleep(0.05)
        done.append("test_start")

    env.events.test_start.add_listener(slow_start)
    runner = env.create_local_runner()
    await runner.start(1, 100)
    assert done == ["test_start"]
    await runner.quit()


def states_user(stop_marks: list[int], sleep: float = 0.05) -> type[User]:
    class TwoStep(User):
        @task
        async def work(self) -> None:
            stop_marks.append(1)
            await asyncio.sleep(sleep)
            stop_marks.append(2)
            await asyncio.sleep(sleep)
            stop_marks.append(3)

    return TwoStep


@pytest.mark.parametrize(("stop_timeout", "reached"), [(0, 1), (0.025, 2), (0.15, 3)])
async def test_stop_timeout_lets_running_tasks_finish(stop_timeout: float, reached: int) -> None:
    marks: list[int] = []
    env = Environment(user_classes=[states_user(marks)], stop_timeout=stop_timeout)
    runner = env.create_local_runner()
    await runner.start(1, 100)
    await asyncio.sleep(0.03)  # the task is in its first sleep; the second begins at 0.05
    began = time.perf_counter()
    await runner.quit()
    assert max(marks) == reached
    assert time.perf_counter() - began < stop_timeout + 0.1


async def test_waiting_users_stop_at_once_even_with_a_timeout() -> None:
    env = Environment(user_classes=[Idle], stop_timeout=10)
    runner = env.create_local_runner()
    await runner.start(5, 100)
    await asyncio.sleep(0.01)
    began = time.perf_counter()
    await runner.quit()
    assert time.perf_counter() - began < 0.5


async def test_user_in_on_start_finishes_it_then_exits_before_first_task() -> None:
    log: list[str] = []

    class SlowStart(User):
        async def on_start(self) -> None:
            await asyncio.sleep(0.1)
            log.append("on_start done")

        @task
        async def work(self) -> None:
            log.append("task")

        async def on_stop(self) -> None:
            log.append("on_stop")

    env = Environment(user_classes=[SlowStart], stop_timeout=1)
    runner = env.create_local_runner()
    await runner.start(1, 100)
    await asyncio.sleep(0.02)
    await runner.quit()
    assert log == ["on_start done", "on_stop"]


async def test_on_stop_runs_when_forced_and_runs_concurrently() -> None:
    stopped: list[int] = []

    class SlowStop(Idle):
        async def on_stop(self) -> None:
            await asyncio.sleep(0.1)
            stopped.append(1)

    env = Environment(user_classes=[SlowStop])
    runner = env.create_local_runner()
    await runner.start(10, 1000)
    began = time.perf_counter()
    await runner.quit()
    assert len(stopped) == 10
    assert time.perf_counter() - began < 0.3


@pytest.mark.parametrize("stop_timeout", [0, 1])
async def test_user_calling_quit_from_its_own_task_does_not_deadlock(stop_timeout: float) -> None:
    log: list[str] = []

    class Quitter(User):
        @task
        async def work(self) -> None:
            log.append("task")
            await self.environment.runner.quit()
            log.append("after quit")  # never reached: the user is cancelled by its own quit

        async def on_stop(self) -> None:
            log.append("on_stop")

    env = Environment(user_classes=[Quitter], stop_timeout=stop_timeout)
    runner = env.create_local_runner()
    runner.start(1, 100)
    await asyncio.wait_for(runner.wait_stopped(), 0.5)
    await asyncio.wait_for(runner.quit(), 0.5)
    assert log == ["task", "on_stop"]
    assert runner.state == "stopped"


async def test_ramp_down_with_stop_timeout_is_absorbed_by_pacing() -> None:
    class OneSecond(User):
        @task
        async def work(self) -> None:
            await asyncio.sleep(1)

    env = Environment(user_classes=[OneSecond], stop_timeout=2)
    runner = env.create_local_runner()
    await runner.start(10, 1000)
    began = time.perf_counter()
    await runner.start(2, 4)
    elapsed = time.perf_counter() - began
    assert runner.user_count == 2
    assert 1.0 <= elapsed < 2.3  # two batches of 4 stops, each waiting up to ~1 s for a task to end
    await runner.quit()


async def test_user_exceptions_are_collected_with_counts() -> None:
    class Raiser(User):
        wait_time = constant(0.001)

        @task
        async def work(self) -> None:
            raise ValueError("bad payload")

    env = Environment(user_classes=[Raiser])
    runner = env.create_local_runner()
    await runner.start(1, 100)
    await asyncio.sleep(0.05)
    await runner.quit()
    assert len(runner.exceptions) == 1
    row = next(iter(runner.exceptions.values()))
    assert row["count"] >= 2 and "bad payload" in row["msg"] and "ValueError" in row["traceback"]


async def test_class_without_tasks_fails_clearly_when_the_test_starts() -> None:
    class Empty(User):
        pass

    env = Environment(user_classes=[Empty])
    runner = env.create_local_runner()
    runner.start(1, 1)
    await asyncio.wait_for(runner.wait_stopped(), 1)
    assert runner.stop_reason is not None and "Empty has no tasks" in runner.stop_reason
    await runner.quit()


async def test_reset_stats_after_ramp() -> None:
    class Once(User):
        wait_time = constant(30)

        @task
        async def hit(self) -> None:
            self.environment.events.request.fire(
                request_type="GET", name="/x", response_time=1.0, response_length=0, exception=None
            )

    clock = FakeClock()
    env = Environment(user_classes=[Once], reset_stats=True, clock=clock)
    runner = env.create_local_runner()
    ramp = runner.start(5, 2)
    await settle()
    clock.advance(1)
    await settle()
    assert env.stats.total.num_requests == 4  # two steps of two users, one request each
    clock.advance(1)
    await ramp
    await settle()
    assert env.stats.total.num_requests <= 1  # reset at spawning_complete; only the last user's request
    await runner.quit()


def test_one_runner_per_environment_and_class_checks() -> None:
    env = Environment(user_classes=[Idle])
    env.create_local_runner()
    with pytest.raises(RunnerAlreadyExistsError):
        env.create_local_runner()

    class Zero(Idle):
        weight = 0

    with pytest.raises(ValueError, match="weight 0"):
        Environment(user_classes=[Zero])
    with pytest.raises(ValueError, match="unique"):
        Environment(user_classes=[Idle, type("Idle", (Idle,), {})])


async def test_custom_messages_locally() -> None:
    env = Environment(user_classes=[Idle])
    runner = env.create_local_runner()
    got: list[object] = []
    runner.register_message("greet", lambda environment, msg: got.append((msg.data, msg.node_id)))
    runner.send_message("greet", {"hi": 1})
    assert got == [({"hi": 1}, "local")]
    with pytest.raises(ValueError):
        runner.register_message("greet", lambda **kw: None)


async def test_stop_timeout_holds_even_when_the_ramp_down_is_superseded() -> None:
    class Long(User):
        @task
        async def work(self) -> None:
            await asyncio.sleep(20)

    env = Environment(user_classes=[Long], stop_timeout=0.3)
    runner = env.create_local_runner()
    await runner.start(3, 100)
    runner.start(0, 100)  # asks the three to stop, waiting up to 0.3 s for their tasks
    await asyncio.sleep(0.05)
    await runner.start(1, 100)  # supersedes that ramp while it waits
    await asyncio.sleep(0.5)
    assert runner.user_count == 1 and runner.users.running_tasks == 1  # the three were stopped anyway
    assert runner.users.force_stopped == 3
    await runner.quit()


async def test_local_runner_public_api_for_the_session() -> None:
    env = Environment(user_classes=[Idle])
    runner = env.create_local_runner()
    assert await runner.wait_for_workers(5, 0.1) is True
    assert runner.worker_count == 1 and list(runner.clients) == ["local"]
    await runner.start(3, 100)
    runner.monitor.sample(12.5, 4096, 0.002)
    (row,) = runner.worker_statuses()
    assert row.to_dict() == {
        "id": "local",
        "index": 0,
        "state": "running",
        "user_count": 3,
        "user_classes_count": {"Idle": 3},
        "cpu_percent": 12.5,
        "memory_rss": 4096,
        "loop_lag": 0.002,
        "last_heartbeat": None,
        "load": None,
    }
    assert runner.summary_warnings() == []
    await runner.quit()


async def test_hurry_kills_users_still_in_a_task() -> None:
    class Long(User):
        @task
        async def work(self) -> None:
            await asyncio.sleep(20)

    env = Environment(user_classes=[Long], stop_timeout=30)
    runner = env.create_local_runner()
    await runner.start(2, 100)
    await asyncio.sleep(0.01)
    stopping = runner.stop()
    await asyncio.sleep(0.01)
    runner.hurry()
    await asyncio.wait_for(stopping, 1)
    assert env.stop_timeout == 0 and runner.users.running_tasks == 0
    await runner.quit()


async def test_force_stopped_users_are_a_summary_warning() -> None:
    class Long(User):
        @task
        async def work(self) -> None:
            await asyncio.sleep(20)

    env = Environment(user_classes=[Long], stop_timeout=0.05)
    runner = env.create_local_runner()
    await runner.start(2, 100)
    await asyncio.sleep(0.01)
    await runner.quit()
    (line,) = runner.summary_warnings()
    assert line.startswith("2 user(s) were still in a task at the stop deadline")


async def test_start_load_with_closed_users_is_start() -> None:
    from horde.load import ClosedUsers

    clock = FakeClock()
    env = Environment(user_classes=[Idle], clock=clock)
    runner = env.create_local_runner()
    ramp = runner.start_load(ClosedUsers(env.user_classes, 4, 2))
    assert runner.target_user_count == 4 and runner.spawn_rate == 2
    await settle()
    assert runner.user_count == 2
    clock.advance(1)
    await ramp
    assert runner.user_count == 4 and runner.state == "running"
    await runner.quit()


async def test_invalid_starts_report_every_problem_and_change_nothing() -> None:
    from horde.exceptions import ConfigurationError

    env = Environment(user_classes=[Idle])
    runner = env.create_local_runner()
    with pytest.raises(ConfigurationError) as info:
        runner.start(-1, 0)
    assert "user count must be a whole number" in str(info.value) and "spawn rate must be" in str(info.value)
    with pytest.raises(ValueError, match="not among the user classes"):
        runner.start(1, 1, user_classes=["Ghost"])
    assert runner.state == "ready" and runner.target_user_count == 0
    await runner.quit()


async def test_a_superseded_ramp_s_awaitable_resolves() -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Idle], clock=clock)
    runner = env.create_local_runner()
    first = runner.start(10, 1)
    await settle()
    second = runner.start(3, 100)
    await asyncio.wait_for(first, 1)  # superseded: resolved, not cancelled
    await asyncio.wait_for(second, 1)
    assert runner.user_count == 3
    await runner.quit()


async def test_a_start_during_a_stop_waits_for_it_and_is_a_fresh_test() -> None:
    class Slow(User):
        @task
        async def work(self) -> None:
            await asyncio.sleep(0.1)

    env = Environment(user_classes=[Slow], stop_timeout=1)
    fired: list[str] = []
    env.events.test_start.add_listener(lambda environment: fired.append("start"))
    env.events.test_stop.add_listener(lambda environment: fired.append("stop"))
    runner = env.create_local_runner()
    await runner.start(2, 100)
    await asyncio.sleep(0.01)
    stopping = runner.stop()  # waits up to 1 s for the tasks in progress
    ramp = runner.start(3, 100)  # must not be cancelled by the stop it follows
    await asyncio.wait_for(stopping, 1)
    await asyncio.wait_for(ramp, 1)
    assert runner.user_count == 3 and runner.state == "running"
    assert fired == ["start", "stop", "start"]
    await runner.quit()


async def test_test_start_runs_once_even_when_the_first_start_is_superseded() -> None:
    env = Environment(user_classes=[Idle])
    fired: list[str] = []

    async def slow_start(environment: Environment) -> None:
        await asyncio.sleep(0.05)
        fired.append("start")

    env.events.test_start.add_listener(slow_start)
    runner = env.create_local_runner()
    runner.start(5, 100)
    await asyncio.sleep(0.01)  # the first start is inside test_start
    await asyncio.wait_for(runner.start(2, 100), 1)
    assert fired == ["start"] and runner.user_count == 2
    await runner.quit()


async def test_the_tag_selection_is_prepared_per_run_without_touching_the_class() -> None:
    from horde import tag

    ran: list[str] = []

    class Tagged(User):
        wait_time = constant(600)

        @tag("a")
        @task
        async def one(self) -> None:
            ran.append("a")

        @tag("b")
        @task
        async def two(self) -> None:
            ran.append("b")

    declared = list(Tagged.tasks)
    env = Environment(user_classes=[Tagged], tags=["b"])
    runner = env.create_local_runner()
    await runner.start(3, 100)
    await asyncio.sleep(0.01)
    assert ran == ["b", "b", "b"] and Tagged.tasks == declared
    await runner.quit()


async def test_tags_removing_every_task_end_the_test_with_the_reason() -> None:
    from horde import tag

    class Tagged(User):
        @tag("a")
        @task
        async def one(self) -> None: ...

    env = Environment(user_classes=[Tagged], exclude_tags=["a"])
    runner = env.create_local_runner()
    runner.start(1, 1)
    await asyncio.wait_for(runner.wait_stopped(), 1)
    assert runner.stop_reason is not None and "the --tags/--exclude-tags selection" in runner.stop_reason
    await runner.quit()


async def test_force_stopped_users_are_counted_per_test() -> None:
    class Long(User):
        @task
        async def work(self) -> None:
            await asyncio.sleep(20)

    env = Environment(user_classes=[Long], stop_timeout=0.02)
    runner = env.create_local_runner()
    await runner.start(2, 100)
    await asyncio.sleep(0.01)
    await runner.stop()
    assert runner.users.force_stopped == 2
    await runner.start(1, 100)
    assert runner.users.force_stopped == 0 and runner.summary_warnings() == []
    await runner.quit()


async def test_the_environment_s_dispatcher_class_plans_the_ramp() -> None:
    from horde.dispatch import UsersDispatcher

    made: list[object] = []

    class Recording(UsersDispatcher):
        def __init__(self, *args: object, **kwargs: object) -> None:
            made.append(self)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    env = Environment(user_classes=[Idle], dispatcher_class=Recording)
    runner = env.create_local_runner()
    await runner.start(3, 100)
    await runner.start(1, 100)  # a re-target keeps the same dispatcher
    assert len(made) == 1 and runner.user_count == 1
    await runner.quit()


def test_worker_status_rows_are_frozen_copies() -> None:
    import dataclasses

    from horde.runners.base import RunnerState
    from horde.runners.status import WorkerStatus

    counts = {"Idle": 2}
    row = WorkerStatus(id="w1", index=3, state=RunnerState.RUNNING, user_count=2, user_classes_count=counts)
    counts["Idle"] = 9
    assert row.user_classes_count == {"Idle": 2} and row.state == "running" and type(row.state) is str
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.user_count = 3  # type: ignore[misc]
    assert row == WorkerStatus("w1", 3, "running", 2, {"Idle": 2}) and len({row, row}) == 1
    as_dict = row.to_dict()
    as_dict["user_classes_count"]["Idle"] = 0
    assert row.user_classes_count == {"Idle": 2} and dataclasses.asdict(row)["last_heartbeat"] is None

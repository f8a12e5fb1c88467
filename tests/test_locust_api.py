"""Locust's names at Locust's module paths, behaving as in Locust: an import line ports one for one."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections import Counter

import pytest

from horde import MarkovTaskSet, StopUser, User, tag, task, transition, transitions
from horde.env import Environment
from horde.event import Events
from horde.user.markov import (
    InvalidTransitionError,
    MarkovTaskTagError,
    NoMarkovTasksError,
    NonMarkovTaskTransitionError,
)


def test_locust_module_paths_import() -> None:
    from horde.contrib.fasthttp import FastHttpSession, FastHttpUser, ResponseContextManager  # noqa: F401
    from horde.exception import (  # noqa: F401
        CatchResponseError,
        InterruptTaskSet,
        LocustError,
        MissingWaitTimeError,
        RescheduleTask,
        StopTest,
        StopUser,
    )
    from horde.log import setup_logging  # noqa: F401
    from horde.user.task import TaskSet, tag, task  # noqa: F401
    from horde.user.wait_time import between, constant, constant_pacing, constant_throughput  # noqa: F401

    assert issubclass(StopUser, LocustError)


def test_a_markov_chain_starts_at_the_first_task_and_follows_the_weights() -> None:
    class Shop(MarkovTaskSet):
        @transition("browse")
        async def index(self) -> None: ...

        @transitions({"index": 1, "browse": 3})
        async def browse(self) -> None: ...

    class Visitor(User):
        tasks = [Shop]

    env = Environment(user_classes=[Visitor], events=Events())
    chain = Shop(Visitor(env))
    seen = [chain.get_next_task().__name__ for _ in range(4001)]
    assert seen[0] == "index" and seen[1] == "browse"
    after_browse = Counter(b for a, b in itertools.pairwise(seen) if a == "browse")
    share = after_browse["browse"] / sum(after_browse.values())
    assert 0.70 < share < 0.80  # weight 3 of 4
    assert all(b == "browse" for a, b in itertools.pairwise(seen) if a == "index")


def test_a_markov_chain_runs_in_a_user() -> None:
    runs: list[str] = []

    class Flow(MarkovTaskSet):
        @transition("second")
        async def first(self) -> None:
            runs.append("first")

        @transition("first")
        async def second(self) -> None:
            runs.append("second")
            if len(runs) >= 4:
                raise StopUser()

    class Visitor(User):
        tasks = [Flow]

    env = Environment(user_classes=[Visitor], events=Events())
    env.create_local_runner()
    asyncio.run(Visitor(env).run())
    assert runs == ["first", "second", "first", "second"]


def test_bad_chains_are_refused_when_the_class_is_defined() -> None:
    with pytest.raises(NoMarkovTasksError):

        class Empty(MarkovTaskSet):
            async def plain(self) -> None: ...

    with pytest.raises(InvalidTransitionError, match="nowhere"):

        class Broken(MarkovTaskSet):
            @transition("nowhere")
            async def a(self) -> None: ...

    with pytest.raises(NonMarkovTaskTransitionError):

        class DeadEnd(MarkovTaskSet):
            @transition("b")
            async def a(self) -> None: ...

            async def b(self) -> None: ...

    with pytest.raises(MarkovTaskTagError):

        class Tagged(MarkovTaskSet):
            @tag("x")
            @transition("a")
            async def a(self) -> None: ...


def test_run_single_user_prints_each_request_and_ends_when_the_user_stops() -> None:
    from horde import run_single_user

    class Debugged(User):
        @task
        async def work(self) -> None:
            self.environment.events.request.fire(
                request_type="GET",
                name="/items",
                response_time=12.0,
                response_length=5,
                exception=None,
                context={},
            )
            raise StopUser()

    out = io.StringIO()
    run_single_user(Debugged, include_length=True, loglevel=None, stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["type", "name", "resp_ms", "length", "exception"]
    assert lines[1].split() == ["GET", "/items", "12", "5"]


async def test_stats_printer_and_stats_history_for_library_use(capsys: pytest.CaptureFixture[str]) -> None:
    from horde.stats import stats_history, stats_printer

    env = Environment(user_classes=[], events=Events())
    runner = env.create_local_runner()
    env.stats.record("GET", "/items", 3.0, 10)
    printer = asyncio.create_task(stats_printer(env.stats, interval=0.01)())
    history = asyncio.create_task(stats_history(runner))
    await asyncio.sleep(0.05)
    for t in (printer, history):
        t.cancel()
    await asyncio.gather(printer, history, return_exceptions=True)
    assert "/items" in capsys.readouterr().out
    assert len(runner.stats_history) >= 1  # type: ignore[attr-defined]


def test_runner_state_constants_have_locusts_names() -> None:
    from horde.runners import STATE_INIT, STATE_RUNNING, STATE_STOPPED

    assert (STATE_INIT, STATE_RUNNING, STATE_STOPPED) == ("ready", "running", "stopped")


async def test_custom_message_handlers_run_in_order_unless_concurrent() -> None:
    env = Environment(user_classes=[], events=Events())
    runner = env.create_local_runner()
    seen: list[str] = []

    async def slow_then_fast(environment: object, msg: object) -> None:
        data = msg.data  # type: ignore[attr-defined]
        await asyncio.sleep(0.05 if data == "first" else 0)
        seen.append(data)

    runner.register_message("serial", slow_then_fast)
    runner.register_message("parallel", slow_then_fast, concurrent=True)
    runner.send_message("serial", "first")
    runner.send_message("serial", "second")
    await asyncio.sleep(0.2)
    assert seen == ["first", "second"]  # one at a time, in arrival order
    seen.clear()
    runner.send_message("parallel", "first")
    runner.send_message("parallel", "second")
    await asyncio.sleep(0.2)
    assert seen == ["second", "first"]  # concurrent=True: the fast one does not wait
    await runner.quit()

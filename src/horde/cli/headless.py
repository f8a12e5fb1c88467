"""``horde --headless`` (and a master): run one test through the run session, print it, write the outputs,
and turn the result into the exit code."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from horde.cli.common import (
    LoadedTest,
    Shutdown,
    blocking_watch,
    fail,
    first_of,
    make_environment,
    raise_open_files_limit,
)
from horde.cli.keyboard import keyboard_control
from horde.cli.outputs import build_outputs, describe_outputs
from horde.env import Environment
from horde.exceptions import HordeError
from horde.load import arrival_stats
from horde.runners.base import Runner
from horde.session import StartRequest, TestRun

logger = logging.getLogger("horde.main")


def create_runner(
    env: Environment, options: argparse.Namespace, distributed: bool, on_master: Callable[[int], None] | None
) -> Runner:
    """A master when the run is distributed (``--master``, ``--processes``), else a local runner."""
    if not distributed:
        return env.create_local_runner()
    master = env.create_master_runner(
        options.master_bind_host,
        options.master_bind_port,
        heartbeat_interval=options.heartbeat_interval,
        heartbeat_liveness=options.heartbeat_liveness,
    )
    if on_master is not None:
        on_master(master.port)
    return master


def extra_figures(env: Environment) -> dict[str, Callable[[], float | None]]:
    """Run-wide figures thresholds may name beyond the request stats (``dropped_iterations``)."""
    arrivals = arrival_stats(env)
    return {"dropped_iterations": lambda: arrivals.dropped_iterations if arrivals.active else None}


def start_request(options: argparse.Namespace, loaded: LoadedTest | None = None) -> StartRequest:
    """The test the flags ask for (``-u``, ``-r``, ``-t``, ``-H``, or an open model's ``--arrival-rate``)."""
    model = loaded.model if loaded is not None else None
    run_time = options.run_time or getattr(model, "duration", None) or None
    return StartRequest(
        user_count=options.users if options.users is not None else 1,
        spawn_rate=options.spawn_rate or 1.0,
        host=options.host,
        run_time=run_time,
        model=model,
    )


async def run_headless(
    options: argparse.Namespace,
    loaded: LoadedTest,
    expect_workers: int | None = None,
    on_master: Callable[[int], None] | None = None,
) -> int:
    """Run a local or master test to its end and report; the exit code reflects what was measured."""
    env = make_environment(options, loaded.user_classes, loaded.shape)
    distributed = bool(options.master or expect_workers)
    try:
        runner = create_runner(env, options, distributed, on_master)
        outputs, checker = build_outputs(options, thresholds=loaded.thresholds, sources=extra_figures(env))
    except (HordeError, OSError) as e:
        return fail(str(e))
    run = TestRun(env, outputs=outputs, locustfile=options.locustfile, thresholds=checker)
    for line in describe_outputs(outputs):
        logger.info("Writing %s", line)
    shutdown = Shutdown(run.hurry, lambda: run.runner.state in ("stopping", "cleanup"))
    shutdown.install()
    gave_up: str | None = None
    try:
        await env.events.init.fire_async(environment=env, runner=runner, web_ui=None)
        await run.open()
        if distributed:
            wanted = expect_workers or options.expect_workers
            waiting = run.wait_for_workers(wanted, options.expect_workers_max_wait or None)
            done = await first_of(waiting, shutdown.requested.wait())
            if not shutdown.requested.is_set() and not next(iter(done)).result():
                ready = sum(1 for w in runner.worker_statuses() if w.state == "ready")
                gave_up = f"Gave up waiting for workers to connect ({ready} of {wanted} ready)"
                logger.error("%s", gave_up)
        if gave_up is None and shutdown.requested.is_set():
            # stopped while waiting for workers: no load was sent, so this run measured nothing
            gave_up = "Stopped before the test started: no load was sent"
        elif gave_up is None:
            if loaded.shape is not None and (options.users or options.spawn_rate):
                logger.warning(
                    "-u/--users and -r/--spawn-rate are ignored: %s decides", type(loaded.shape).__name__
                )
            raise_open_files_limit(options.users or getattr(loaded.model, "max_users", None) or 1)
            try:
                run.start(start_request(options, loaded))
            except HordeError as e:  # the load model refused what it was given: one line, no load sent
                gave_up = f"The test could not start: {e}"
                logger.error("%s", gave_up)
            else:
                with keyboard_control(run), blocking_watch(run if not distributed else None):
                    await first_of(shutdown.requested.wait(), run.wait())
                if runner.stop_reason:
                    logger.info("Test stopped: %s", runner.stop_reason)
    finally:
        shutdown.stopping = True  # from here a signal hurries the stop
        result = await run.close(gave_up=gave_up)
        shutdown.uninstall()
        await env.events.quit.fire_async(exit_code=result.exit_code)
        await env.events.drain()
    return result.exit_code

"""``horde -f locustfile.py`` without ``--headless``: serve the web UI and let the page (or ``POST /swarm``,
or ``--autostart``) start tests, as Locust does; Ctrl-C (or ``--autoquit``) ends the process."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable

from horde.cli.common import LoadedTest, Shutdown, blocking_watch, fail, first_of, make_environment
from horde.cli.headless import create_runner, extra_figures, start_request
from horde.cli.keyboard import keyboard_control
from horde.cli.options import build_parser
from horde.cli.outputs import build_outputs
from horde.exceptions import HordeError
from horde.session import TestRun
from horde.web.app import WebSettings
from horde.web.options import check_web_options
from horde.web.server import WebServer, WebServerError

logger = logging.getLogger("horde.main")


async def run_web(
    options: argparse.Namespace,
    loaded: LoadedTest,
    expect_workers: int | None = None,
    on_master: Callable[[int], None] | None = None,
) -> int:
    """Serve the UI until Ctrl-C (or ``--autoquit`` after an autostarted test); the exit code is the last
    test's verdict."""
    problem = check_web_options(options)
    if problem:
        return fail(problem)
    try:
        builtin = {action.dest for action in build_parser()._actions}
        settings = WebSettings.from_options(options, custom_dests=frozenset(vars(options)) - builtin)
    except ValueError as e:
        return fail(str(e))
    env = make_environment(options, loaded.user_classes, loaded.shape)
    distributed = bool(options.master or expect_workers)
    try:
        runner = create_runner(env, options, distributed, on_master)
        outputs, checker = build_outputs(
            options, web=True, thresholds=loaded.thresholds, sources=extra_figures(env)
        )
    except (HordeError, OSError) as e:
        return fail(str(e))
    run = TestRun(env, outputs=outputs, locustfile=options.locustfile, thresholds=checker)
    server = WebServer(run, settings)
    env.web_ui = server
    shutdown = Shutdown(run.hurry, lambda: run.runner.state in ("stopping", "cleanup"))
    shutdown.install()
    code: int | None = None
    try:
        await env.events.init.fire_async(environment=env, runner=runner, web_ui=server)
        await run.open()
        try:
            await server.start()
        except WebServerError as e:
            code = fail(str(e))
            return code
        logger.info("%s", server.startup_line())
        with keyboard_control(run), blocking_watch(run if not distributed else None):
            if options.autostart:
                await _autostart(run, options, loaded, shutdown, expect_workers)
            else:
                await shutdown.requested.wait()
    finally:
        shutdown.stopping = True  # from here a signal hurries the stop
        await server.stop()
        result = await run.close(exit_code=code)
        shutdown.uninstall()
        await env.events.quit.fire_async(exit_code=result.exit_code)
        await env.events.drain()
    return result.exit_code


async def _autostart(
    run: TestRun,
    options: argparse.Namespace,
    loaded: LoadedTest,
    shutdown: Shutdown,
    expect_workers: int | None,
) -> None:
    """Start at once (as headless would), keep serving; quit ``--autoquit`` seconds after the test ends."""
    if run.runner.worker_count == 0 or expect_workers:
        wanted = expect_workers or options.expect_workers
        ready = await run.wait_for_workers(wanted, options.expect_workers_max_wait or None)
        if not ready:
            logger.error("Gave up waiting for workers to connect")
            return
    run.start(start_request(options, loaded))
    await first_of(shutdown.requested.wait(), run.wait())
    if shutdown.requested.is_set():
        return
    if options.autoquit >= 0:
        logger.info("The test ended; quitting in %d s (--autoquit)", options.autoquit)
        await first_of(shutdown.requested.wait(), asyncio.sleep(options.autoquit))
    else:
        await shutdown.requested.wait()

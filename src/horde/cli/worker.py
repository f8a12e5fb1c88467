"""``horde --worker``: connect to a master and run the users it assigns until it says quit."""

from __future__ import annotations

import argparse
import asyncio
import logging

import horde
from horde.cli.common import Shutdown, blocking_watch, fail, first_of, make_environment
from horde.rpc.zmq import RPCError
from horde.runners.worker import WorkerRefusedError

logger = logging.getLogger("horde.main")


async def run_worker(options: argparse.Namespace, user_classes: list[type[horde.User]]) -> int:
    env = make_environment(options, user_classes, None)
    try:
        runner = env.create_worker_runner(
            options.master_host,
            options.master_port,
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_liveness=options.heartbeat_liveness,
            stats_report_interval=options.stats_report_interval,
            master_timeout=options.master_timeout,
            **(
                {"protocol_version": options.protocol_version} if options.protocol_version is not None else {}
            ),
        )
    except RPCError as e:
        return fail(str(e))
    shutdown = Shutdown(runner.hurry)
    shutdown.install()
    code = 0
    try:
        await env.events.init.fire_async(environment=env, runner=runner, web_ui=None)
        connecting = asyncio.ensure_future(runner.connect(timeout=options.master_timeout))
        done = await first_of(connecting, shutdown.requested.wait())
        if connecting in done:
            try:
                connecting.result()
            except TimeoutError:
                code = fail(
                    f"could not reach the master at {options.master_host}:{options.master_port} "
                    f"within {options.master_timeout:g} s"
                )
            except WorkerRefusedError as e:
                code = fail(f"the master refused this worker: {e}")
            else:
                with blocking_watch():  # findings go out as warnings, which reach the master's log
                    await first_of(runner.wait_quit(), shutdown.requested.wait())
        await runner.quit()
    finally:
        shutdown.uninstall()
        await env.events.quitting.fire_async(environment=env, reverse=True)
        if code == 0:
            code = runner.exit_code or (2 if env.events.unhandled_errors else 0)
        await env.events.quit.fire_async(exit_code=code)
        await env.events.drain()
    return code

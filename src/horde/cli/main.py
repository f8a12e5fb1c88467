"""``horde``: parse options, load the locustfile, run the test, print and write the results, exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import horde
from horde.cli.loader import Locustfiles, load_locustfiles
from horde.cli.logging_setup import setup_logging
from horde.cli.options import parse_options
from horde.clients.fast import FastHttpUser
from horde.clients.http import HttpUser, missing_host_message
from horde.dispatch import UsersDispatcher
from horde.env import Environment
from horde.exceptions import LocustfileError
from horde.reports import console
from horde.reports.json import write_json
from horde.rpc.zmq import RPCError
from horde.runners.base import Runner
from horde.runners.local import LocalNode
from horde.runners.master import MasterRunner

logger = logging.getLogger("horde.main")


def fail(message: str, code: int = 1) -> int:
    print(f"horde: error: {message}", file=sys.stderr)
    return code


def run_event_loop(coro: Any) -> Any:
    """Run on uvloop when it is installed (the default on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def select_user_classes(files: Locustfiles, names: Sequence[str]) -> list[type[horde.User]]:
    if not names:
        return list(files.user_classes.values())
    unknown = [n for n in names if n not in files.user_classes]
    if unknown:
        known = ", ".join(sorted(files.user_classes)) or "none"
        raise LocustfileError(f"unknown user class(es) {', '.join(unknown)}; the locustfile defines: {known}")
    return [files.user_classes[n] for n in names]


def check_hosts(classes: Sequence[type[horde.User]], host: str | None) -> None:
    if host:
        if "://" not in host:
            raise LocustfileError(f"invalid --host {host!r}: include the scheme, e.g. http://{host}")
        return
    for cls in classes:
        if issubclass(cls, (HttpUser, FastHttpUser)) and not cls.host:
            raise LocustfileError(missing_host_message(cls))


PROCESSES_CHILD_ENV = "HORDE_PROCESSES_CHILD"


def check_user_classes(user_classes: Sequence[type[horde.User]]) -> None:
    """Weights, fixed counts and names the dispatcher would reject, found before anything starts."""
    env = Environment(user_classes=user_classes)
    UsersDispatcher([LocalNode()], env.user_classes)


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run_cli(list(sys.argv[1:] if argv is None else argv)))


def check_roles(options: argparse.Namespace) -> str | None:
    if options.master and options.worker:
        return "--master and --worker cannot be combined"
    if options.processes is not None:
        if options.processes == 0 or options.processes < -1:
            return f"--processes must be a positive number or -1 (one per core), got {options.processes}"
        if options.master:
            return "--processes already runs a master; drop --master"
    if options.expect_workers < 1:
        return f"--expect-workers must be at least 1, got {options.expect_workers}"
    if options.heartbeat_liveness < 1:
        return f"--heartbeat-liveness must be at least 1, got {options.heartbeat_liveness}"
    return None


def run_cli(argv: list[str]) -> int:
    if argv and argv[0] == "demo":
        from horde.demo.run import run_demo

        return run_demo(argv[1:])
    options = parse_options(argv)
    try:
        setup_logging(options.loglevel, options.logfile)
    except (ValueError, OSError) as e:
        return fail(str(e))
    problem = check_roles(options)
    if problem:
        return fail(problem)
    try:
        files = load_locustfiles(options.locustfile)
        user_classes = select_user_classes(files, options.user_classes)
    except LocustfileError as e:
        return fail(str(e))
    if options.list_commands:
        for cls in user_classes:
            print(cls.__name__)
        return 0
    if not user_classes:
        return fail(
            f"no User class found in {options.locustfile}: define a subclass of horde.User or HttpUser"
        )
    if len(files.shape_classes) > 1:
        names = ", ".join(c.__name__ for c in files.shape_classes)
        return fail(f"more than one LoadTestShape class ({names}); keep one per run")
    if not options.worker:
        try:
            check_hosts(user_classes, options.host)
        except LocustfileError as e:
            return fail(str(e))
    try:
        check_user_classes(user_classes)
    except ValueError as e:
        return fail(str(e))
    shape = files.shape_classes[0]() if files.shape_classes else None
    if os.environ.get(PROCESSES_CHILD_ENV):
        options.processes = None  # a worker started by --processes never starts workers of its own
    if options.processes is not None:
        from horde.cli.processes import run_processes

        return run_processes(options, argv, user_classes, shape)
    if options.worker:
        from horde.cli.worker import run_worker

        return int(run_event_loop(run_worker(options, user_classes)))
    if not options.headless:
        logger.info("The web UI is not part of this build yet; running headless")
    return int(run_event_loop(run_headless(options, user_classes, shape)))


class _Shutdown:
    """The first Ctrl-C/SIGTERM stops gracefully (honouring stop_timeout); a second one stops at once."""

    def __init__(self, runner: Runner) -> None:
        self.requested = asyncio.Event()
        self.signals = 0
        self.runner = runner

    def __call__(self, signum: int) -> None:
        self.signals += 1
        if self.signals == 1:
            logger.info(
                "Received %s, stopping (press Ctrl-C again to stop at once)", signal.Signals(signum).name
            )
            self.requested.set()
            return
        logger.warning("Stopping users now")
        self.runner.environment.stop_timeout = 0
        if isinstance(self.runner, MasterRunner):
            self.runner.hurry()
        users = getattr(self.runner, "users", None)
        if users is not None:
            self.runner.spawn_background(users.kill_all(), "kill-users")

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self, sig)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def make_environment(
    options: argparse.Namespace, user_classes: list[type[horde.User]], shape: Any
) -> Environment:
    return Environment(
        user_classes=user_classes,
        shape_class=shape,
        tags=options.tags,
        exclude_tags=options.exclude_tags,
        events=horde.events,
        host=options.host,
        reset_stats=options.reset_stats,
        stop_timeout=options.stop_timeout,
        parsed_options=options,
    )


async def _first(*aws: Any) -> set[asyncio.Task[Any]]:
    """Wait for the first of several awaitables; cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done


async def run_headless(
    options: argparse.Namespace,
    user_classes: list[type[horde.User]],
    shape: Any,
    expect_workers: int | None = None,
    on_master: Callable[[int], None] | None = None,
) -> int:
    """Run a local or master test to its end and report; the exit code reflects what was measured."""
    env = make_environment(options, user_classes, shape)
    distributed = bool(options.master or expect_workers)
    runner: Runner
    if distributed:
        try:
            runner = env.create_master_runner(
                options.master_bind_host,
                options.master_bind_port,
                heartbeat_interval=options.heartbeat_interval,
                heartbeat_liveness=options.heartbeat_liveness,
            )
        except RPCError as e:
            return fail(str(e))
        if on_master is not None:
            on_master(runner.server.port)
    else:
        runner = env.create_local_runner()
    shutdown = _Shutdown(runner)
    shutdown.install()
    start_time = time.time()
    printer: asyncio.Task[None] | None = None
    gave_up = False
    try:
        await env.events.init.fire_async(environment=env, runner=runner, web_ui=None)
        runner.start_background()
        printer = asyncio.get_running_loop().create_task(_print_forever(env, runner, options))
        if isinstance(runner, MasterRunner):
            wanted = expect_workers or options.expect_workers
            waiting = runner.wait_for_workers(wanted, options.expect_workers_max_wait or None)
            done = await _first(waiting, shutdown.requested.wait())
            ready = next(iter(done)).result() if not shutdown.requested.is_set() else False
            if not ready and not shutdown.requested.is_set():
                logger.error(
                    "Gave up waiting for workers to connect (%d of %d ready)",
                    len(runner.clients.ready),
                    wanted,
                )
                gave_up = True
        if not gave_up and not shutdown.requested.is_set():
            if shape is not None:
                if options.users or options.spawn_rate:
                    logger.warning(
                        "-u/--users and -r/--spawn-rate are ignored: %s decides", type(shape).__name__
                    )
                runner.start_shape()
            else:
                runner.start(options.users if options.users is not None else 1, options.spawn_rate or 1)
            waits: list[Any] = [shutdown.requested.wait(), runner.wait_stopped()]
            if options.run_time and shape is None:
                waits.append(asyncio.sleep(options.run_time))
            done = await _first(*waits)
            if (
                options.run_time
                and shape is None
                and not shutdown.requested.is_set()
                and runner.stop_reason is None
            ):
                logger.info("--run-time limit reached, shutting down")
            elif runner.stop_reason:
                logger.info("Test stopped: %s", runner.stop_reason)
        await runner.quit()
    finally:
        if printer is not None:
            printer.cancel()
            await asyncio.gather(printer, return_exceptions=True)
        shutdown.uninstall()
        await env.events.quitting.fire_async(environment=env, reverse=True)
        end_time = time.time()
        code = 1 if gave_up else exit_code(env, runner, options)
        print(final_report(env, runner))
        if options.json_file:
            try:
                write_json(
                    options.json_file,
                    env.stats,
                    user_count=runner.final_user_classes_total(),
                    start_time=runner.test_started_at or start_time,
                    end_time=end_time,
                )
            except OSError as e:
                logger.error("could not write --json file: %s", e)
                code = code or 1
        await env.events.quit.fire_async(exit_code=code)
        await env.events.drain()
    return code


async def _print_forever(env: Environment, runner: Runner, options: argparse.Namespace) -> None:
    """The live console: the stats table every interval, the workers table whenever a worker changes."""
    seen_changes = -1
    while True:
        await asyncio.sleep(options.print_stats_interval)
        if isinstance(runner, MasterRunner) and runner.worker_state_changes != seen_changes:
            seen_changes = runner.worker_state_changes
            print(runner.workers_table(), flush=True)
        if not options.only_summary:
            print(console.stats_table(env.stats, current=True), flush=True)


def exit_code(env: Environment, runner: Runner, options: argparse.Namespace) -> int:
    """Spec order: a code set by user code, then failures/exceptions, then unhandled errors, else 0."""
    if env.process_exit_code is not None:
        return env.process_exit_code
    if env.stats.total.num_failures > 0 or runner.exceptions:
        return int(options.exit_code_on_error)
    if env.events.unhandled_errors:
        return 2
    return 0


def final_report(env: Environment, runner: Runner) -> str:
    parts = [console.summary(env.stats)]
    if runner.exceptions:
        parts.append(exceptions_table(runner))
    if isinstance(runner, MasterRunner):
        parts.append("Workers:\n" + runner.workers_table(final=True))
    warnings = runner.monitor.summary_warnings()
    users = getattr(runner, "users", None)
    if users is not None and users.force_stopped:
        warnings.append(
            f"{users.force_stopped} user(s) were still in a task at the stop deadline and were "
            "interrupted; raise --stop-timeout to let tasks finish"
        )
    if isinstance(runner, MasterRunner) and runner.dropped_messages.total():
        warnings.append(f"{runner.dropped_messages.total()} malformed or duplicate messages were ignored")
    if warnings:
        parts.append("Warnings:\n" + "\n".join(f"  - {w}" for w in warnings))
    return "\n\n".join(parts) + "\n"


def exceptions_table(runner: Runner) -> str:
    lines = ["User exceptions:", f" {'# occurrences':>14}  Exception"]
    for row in sorted(runner.exceptions.values(), key=lambda r: -r["count"]):
        lines.append(f" {row['count']:>14}  {row['msg']}")
        last = [ln for ln in row["traceback"].strip().splitlines() if ln.strip()][-3:]
        lines.extend(f" {'':>14}    {ln.strip()}" for ln in last[:-1])
    return "\n".join(lines)

"""``horde``: a thin dispatcher. It parses the options and hands the run to the mode that owns it:
``demo`` (:mod:`horde.cli.demo`), ``convert`` (:mod:`horde.convert`), ``compare`` (:mod:`horde.reports.compare`), ``--processes``
(:mod:`horde.cli.processes`), ``--worker`` (:mod:`horde.cli.worker`), the web UI (:mod:`horde.cli.webui`)
or a headless local/master run (:mod:`horde.cli.headless`)."""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
from collections.abc import Sequence

from horde._version import __version__
from horde.cli.common import PROCESSES_CHILD_ENV, LoadedTest, check_roles, fail, load_test, run_event_loop
from horde.cli.loader import Locustfiles, load_locustfiles
from horde.cli.options import parse_options
from horde.event import events
from horde.exceptions import ConfigurationError
from horde.log import setup_logging
from horde.rpc.transport import RPCError
from horde.thresholds.parse import ThresholdError
from horde.user.ratio import class_shares_by_weight, format_ratio_text, ratio_report

logger = logging.getLogger("horde.main")


def main(argv: Sequence[str] | None = None) -> None:
    code = run_cli(list(sys.argv[1:] if argv is None else argv))
    # Leave now: every report is written and every log line is out by here. What a normal exit would
    # still do is free the heap object by object, and a master that fell behind holds millions of
    # objects: measured at 5,000 simulated workers, over 20 s between "Shutting down" and the process
    # ending, long enough for an orchestrator's grace period to run out and kill it. The exit handlers
    # (the worker's shipped-locustfile cleanup, logging's flush) still run.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_cli(argv: list[str]) -> int:
    if argv and argv[0] == "demo":
        from horde.cli.demo import run_demo

        return run_demo(argv[1:])
    if argv and argv[0] == "convert":
        from horde.convert.cli import main as convert_main

        return convert_main(argv[1:])
    if argv and argv[0] == "compare":
        from horde.reports.compare import main as compare_main

        return compare_main(argv[1:])
    if argv and argv[0] == "keys":
        from horde.rpc.keys import main as keys_main

        return keys_main(argv[1:])
    first = parse_options(argv, partial=True)
    if wants_shipped_locustfile(argv, first):
        shipped = ship_locustfile(argv, first)
        if isinstance(shipped, int):
            return shipped
        argv, first = shipped, parse_options(shipped, partial=True)
    parsed = parse_locustfile_options(argv, first)
    if isinstance(parsed, int):
        return parsed
    options, files = parsed
    if not options.skip_log_setup:
        try:
            setup_logging(options.loglevel, options.logfile)
        except (ValueError, OSError) as e:
            return fail(str(e))
    problem = check_roles(options)
    if problem:
        return fail(problem)
    try:
        loaded = load_test(options, needs_host=not options.worker, files=files)
    except ThresholdError as e:  # every invalid expression, one line each, before anything starts
        for problem in e.problems:
            fail(problem)
        return 2
    except ConfigurationError as e:
        return fail(str(e))
    if options.list_commands:
        print("Available Users:")
        for name in sorted(cls.__name__ for cls in loaded.user_classes):
            print(f"    {name}")
        return 0
    if options.show_task_ratio or options.show_task_ratio_json:
        return show_task_ratio(loaded, as_json=bool(options.show_task_ratio_json))
    if os.environ.get(PROCESSES_CHILD_ENV):
        options.processes = None  # a worker started by --processes never starts workers of its own
    if options.processes is not None:
        from horde.cli.processes import run_processes

        return run_processes(options, argv, loaded)
    if options.worker:
        from horde.cli.worker import run_worker

        return int(run_event_loop(run_worker(options, loaded.user_classes)))
    logger.info("Starting horde %s", __version__)
    if not options.headless:
        from horde.cli.webui import run_web

        code = int(run_event_loop(run_web(options, loaded)))
    else:
        from horde.cli.headless import run_headless

        code = int(run_event_loop(run_headless(options, loaded)))
    logger.info("Shutting down (exit code %d)", code)
    return code


LOCUSTFILE_FLAGS = ("-f", "--locustfile")


def _is_locustfile_flag(arg: str) -> bool:
    return (
        arg in LOCUSTFILE_FLAGS
        or arg.startswith("--locustfile=")
        or (arg.startswith("-f") and arg[1:2] == "f")
    )


def _locustfile_flag_given(argv: list[str]) -> bool:
    return any(_is_locustfile_flag(arg) for arg in argv)


def _without_locustfile_flag(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LOCUSTFILE_FLAGS:
            skip = True
        elif not _is_locustfile_flag(arg):
            out.append(arg)
    return out


def wants_shipped_locustfile(argv: list[str], options: argparse.Namespace) -> bool:
    """A worker gets its locustfile from the master with ``-f -``, or with no ``-f`` (flag, config or
    HORDE_LOCUSTFILE) where there is no ``locustfile.py`` to use."""
    if not options.worker or options.processes is not None or {"-h", "--help"} & set(argv):
        return False
    if options.locustfile == "-":
        return True
    return (
        not _locustfile_flag_given(argv)
        and options.locustfile == "locustfile.py"
        and not os.path.exists("locustfile.py")
    )


def ship_locustfile(argv: list[str], first: argparse.Namespace) -> list[str] | int:
    """Fetch the master's locustfile and point ``-f`` at the unpacked copy (nothing local is imported):
    the new arguments, or an exit code when the fetch fails."""
    from horde.cli.worker import FetchError, fetch_locustfile, worker_keys
    from horde.rpc.keys import KeyFileError

    if not first.skip_log_setup:
        try:
            setup_logging(first.loglevel, first.logfile)
        except (ValueError, OSError) as e:
            return fail(str(e))
    try:
        keys = worker_keys(first)
        paths = run_event_loop(fetch_locustfile(first, keys))
    except (KeyFileError, FetchError) as e:
        return fail(str(e))
    except RPCError as e:  # the master's name does not resolve
        return fail(str(e))
    return [*_without_locustfile_flag(argv), "-f", ",".join(str(p) for p in paths)]


def parse_locustfile_options(
    argv: list[str], first: argparse.Namespace | None = None
) -> tuple[argparse.Namespace, Locustfiles | None] | int:
    """Two passes, as Locust: find and import the locustfile, let its ``init_command_line_parser``
    listeners add their flags, then parse everything (``--help`` lists the locustfile's flags too).
    Returns the options and the imported files, or an exit code."""
    if first is None:
        first = parse_options(argv, partial=True)
    files: Locustfiles | None = None
    try:
        files = load_locustfiles(first.locustfile)
    except ConfigurationError as e:
        parse_options(argv)  # an unknown flag or --help is answered first (exit 2 / 0), as argparse does
        return fail(str(e))
    options = parse_options(argv, extend=lambda parser: events.init_command_line_parser.fire(parser=parser))
    return options, files


def show_task_ratio(loaded: LoadedTest, *, as_json: bool) -> int:
    """``--show-task-ratio`` / ``--show-task-ratio-json``: how often each task would run, then exit."""
    report = ratio_report(loaded.user_classes, class_shares_by_weight(loaded.user_classes))
    print(
        json.dumps(report, indent=2) if as_json else format_ratio_text(report),
        end="" if not as_json else "\n",
    )
    return 0

"""``horde``: a thin dispatcher. It parses the options and hands the run to the mode that owns it:
``demo`` (:mod:`horde.cli.demo`), ``convert`` (:mod:`horde.convert`), ``compare`` (:mod:`horde.reports.compare`), ``--processes``
(:mod:`horde.cli.processes`), ``--worker`` (:mod:`horde.cli.worker`), the web UI (:mod:`horde.cli.webui`)
or a headless local/master run (:mod:`horde.cli.headless`)."""

from __future__ import annotations

import argparse
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
from horde.thresholds.parse import ThresholdError
from horde.user.ratio import class_shares_by_weight, format_ratio_text, ratio_report

logger = logging.getLogger("horde.main")


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run_cli(list(sys.argv[1:] if argv is None else argv)))


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
    parsed = parse_locustfile_options(argv)
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


def parse_locustfile_options(argv: list[str]) -> tuple[argparse.Namespace, Locustfiles | None] | int:
    """Two passes, as Locust: find and import the locustfile, let its ``init_command_line_parser``
    listeners add their flags, then parse everything (``--help`` lists the locustfile's flags too).
    Returns the options and the imported files, or an exit code."""
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

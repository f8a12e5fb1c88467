"""``horde``: a thin dispatcher. It parses the options and hands the run to the mode that owns it:
``demo`` (:mod:`horde.cli.demo`), ``compare`` (:mod:`horde.reports.compare`), ``--processes``
(:mod:`horde.cli.processes`), ``--worker`` (:mod:`horde.cli.worker`), the web UI (:mod:`horde.cli.webui`)
or a headless local/master run (:mod:`horde.cli.headless`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from horde.cli.common import PROCESSES_CHILD_ENV, check_roles, fail, load_test, run_event_loop
from horde.cli.logging_setup import setup_logging
from horde.cli.options import parse_options
from horde.exceptions import ConfigurationError


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run_cli(list(sys.argv[1:] if argv is None else argv)))


def run_cli(argv: list[str]) -> int:
    if argv and argv[0] == "demo":
        from horde.cli.demo import run_demo

        return run_demo(argv[1:])
    if argv and argv[0] == "compare":
        from horde.reports.compare import main as compare_main

        return compare_main(argv[1:])
    options = parse_options(argv)
    try:
        setup_logging(options.loglevel, options.logfile)
    except (ValueError, OSError) as e:
        return fail(str(e))
    problem = check_roles(options)
    if problem:
        return fail(problem)
    try:
        loaded = load_test(options, needs_host=not options.worker)
    except ConfigurationError as e:
        return fail(str(e))
    if options.list_commands:
        for cls in loaded.user_classes:
            print(cls.__name__)
        return 0
    if os.environ.get(PROCESSES_CHILD_ENV):
        options.processes = None  # a worker started by --processes never starts workers of its own
    if options.processes is not None:
        from horde.cli.processes import run_processes

        return run_processes(options, argv, loaded)
    if options.worker:
        from horde.cli.worker import run_worker

        return int(run_event_loop(run_worker(options, loaded.user_classes)))
    if not options.headless:
        from horde.cli.webui import run_web

        return int(run_event_loop(run_web(options, loaded)))
    from horde.cli.headless import run_headless

    return int(run_event_loop(run_headless(options, loaded)))

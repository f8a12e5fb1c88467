"""What every ``horde`` mode shares: loading and checking the locustfile, building the Environment, the
event loop, one-line errors, and the signal handling that turns Ctrl-C into a graceful stop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from horde.blocking import BlockingDetector
from horde.cli.loader import Locustfiles, load_locustfiles
from horde.clients.fast import FastHttpUser
from horde.clients.http import HttpUser, missing_host_message
from horde.dispatch import UsersDispatcher
from horde.env import Environment
from horde.exceptions import ConfigurationError, LocustfileError
from horde.load import LoadModel, model_from_options
from horde.shape import LoadTestShape
from horde.thresholds.options import check_threshold_options
from horde.thresholds.parse import Threshold, ThresholdError
from horde.user.checks import porting_problems
from horde.user.users import User

if TYPE_CHECKING:
    from horde.session import TestRun

logger = logging.getLogger("horde.main")

#: Set in the environment of the worker processes ``--processes`` starts (they never start their own).
PROCESSES_CHILD_ENV = "HORDE_PROCESSES_CHILD"


def fail(message: str, code: int = 1) -> int:
    """Print one ``horde: error: …`` line and return the exit code to use."""
    print(f"horde: error: {message}", file=sys.stderr)
    return code


def run_event_loop(coro: Any) -> Any:
    """Run on uvloop when it is installed (the default on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass
class LoadedTest:
    """The locustfile's classes, selected and checked, ready to build an Environment from, and the run's
    parsed thresholds."""

    files: Locustfiles
    user_classes: list[type[User]]
    shape: LoadTestShape | None
    thresholds: list[Threshold] = field(default_factory=list)
    #: an open (arrival-rate) model from --arrival-rate/--stages; None: closed user counts or a shape
    model: LoadModel | None = None


def select_user_classes(files: Locustfiles, names: Sequence[str]) -> list[type[User]]:
    if not names:
        return list(files.user_classes.values())
    unknown = [n for n in names if n not in files.user_classes]
    if unknown:
        known = ", ".join(sorted(files.user_classes)) or "none"
        raise LocustfileError(f"unknown user class(es) {', '.join(unknown)}; the locustfile defines: {known}")
    return [files.user_classes[n] for n in names]


def check_hosts(classes: Sequence[type[User]], host: str | None) -> None:
    if host:
        if "://" not in host:
            raise LocustfileError(f"invalid --host {host!r}: include the scheme, e.g. http://{host}")
        return
    for cls in classes:
        if issubclass(cls, (HttpUser, FastHttpUser)) and not cls.host:
            raise LocustfileError(missing_host_message(cls))


def check_user_classes(user_classes: Sequence[type[User]]) -> None:
    """Weights, fixed counts and names the dispatcher would reject, found before anything starts."""

    class _Probe:
        id = "probe"

    env = Environment(user_classes=user_classes)
    UsersDispatcher([_Probe()], env.user_classes)


def check_roles(options: argparse.Namespace) -> str | None:
    """Every combination of options that cannot run, as one line each (None when all is well)."""
    problems = []
    if options.master and options.worker:
        problems.append("--master and --worker cannot be combined")
    if options.processes is not None:
        if options.processes == 0 or options.processes < -1:
            problems.append(
                f"--processes must be a positive number or -1 (one per core), got {options.processes}"
            )
        if options.master:
            problems.append("--processes already runs a master; drop --master")
    if getattr(options, "csv_full_history", False) and not getattr(options, "csv_prefix", None):
        problems.append("--csv-full-history needs --csv PREFIX")
    return "\n".join(problems) or None


def load_test(
    options: argparse.Namespace, *, needs_host: bool = True, files: Locustfiles | None = None
) -> LoadedTest:
    """Import the locustfile(s) (unless ``files`` already holds them) and check the classes; raises
    ConfigurationError with one clear line."""
    if files is None:
        files = load_locustfiles(options.locustfile)
    user_classes = select_user_classes(files, options.user_classes)
    if options.list_commands or options.show_task_ratio or options.show_task_ratio_json:
        return LoadedTest(files, user_classes, None)
    if not user_classes:
        raise LocustfileError(
            f"no User class found in {options.locustfile}: define a subclass of horde.User or HttpUser"
        )
    if len(files.shape_classes) > 1:
        names = ", ".join(c.__name__ for c in files.shape_classes)
        raise LocustfileError(f"more than one LoadTestShape class ({names}); keep one per run")
    problems = [line for cls in user_classes for line in porting_problems(cls)]
    if problems:
        raise LocustfileError("\n".join(problems))
    if needs_host:
        check_hosts(user_classes, options.host)
    try:
        check_user_classes(user_classes)
    except ValueError as e:
        raise ConfigurationError(str(e)) from None
    thresholds: list[Threshold] = []
    if not options.worker:  # the master (or the local run) evaluates thresholds; workers never do
        thresholds, threshold_problems = check_threshold_options(options)
        if threshold_problems:
            raise ThresholdError(threshold_problems)
    shape = files.shape_classes[0]() if files.shape_classes else None
    if shape is None and options.headless and options.users == 0 and not options.worker:
        raise ConfigurationError("-u/--users 0 would run no user at all; give at least 1")
    model = None if options.worker else model_from_options(options, user_classes)
    if model is None and not options.worker and files.models:
        if len(files.models) > 1:
            raise LocustfileError("the locustfile defines more than one arrival-rate model; keep one per run")
        model = files.models[0]  # an open model the locustfile itself declares (the flags win over it)
    return LoadedTest(files, user_classes, shape, thresholds, model)


def make_environment(
    options: argparse.Namespace, user_classes: list[type[User]], shape: LoadTestShape | None
) -> Environment:
    return Environment(
        user_classes=user_classes,
        shape_class=shape,
        tags=options.tags,
        exclude_tags=options.exclude_tags,
        host=options.host,
        reset_stats=options.reset_stats,
        stop_timeout=options.stop_timeout,
        parsed_options=options,
    )


class Shutdown:
    """The first Ctrl-C/SIGTERM stops gracefully (honouring stop_timeout); a second one stops at once.

    ``on_hurry`` is what "at once" means for this front end (the runner's or the run session's ``hurry``).
    """

    def __init__(self, on_hurry: Callable[[], None], is_stopping: Callable[[], bool] | None = None) -> None:
        self.requested = asyncio.Event()
        self.signals = 0
        self.on_hurry = on_hurry
        self._is_stopping = is_stopping
        #: set once the front end is ending the run; with ``is_stopping`` (the runner is already stopping)
        #: the first signal hurries the stop instead of being absorbed by it, so an orchestrator's SIGTERM
        #: during a long --stop-timeout is obeyed and the results are still written
        self.stopping = False

    def __call__(self, signum: int) -> None:
        self.signals += 1
        stopping = self.stopping or (self._is_stopping is not None and self._is_stopping())
        if self.signals == 1 and not stopping:
            logger.info(
                "Received %s, stopping (press Ctrl-C again to stop at once)", signal.Signals(signum).name
            )
            self.requested.set()
            return
        self.requested.set()
        logger.warning("Stopping users now")
        self.on_hurry()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self, sig)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def first_of(*aws: Any) -> set[asyncio.Task[Any]]:
    """Wait for the first of several awaitables; cancel the rest and wait for them to end."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done


def raise_open_files_limit(users: int) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit (often 1024 → 1M on Linux), and warn when ``users``
    (one connection each, plus headroom for the runtime) still cannot fit: otherwise requests fail with
    "Too many open files", which looks like the target's fault."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    elif hard == resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < 1 << 20:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, hard))
            soft = 1 << 20
        except (ValueError, OSError):
            pass
    needed = users + 200
    if soft != resource.RLIM_INFINITY and needed > soft:
        logger.warning(
            "The open-files limit is %d but %d users need about %d file descriptors: requests will fail "
            "with 'Too many open files'. Raise it (ulimit -n) or spread the users over more processes.",
            soft,
            users,
            needed,
        )


@contextlib.contextmanager
def blocking_watch(run: TestRun | None = None) -> Iterator[BlockingDetector]:
    """Watch this process's event loop for blocking user code while the block runs (see horde.blocking);
    with a run session, its findings join the run's warnings."""
    detector = BlockingDetector(asyncio.get_running_loop())
    if run is not None:
        run.add_warning_source(detector.summary)
    detector.start()
    try:
        yield detector
    finally:
        detector.stop()

"""The Environment ties one test together: user classes, options, events, stats and its one runner."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from horde.clock import SYSTEM_CLOCK, Clock
from horde.event import Events
from horde.event import events as process_events
from horde.exceptions import ConfigurationError, RunnerAlreadyExistsError
from horde.stats import RequestStats
from horde.user.error_log import UserErrorLog
from horde.user.task import select_tasks_by_tags
from horde.user.users import User

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from horde.runners.base import Runner
    from horde.runners.local import LocalRunner
    from horde.runners.master import MasterRunner
    from horde.runners.worker import WorkerRunner
    from horde.shape import LoadTestShape


#: The stop reason when ``-i/--iterations`` runs out (a planned end, not a failure).
ITERATIONS_DONE = "the iteration limit was reached"


class IterationBudget:
    """``-i N``: N task runs in all. Users stop when they find the budget spent; the test ends when the
    last of the N runs has finished (so exactly N complete, none is cut off by the stop)."""

    __slots__ = ("done", "left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.done = 0

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def finished(self, environment: Environment) -> None:
        self.done += 1
        if self.done == self.limit and environment.runner is not None:
            environment.runner.stop_test(ITERATIONS_DONE)

    def reset(self) -> None:
        self.left = self.limit
        self.done = 0


class Environment:
    """Everything a runner needs, and what listeners receive as ``environment``.

    >>> env = Environment(user_classes=[Shop], host="http://127.0.0.1:8080")
    >>> runner = env.create_local_runner()
    """

    def __init__(
        self,
        *,
        user_classes: Sequence[type[User]] | None = None,
        shape_class: LoadTestShape | None = None,
        tags: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        events: Events | None = None,
        host: str | None = None,
        reset_stats: bool = False,
        stop_timeout: float | None = None,
        catch_exceptions: bool = True,
        parsed_options: argparse.Namespace | None = None,
        dispatcher_class: type | None = None,
        clock: Clock | None = None,
    ) -> None:
        from horde.dispatch import UsersDispatcher

        # without events=, the process-wide hooks: a listener on ``horde.events`` is never silently ignored
        self.events = events if events is not None else process_events
        self.clock = clock or SYSTEM_CLOCK
        self.user_classes = self._checked_user_classes(user_classes or [])
        #: the classes as given; ``user_classes`` is this minus any class a tag selection left task-less
        self.declared_user_classes = list(self.user_classes)
        self.shape_class = shape_class
        self.tags = set(tags) if tags else None
        self.exclude_tags = set(exclude_tags) if exclude_tags else None
        self.host = host
        self.reset_stats = reset_stats
        self.catch_exceptions = catch_exceptions
        self.parsed_options = parsed_options
        if stop_timeout is None and parsed_options is not None:
            stop_timeout = getattr(parsed_options, "stop_timeout", None)
        self.stop_timeout: float = float(stop_timeout or 0.0)
        self.dispatcher_class = dispatcher_class or UsersDispatcher
        self.stats = RequestStats(clock=self.clock)
        max_entries = getattr(parsed_options, "max_entries", None) if parsed_options is not None else None
        if max_entries is not None:
            self.stats.max_entries = max_entries or None  # 0 means no limit
        self.runner: Runner | None = None
        self.process_exit_code: int | None = None
        self.web_ui: Any = None
        self.worker_logs: dict[str, list[str]] = {}
        #: per-run task lists under the tag selection (``{class: tasks}``); ``None`` when no tags are
        #: selected. Users and task sets read it at construction; user classes are never modified.
        self.task_selection: dict[type, list[Any]] | None = None
        #: ``-i/--iterations``: how many task runs this process may still start (None: no limit)
        self.iteration_budget: IterationBudget | None = None
        #: the first of each kind of task exception is logged in full, repeats are counted
        self.user_error_log = UserErrorLog(self.clock)
        iterations = getattr(parsed_options, "iterations", None) if parsed_options is not None else None
        if iterations:
            self.iteration_budget = IterationBudget(int(iterations))
        if shape_class is not None:
            from horde.shape import LoadTestShape

            if not isinstance(shape_class, LoadTestShape):
                raise ConfigurationError(f"shape_class must be a LoadTestShape instance, got {shape_class!r}")

    @staticmethod
    def _checked_user_classes(classes: Sequence[type[User]]) -> list[type[User]]:
        names = [c.__name__ for c in classes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigurationError(f"user class names must be unique; duplicated: {', '.join(duplicates)}")
        kept = [c for c in classes if (c.weight or 0) > 0 or (c.fixed_count or 0) > 0]
        if classes and not kept:
            raise ConfigurationError(
                "every user class has weight 0 and no fixed_count: there are no users to run"
            )
        return kept

    def user_classes_by_name(self) -> dict[str, type[User]]:
        return {c.__name__: c for c in self.user_classes}

    def _attach(self, runner: Runner) -> Runner:
        if self.runner is not None:
            raise RunnerAlreadyExistsError(f"this environment already has a runner: {self.runner!r}")
        self.runner = runner
        if self.shape_class is not None:
            self.shape_class.runner = runner
        return runner

    def create_local_runner(self) -> LocalRunner:
        from horde.runners.local import LocalRunner

        if self.runner is not None:  # before the runner subscribes its listeners
            raise RunnerAlreadyExistsError(f"this environment already has a runner: {self.runner!r}")
        runner = LocalRunner(self)
        self._attach(runner)
        return runner

    def create_master_runner(
        self, master_bind_host: str = "*", master_bind_port: int = 5557, **options: Any
    ) -> MasterRunner:
        """A master listening on ``master_bind_host:master_bind_port`` (port 0 picks a free one)."""
        from horde.runners.master import MasterRunner

        if self.runner is not None:
            raise RunnerAlreadyExistsError(f"this environment already has a runner: {self.runner!r}")
        runner = MasterRunner(self, master_bind_host, master_bind_port, **options)
        self._attach(runner)
        return runner

    def create_worker_runner(self, master_host: str, master_port: int, **options: Any) -> WorkerRunner:
        """A worker that will connect to the master at ``master_host:master_port``."""
        from horde.runners.worker import WorkerRunner

        if self.runner is not None:
            raise RunnerAlreadyExistsError(f"this environment already has a runner: {self.runner!r}")
        runner = WorkerRunner(self, master_host, master_port, **options)
        self._attach(runner)
        return runner

    def prepare_run(self) -> None:
        """Fix this run's per-class choices (the tag selection) before its users are created.

        Called at every fresh test, so a change of ``tags``/``exclude_tags`` between tests (a worker told
        by its master, a new start from the UI) takes effect. A class the selection leaves without tasks is
        left out of the run with a warning, as Locust does, while other classes still have tasks; when
        every class is left empty the run's no-tasks check stops it, naming the selection. The host override
        needs no preparation: each user reads ``environment.host`` when it is created.
        """
        if self.iteration_budget is not None:
            self.iteration_budget.reset()
        self.user_classes = list(self.declared_user_classes)
        if self.tags is None and self.exclude_tags is None:
            self.task_selection = None
            return
        selection: dict[type, list[Any]] = {}
        for cls in self.declared_user_classes:
            select_tasks_by_tags(cls, self.tags, self.exclude_tags, selection)
        self.task_selection = selection
        runnable = [c for c in self.declared_user_classes if selection.get(c)]
        emptied = [c.__name__ for c in self.declared_user_classes if not selection.get(c)]
        if runnable and emptied:
            logger.warning(
                "The tag selection leaves %s without tasks; running the other classes only",
                ", ".join(emptied),
            )
            self.user_classes = runnable

    def tasks_for(self, cls: type) -> list[Any]:
        """The tasks ``cls`` runs in this run (its own, narrowed by the tag selection)."""
        if self.task_selection is not None and cls in self.task_selection:
            return self.task_selection[cls]
        return list(getattr(cls, "tasks", None) or [])

    # transitional names, kept until every runner calls prepare_run (they change no class any more)
    def apply_tag_filter(self) -> None:
        self.prepare_run()

    def apply_host(self) -> None:
        """No-op: users read ``environment.host`` when created (kept for runners not yet updated)."""

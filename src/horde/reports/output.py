"""The ``Output`` protocol: one shape for everything that consumes a run's statistics.

The run session takes one :class:`~horde.stats.snapshot.StatsSnapshot` per tick (once per second while
a test runs) and hands the *same* snapshot to every output: the console printer, the CSV writer, the
HTML report, the Prometheus exporter and, later, the threshold checker are all consumers of that one
per-tick snapshot (the k6 ``output`` pattern). No output reads the runner or recomputes percentiles on
its own, so every output shows the same numbers for the same second, and a new output is one new module.

Life cycle, driven by the session (``horde.session.TestRun``):

* ``start(run)`` once, before the first tick. ``run`` is the :class:`RunInfo` (the ``TestRun``):
  ``.env``, ``.options``, ``.history`` and ``.status()``. Raise here to refuse to start (the session
  reports the error before any user is spawned); checks that can run even earlier, such as whether a
  path is writable, are plain functions the CLI calls (see ``check_writable`` in the csv/json modules).
* ``on_tick(snapshot)`` once per tick. It must be cheap (it runs on the event loop that drives the
  users): render and write, never sleep.
* ``stop(result)`` exactly once at the end, always: normal end, run time reached, Ctrl-C, SIGTERM and a
  ``StopTest``. ``result`` is the final :class:`RunResult`; whatever an output writes at ``stop`` must be
  computed from ``result`` (``result.snapshot`` / ``result.stats``) so that every report ends with the same
  totals.

``description()`` (optional) returns one line for the console at start, e.g. ``"CSV: out_stats.csv,
out_stats_history.csv, out_failures.csv, out_exceptions.csv (every 1 s, full history)"``; use
:func:`describe` to read it from any output.

>>> class Count:
...     def start(self, run): self.ticks = 0
...     def on_tick(self, snapshot): self.ticks += 1
...     def stop(self, result): pass
>>> isinstance(Count(), Output)
True
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from horde.exceptions import ConfigurationError

if TYPE_CHECKING:
    from horde.env import Environment
    from horde.stats import RequestStats
    from horde.stats.history import StatsHistory
    from horde.stats.snapshot import StatsSnapshot


@runtime_checkable
class Output(Protocol):
    """A consumer of the per-tick statistics snapshot (see the module docstring for the life cycle)."""

    def start(self, run: RunInfo) -> None:
        """Called once before the first tick; ``run`` gives the environment, options and history."""
        ...

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        """Called once per tick (about every second) while a test runs, with the shared snapshot."""
        ...

    def stop(self, result: RunResult) -> None:
        """Called exactly once at the end of the run (also on Ctrl-C, SIGTERM and ``StopTest``)."""
        ...


class RunInfo(Protocol):
    """What an output may read about the run it belongs to (the session's ``TestRun`` provides it)."""

    @property
    def env(self) -> Environment: ...

    @property
    def options(self) -> argparse.Namespace | None: ...

    @property
    def history(self) -> StatsHistory: ...

    def status(self) -> Any:
        """The session's ``RunStatus`` (state, users, ``workers``, ``version`` …)."""
        ...


class RunResult(Protocol):
    """The fields of the session's ``RunResult`` that outputs read (the session's frozen dataclass)."""

    @property
    def start_time(self) -> float: ...
    @property
    def end_time(self) -> float: ...
    @property
    def duration(self) -> float: ...
    @property
    def user_count(self) -> int: ...
    @property
    def user_classes_count(self) -> Mapping[str, int]: ...
    @property
    def stats(self) -> RequestStats: ...
    @property
    def snapshot(self) -> StatsSnapshot: ...
    @property
    def history(self) -> StatsHistory: ...
    @property
    def exceptions(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def workers(self) -> Sequence[Any]: ...
    @property
    def warnings(self) -> Sequence[str]: ...
    @property
    def stop_reason(self) -> str | None: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def options(self) -> argparse.Namespace | None: ...
    @property
    def host(self) -> str | None: ...
    @property
    def locustfile(self) -> str | None: ...


def describe(output: object) -> str:
    """The output's one-line ``description()``, or its class name when it has none."""
    method = getattr(output, "description", None)
    if callable(method):
        text = method()
        if isinstance(text, str) and text:
            return text.splitlines()[0]
    return type(output).__name__


class OutputPathError(ConfigurationError):
    """A report path that cannot be written; raised before the test starts, the message is one line."""


def check_writable_file(path: str | os.PathLike[str]) -> None:
    """Fail now, with one line, if ``path`` could not be written at the end of the run.

    Missing parent directories are created (as Locust does for ``--csv``). ``"-"`` (stdout) always passes.
    The check creates and removes a temporary file beside ``path``, since report files are written
    beside their destination and renamed into place.
    """
    if str(path) == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise OutputPathError(f"cannot write {str(path)!r}: it is a directory")
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"cannot write {str(path)!r}: {str(ancestor)!r} is not a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".check")
        os.close(fd)
        os.unlink(tmp)
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise OutputPathError(f"cannot write {str(path)!r}: {e.strerror or e}") from None


__all__ = ["Output", "OutputPathError", "RunInfo", "RunResult", "check_writable_file", "describe"]

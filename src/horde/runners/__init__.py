"""Runners: the state machine that starts, paces and stops users (local, master, worker).

``STATE_*`` are Locust's names for the runner states (``runner.state == STATE_RUNNING``); each is the
:class:`RunnerState` member, which also compares equal to its string value.
"""

from horde.runners.base import (
    STATE_CLEANUP,
    STATE_INIT,
    STATE_MISSING,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    Runner,
    RunnerState,
)
from horde.runners.local import LocalRunner
from horde.runners.master import MasterRunner
from horde.runners.worker import WorkerRunner

__all__ = [
    "STATE_CLEANUP",
    "STATE_INIT",
    "STATE_MISSING",
    "STATE_RUNNING",
    "STATE_SPAWNING",
    "STATE_STOPPED",
    "STATE_STOPPING",
    "LocalRunner",
    "MasterRunner",
    "Runner",
    "RunnerState",
    "WorkerRunner",
]

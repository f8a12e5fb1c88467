"""Runners: the state machine that starts, paces and stops users (local, master, worker)."""

from horde.runners.base import Runner, RunnerState
from horde.runners.local import LocalRunner
from horde.runners.master import MasterRunner
from horde.runners.worker import WorkerRunner

__all__ = ["LocalRunner", "MasterRunner", "Runner", "RunnerState", "WorkerRunner"]

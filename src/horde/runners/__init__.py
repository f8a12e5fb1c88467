"""Runners: the state machine that starts, paces and stops users (local, master, worker)."""

from horde.runners.base import Runner, RunnerState
from horde.runners.local import LocalRunner

__all__ = ["LocalRunner", "Runner", "RunnerState"]

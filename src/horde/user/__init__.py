"""The user model: User, tasks, task sets and wait-time helpers."""

from horde.user.markov import MarkovTaskSet, transition, transitions
from horde.user.task import SequentialTaskSet, TaskSet, tag, task
from horde.user.users import User
from horde.user.wait_time import between, constant, constant_pacing, constant_throughput

__all__ = [
    "MarkovTaskSet",
    "SequentialTaskSet",
    "TaskSet",
    "User",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "tag",
    "task",
    "transition",
    "transitions",
]

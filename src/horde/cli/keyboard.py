"""Locust's keyboard control of a running test: ``w``/``W`` add 1/10 users, ``s``/``S`` remove 1/10.

Active only when stdin is a terminal (never on workers, never in CI); the terminal is put in cbreak mode
for single key presses and restored when the run ends, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from horde.session import TestRun

logger = logging.getLogger("horde.main")

#: key → change in the target user count
KEYS = {"w": 1, "W": 10, "s": -1, "S": -10}


def step_for(key: str, current: int) -> int | None:
    """The new target for a key press, or None when the key means nothing (never below 0)."""
    delta = KEYS.get(key)
    if delta is None:
        return None
    return max(0, current + delta)


def apply_key(run: TestRun, key: str) -> None:
    """Re-target a running test by one key press (ignored while no test runs or with a load shape)."""
    status = run.status()
    if status.state not in ("spawning", "running") or run.env.shape_class is not None:
        return
    target = step_for(key, status.target_user_count)
    if target is None or target == status.target_user_count:
        return
    logger.info("Keyboard: %s users", f"{target - status.target_user_count:+d}")
    run.edit(target, status.spawn_rate or 1.0)


@contextlib.contextmanager
def keyboard_control(run: TestRun) -> Iterator[None]:
    """While active, key presses on a terminal stdin change the user count of ``run``."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    loop = asyncio.get_running_loop()

    def on_input() -> None:
        try:
            data = os.read(fd, 32).decode(errors="ignore")
        except OSError:
            return
        for key in data:
            try:
                apply_key(run, key)
            except Exception as e:  # a bad edit (a stopping test) must not end the run
                logger.warning("Keyboard: %s", e)

    tty.setcbreak(fd)
    loop.add_reader(fd, on_input)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

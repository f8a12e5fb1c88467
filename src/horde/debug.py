"""``run_single_user``: run one user in this process, printing each request, to debug a locustfile (as
Locust's ``locust.run_single_user``). Put it under ``if __name__ == "__main__":`` and run
``python locustfile.py``; set breakpoints in tasks as in any Python program.

    if __name__ == "__main__":
        run_single_user(Shop)
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from horde.env import Environment
from horde.log import setup_logging
from horde.user.users import User


class _RequestPrinter:
    """One line per request, in Locust's column layout."""

    def __init__(
        self, stream: TextIO, include_length: bool, include_time: bool, include_context: bool
    ) -> None:
        self.stream = stream
        self.include_length = include_length
        self.include_time = include_time
        self.include_context = include_context
        header = f"{'type':<8} {'name':<50} {'resp_ms':>7} "
        header += "length " if include_length else ""
        header += "exception"
        self.stream.write(header + "\n")

    def __call__(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | str | None = None,
        context: Any = None,
        start_time: Any = None,
        **_: Any,
    ) -> None:
        time = f"{response_time:7.0f}" if response_time is not None else f"{'':>7}"
        line = f"{request_type:<8} {name[:50]:<50} {time} "
        if self.include_length:
            line += f"{response_length:<6} "
        line += repr(exception) if exception is not None else ""
        if self.include_time and start_time is not None:
            line += f" start={start_time}"
        if self.include_context and context:
            line += f" context={context}"
        self.stream.write(line.rstrip() + "\n")
        self.stream.flush()


def run_single_user(
    user_class: type[User],
    include_length: bool = False,
    include_time: bool = False,
    include_context: bool = False,
    loglevel: str | None = "WARNING",
    host: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Run one ``user_class`` user until it stops (``StopUser``, ``StopTest``) or Ctrl-C; print its requests."""
    if loglevel:
        setup_logging(loglevel)
    try:
        _run(
            _single_user(
                user_class, include_length, include_time, include_context, host, stream or sys.stdout
            )
        )
    except KeyboardInterrupt:
        pass


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


async def _single_user(
    user_class: type[User],
    include_length: bool,
    include_time: bool,
    include_context: bool,
    host: str | None,
    stream: TextIO,
) -> None:
    env = Environment(user_classes=[user_class], host=host)
    runner = env.create_local_runner()
    printer = _RequestPrinter(stream, include_length, include_time, include_context)
    env.events.request.add_listener(printer)
    await env.events.init.fire_async(environment=env, runner=runner, web_ui=None)
    env.prepare_run()
    await env.events.test_start.fire_async(environment=env)
    try:
        await user_class(env).run()
    finally:
        await env.events.test_stopping.fire_async(environment=env)
        await env.events.test_stop.fire_async(environment=env)
        await env.events.quitting.fire_async(environment=env)
        env.events.request.remove_listener(printer)
        await env.events.drain()

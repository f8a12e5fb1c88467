"""Log format and destinations, as the ``horde`` command sets them up (``horde.log.setup_logging``, Locust's
``locust.log.setup_logging``, for library users who want the same lines)."""

from __future__ import annotations

import logging
import socket
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup_logging(loglevel: str = "INFO", logfile: str | None = None) -> None:
    """Log to stderr (and ``logfile``), leaving stdout to the stats tables."""
    name = loglevel.upper()
    if name not in LEVELS:
        raise ValueError(f"invalid log level {loglevel!r}: use one of {', '.join(LEVELS)}")
    fmt = f"[%(asctime)s] {socket.gethostname()}/%(levelname)s/%(name)s: %(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        handlers.append(logging.FileHandler(logfile))
    logging.basicConfig(level=name, format=fmt, handlers=handlers, force=True)
    # aiohttp logs every failed request at DEBUG/INFO; the stats already count them
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, logging.getLevelName(name)))

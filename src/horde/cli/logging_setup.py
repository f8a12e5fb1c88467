"""Log format and destinations for the command line."""

from __future__ import annotations

import logging
import socket
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup_logging(level: str, logfile: str | None = None) -> None:
    """Log to stderr (and ``logfile``), leaving stdout to the stats tables."""
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"invalid log level {level!r}: use one of {', '.join(LEVELS)}")
    fmt = f"[%(asctime)s] {socket.gethostname()}/%(levelname)s/%(name)s: %(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        handlers.append(logging.FileHandler(logfile))
    logging.basicConfig(level=name, format=fmt, handlers=handlers, force=True)
    # aiohttp logs every failed request at DEBUG/INFO; the stats already count them
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, logging.getLevelName(name)))

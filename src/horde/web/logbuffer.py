"""The last log lines of this process, kept for the UI's Logs tab (``GET /logs``)."""

from __future__ import annotations

import logging
import socket
from collections import deque

#: Lines kept (Locust keeps 500).
MAX_LINES = 500


class LogBuffer(logging.Handler):
    """A logging handler that keeps the last ``capacity`` formatted records; attach it to the root logger.

    ``version`` counts records kept and ``alerts`` those at WARNING or above, so the page reloads the logs
    only when something new arrived and flags the Logs tab only for warnings and errors (as Locust does).
    """

    def __init__(self, capacity: int = MAX_LINES) -> None:
        super().__init__(level=logging.INFO)
        self.lines: deque[tuple[str, str]] = deque(maxlen=capacity)  # (levelname, line)
        self.version = 0
        self.alerts = 0
        host = socket.gethostname().split(".")[0]
        self.setFormatter(logging.Formatter(f"[%(asctime)s] {host}/%(levelname)s/%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must never break the code that logged it
            self.handleError(record)
            return
        self.lines.append((record.levelname, line))
        self.version += 1
        if record.levelno >= logging.WARNING:
            self.alerts += 1

    def texts(self) -> list[str]:
        return [line for _, line in self.lines]

    def attach(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).addHandler(self)

    def detach(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self)

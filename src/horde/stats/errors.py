"""The error table: one row per (method, name, error text), counted across users and workers.

Rows are keyed by the *text* of the error, with memory addresses masked, so the same failure raised by
different objects (``<Connection object at 0x7f…>``) lands on one row, and so two processes produce the same
key for the same failure (a Python ``hash`` would differ per process).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# CPython reprs show addresses as "at 0x7f3a…" (any length) and debuggers/ctypes as long hex numbers.
_ADDRESS = re.compile(r"(?<=at )0x[0-9a-fA-F]+|0x[0-9a-fA-F]{8,}")
_MASK = "0x..."
# Separates the parts of a key; it cannot occur in an HTTP method or a URL path.
_KEY_SEPARATOR = "\x1f"


def error_text(error: object) -> str:
    """A stable, readable text for an error: strings as given, exceptions as ``repr``; addresses masked.

    >>> error_text(ConnectionRefusedError(111, "Connection refused"))
    "ConnectionRefusedError(111, 'Connection refused')"
    >>> error_text("<object object at 0x7f12ab34cd56>")
    '<object object at 0x...>'
    """
    text = error if isinstance(error, str) else repr(error)
    if "0x" in text:
        text = _ADDRESS.sub(_MASK, text)
    return text


def error_key(method: str, name: str, text: str) -> str:
    """The error table key of an already-normalised error text (see :func:`error_text`)."""
    return f"{method}{_KEY_SEPARATOR}{name}{_KEY_SEPARATOR}{text}"


class StatsError:
    """One row of the error table.

    ``first_seen``/``last_seen`` are epoch seconds; merging keeps the earliest and the latest.
    """

    __slots__ = ("error", "first_seen", "last_seen", "method", "name", "occurrences")

    def __init__(
        self,
        method: str,
        name: str,
        error: object,
        occurrences: int = 0,
        first_seen: float | None = None,
        last_seen: float | None = None,
    ) -> None:
        self.method = method
        self.name = name
        self.error: str = error_text(error)
        self.occurrences = occurrences
        self.first_seen = first_seen
        self.last_seen = last_seen

    # Locust's names, for listeners written against it.
    parse_error = staticmethod(error_text)

    @staticmethod
    def create_key(method: str, name: str, error: object) -> str:
        return error_key(method, name, error_text(error))

    @property
    def key(self) -> str:
        return error_key(self.method, self.name, self.error)

    def occurred(self, now: float, n: int = 1) -> None:
        self.occurrences += n
        if self.first_seen is None or now < self.first_seen:
            self.first_seen = now
        if self.last_seen is None or now > self.last_seen:
            self.last_seen = now

    def extend(self, other: StatsError) -> None:
        """Add another row with the same key (e.g. from a worker's report)."""
        self.occurrences += other.occurrences
        if other.first_seen is not None and (self.first_seen is None or other.first_seen < self.first_seen):
            self.first_seen = other.first_seen
        if other.last_seen is not None and (self.last_seen is None or other.last_seen > self.last_seen):
            self.last_seen = other.last_seen

    def to_name(self) -> str:
        """The row as the console shows it: ``METHOD name: error text``."""
        return f"{self.method} {self.name}: {self.error}"

    def serialize(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "error": self.error,
            "occurrences": self.occurrences,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @classmethod
    def unserialize(cls, data: Mapping[str, Any]) -> StatsError:
        """Rebuild a row from :meth:`serialize` output; raises ``ValueError`` on malformed input."""
        if not isinstance(data, Mapping):
            raise ValueError(f"error row must be a mapping, got {type(data).__name__}")
        try:
            method, name, error, occurrences = (
                data["method"],
                data["name"],
                data["error"],
                data["occurrences"],
            )
        except KeyError as exc:
            raise ValueError(f"error row lacks {exc.args[0]!r}") from None
        if not isinstance(method, str) or not isinstance(name, str) or not isinstance(error, str):
            raise ValueError("error row method, name and error must be strings")
        if type(occurrences) is not int or occurrences < 0:
            raise ValueError(f"error row occurrences must be a non-negative int, got {occurrences!r}")
        first_seen = _optional_time(data.get("first_seen"))
        last_seen = _optional_time(data.get("last_seen"))
        return cls(method, name, error, occurrences, first_seen, last_seen)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatsError):
            return NotImplemented
        return self.serialize() == other.serialize()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"StatsError({self.method!r}, {self.name!r}, {self.error!r}, occurrences={self.occurrences})"


def _optional_time(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"timestamp must be a number, got {value!r}")
    return float(value)

"""LoadTestShape: a class whose ``tick()`` decides the user count and spawn rate second by second."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from horde.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from horde.runners.base import Runner


class LoadTestShape:
    """Subclass and implement ``tick``; return ``None`` to end the test.

    ``tick`` is called once per second of the runner's clock and returns ``(user_count, spawn_rate)`` or
    ``(user_count, spawn_rate, user_classes)`` (new users then come from those classes only); a result
    equal to the previous one changes nothing. The runner runs it as a :class:`horde.load.ShapeModel`.

    >>> class Steps(LoadTestShape):
    ...     def tick(self):
    ...         t = self.get_run_time()
    ...         return None if t > 60 else (10 * (1 + int(t // 20)), 10)

    ``clock`` only matters for a shape used on its own: when a test starts, the shape is bound to the
    environment's clock and its run time restarts from zero.
    """

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SYSTEM_CLOCK
        self.runner: Runner | None = None
        self._started = self.clock.monotonic()

    def reset_time(self) -> None:
        """Restart :meth:`get_run_time` from zero (done at the start of each shape test)."""
        self._started = self.clock.monotonic()

    def get_run_time(self) -> float:
        """Seconds since the shape started."""
        return self.clock.monotonic() - self._started

    def get_current_user_count(self) -> int:
        return self.runner.user_count if self.runner is not None else 0

    def tick(self) -> tuple[int, float] | tuple[int, float, list[Any] | None] | None:
        raise NotImplementedError("a LoadTestShape must implement tick()")

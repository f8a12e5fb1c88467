"""Finds the line of user code that blocks the event loop (``time.sleep``, a synchronous client, CPU work).

One blocked loop stalls every simulated user of the process, so response times and rates become wrong
without any error. A watchdog thread notices when the loop has not turned for ``threshold`` seconds
(100 ms by default), samples the loop thread's stack right then, and walks it outward to the innermost
frame that is user code (not the standard library, not an installed package, not horde). Each location
is reported once as a warning with the fix, and counted; :meth:`BlockingDetector.summary` repeats them at
the end.

    detector = BlockingDetector(asyncio.get_running_loop())
    detector.start()
    ...
    detector.stop()
    print(detector.summary())
"""

from __future__ import annotations

import asyncio
import linecache
import logging
import os
import site
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)

#: A loop that has not turned for this long is blocked (the usage monitor warns from the same figure).
BLOCKING_THRESHOLD = 0.1

_HORDE_DIR = str(Path(__file__).resolve().parent)


def _library_dirs() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    paths.add(_HORDE_DIR)
    return tuple(sorted(str(Path(p).resolve()) for p in paths if p))


@dataclass
class BlockingSite:
    """One place in user code that blocked the loop."""

    filename: str
    lineno: int
    function: str
    code: str
    count: int = 0
    worst: float = 0.0  # seconds

    @property
    def fix(self) -> str:
        if "sleep(" in self.code:
            return "use `await asyncio.sleep(...)`"
        return "make the call async, or run it in a thread with `await asyncio.to_thread(...)`"

    def describe(self) -> str:
        where = f"{Path(self.filename).name}:{self.lineno} ({self.function})"
        code = f" `{self.code}`" if self.code else ""
        return f"{where}:{code} blocked the event loop; {self.fix}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.filename,
            "line": self.lineno,
            "function": self.function,
            "code": self.code,
            "count": self.count,
            "worst_ms": round(self.worst * 1000, 1),
        }


class BlockingDetector:
    """A watchdog thread over one event loop; ``sites`` holds what it found."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold: float = BLOCKING_THRESHOLD,
        beat: float = 0.02,
        library_dirs: tuple[str, ...] | None = None,
    ) -> None:
        self.loop = loop
        self.threshold = threshold
        self.beat = beat
        self.sites: dict[tuple[str, int], BlockingSite] = {}
        self.stalls = 0
        self._library = library_dirs if library_dirs is not None else _library_dirs()
        # file name -> whether it is the user's code: resolving symlinks is several syscalls per frame, and
        # a busy master's loop is sampled often (uncached, 8 % of a 5,000-worker master's samples)
        self._user_file: dict[str, bool] = {}
        self._last_turn = time.perf_counter()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: asyncio.TimerHandle | None = None

    # ---- the loop side: prove the loop turns --------------------------------------------------------
    def _turn(self) -> None:
        self._last_turn = time.perf_counter()
        self._handle = self.loop.call_later(self.beat, self._turn)

    def start(self) -> None:
        """Call from the loop's own thread (the thread it samples)."""
        if self._thread is not None:
            return
        self._loop_thread = threading.get_ident()
        self._turn()
        self._thread = threading.Thread(target=self._watch, name="horde-blocking-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    # ---- the watchdog side --------------------------------------------------------------------------
    def _watch(self) -> None:
        sampled_stall: float | None = None  # the _last_turn of the stall already sampled
        current: BlockingSite | None = None
        while not self._stop.wait(self.beat):
            last = self._last_turn
            stalled = time.perf_counter() - last
            if stalled < self.threshold:
                sampled_stall, current = None, None
                continue
            if sampled_stall != last:
                sampled_stall = last
                current = self._sample()
                self.stalls += 1
                if current is not None:
                    current.count += 1
                    if current.count == 1:
                        logger.warning("%s", current.describe())
            if current is not None:
                current.worst = max(current.worst, stalled)

    def _sample(self) -> BlockingSite | None:
        frame = sys._current_frames().get(self._loop_thread)
        while frame is not None and not self._is_user_code(frame):
            frame = frame.f_back
        if frame is None:
            return None
        return self._site(frame)

    def _is_user_code(self, frame: FrameType) -> bool:
        filename = frame.f_code.co_filename
        # module-level code is the program's entry point (the console script), never a running task
        if filename.startswith("<") or frame.f_code.co_name == "<module>":
            return False
        known = self._user_file.get(filename)
        if known is None:
            known = self._user_file[filename] = not os.path.realpath(filename).startswith(self._library)
        return known

    def _site(self, frame: FrameType) -> BlockingSite:
        filename, lineno = frame.f_code.co_filename, frame.f_lineno
        key = (filename, lineno)
        site = self.sites.get(key)
        if site is None:
            code = linecache.getline(filename, lineno).strip()
            site = self.sites[key] = BlockingSite(filename, lineno, frame.f_code.co_qualname, code)
        return site

    # ---- reporting ----------------------------------------------------------------------------------
    def summary(self) -> list[str]:
        """One line per blocking location, most frequent first (empty when the loop never blocked)."""
        rows = sorted(self.sites.values(), key=lambda s: (-s.count, s.filename, s.lineno))
        return [f"{s.describe()} ({s.count}x, worst {s.worst * 1000:.0f} ms)" for s in rows]

"""The demo shop in its own process, for the tests that run horde itself as real processes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from horde.demo.target import start_target


@contextmanager
def running_target() -> Iterator[str]:
    """Start the demo shop (``horde.demo.target``) on a free loopback port; its base URL until the end."""
    proc, url = start_target()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def served(url: str) -> int:
    """How many requests the shop has answered (its own count, to check horde's against)."""
    with urllib.request.urlopen(url + "/stats", timeout=5) as resp:
        return int(json.load(resp)["served"])

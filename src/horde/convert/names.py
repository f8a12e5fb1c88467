"""Where each Locust module and name lives in horde.

The answer is read from the installed horde (importing its modules and looking the name up), so a name
that a later horde adds at Locust's path is found without editing a table here. The tables only say, for
each Locust module, which horde modules to look in, in order of preference.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache

# For ``from locust.X import name``: the horde modules to look ``name`` up in, best first. A Locust module
# not listed here maps to the horde module of the same path.
NAME_TARGETS: dict[str, tuple[str, ...]] = {
    "locust": ("horde",),
    "locust.contrib.fasthttp": ("horde", "horde.contrib.fasthttp", "horde.clients.fast"),
    "locust.exception": ("horde.exceptions", "horde.exception", "horde"),
    "locust.env": ("horde.env", "horde"),
    "locust.runners": ("horde.runners", "horde"),
    "locust.event": ("horde.event", "horde"),
    "locust.shape": ("horde.shape", "horde"),
    "locust.user": ("horde.user", "horde"),
    "locust.user.users": ("horde.user.users", "horde.user", "horde"),
    "locust.user.task": ("horde.user.task", "horde.user", "horde"),
    "locust.user.wait_time": ("horde.user.wait_time", "horde.user", "horde"),
    "locust.user.sequential_taskset": ("horde.user", "horde"),
    "locust.user.markov_taskset": ("horde.user", "horde"),
    "locust.clients": ("horde.clients", "horde.clients.http"),
    "locust.stats": ("horde.stats",),
    "locust.log": ("horde.log",),
}

# For ``import locust.X`` and ``locust.X.name`` in code: the horde module that stands for ``locust.X``.
MODULE_TARGETS: dict[str, tuple[str, ...]] = {
    "locust": ("horde",),
    "locust.contrib.fasthttp": ("horde.contrib.fasthttp", "horde.clients.fast"),
    "locust.exception": ("horde.exceptions", "horde.exception"),
    "locust.clients": ("horde.clients", "horde.clients.http"),
}

# Locust names horde spells differently: imported under the horde name, bound to the Locust one.
RENAMES: dict[str, str] = {"LocustError": "HordeError"}


@dataclass(frozen=True)
class NameTarget:
    module: str  # the horde module to import from
    name: str  # the name to import from it (differs from the Locust name for RENAMES)
    found: bool  # False: horde has no such name; ``module`` is the best guess, kept and flagged


def is_locust_module(dotted: str) -> bool:
    return dotted == "locust" or dotted.startswith("locust.")


@cache
def module_exists(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


@cache
def has_name(module: str, name: str) -> bool:
    if not module_exists(module):
        return False
    try:
        mod = importlib.import_module(module)
    except Exception:  # a module that cannot load here has nothing to offer
        return False
    return hasattr(mod, name) or module_exists(f"{module}.{name}")


def _same_path(locust_module: str) -> str:
    return "horde" + locust_module[len("locust") :]


def horde_module(locust_module: str) -> str | None:
    """The horde module that replaces ``locust_module`` in ``import ...``, or None when there is none."""
    candidates = (*MODULE_TARGETS.get(locust_module, ()), _same_path(locust_module))
    for candidate in candidates:
        if module_exists(candidate):
            return candidate
    return None


def horde_name(locust_module: str, name: str) -> NameTarget:
    """Where ``from locust_module import name`` finds ``name`` in horde."""
    candidates = NAME_TARGETS.get(locust_module) or (_same_path(locust_module),)
    # the preferred module wins, under the Locust name or horde's spelling of it
    for module in candidates:
        for wanted in (name, RENAMES.get(name)):
            if wanted is not None and has_name(module, wanted):
                return NameTarget(module, wanted, True)
    fallback = horde_module(locust_module) or candidates[0]
    return NameTarget(fallback, name, False)

"""Finding and importing locustfiles, and picking the User and LoadTestShape classes out of them."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from horde.exceptions import HordeError, LocustfileError
from horde.load import ConstantArrivalRate, RampingArrivalRate
from horde.shape import LoadTestShape
from horde.user.users import User


@dataclass
class Locustfiles:
    paths: list[Path]
    user_classes: dict[str, type[User]] = field(default_factory=dict)
    shape_classes: list[type[LoadTestShape]] = field(default_factory=list)
    #: module-level arrival-rate models (``load = ConstantArrivalRate(200, ...)``): the open model to run
    models: list[Any] = field(default_factory=list)


def expand_paths(spec: str) -> list[Path]:
    """``-f`` accepts a file, a directory (its ``*.py`` files, not starting with ``_``) or a comma list."""
    paths: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        path = Path(part)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
            if not found:
                raise LocustfileError(f"directory {part} holds no .py locustfiles")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        elif not part.endswith(".py") and Path(part + ".py").is_file():
            paths.append(Path(part + ".py"))
        else:
            raise LocustfileError(f"locustfile {part} does not exist (pass one with -f FILE)")
    if not paths:
        raise LocustfileError("no locustfile given (pass one with -f FILE)")
    return paths


def import_file(path: Path) -> ModuleType:
    """Import a locustfile as a module, with its folder on sys.path so its own imports work."""
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = path.stem if path.stem not in sys.modules else f"horde_locustfile_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LocustfileError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        last = (
            str(e) if isinstance(e, HordeError) else traceback.format_exception_only(type(e), e)[-1].strip()
        )
        frames = [
            f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve() == path.resolve()
        ]
        lineno = e.lineno if isinstance(e, SyntaxError) else (frames[-1].lineno if frames else None)
        where = f" (line {lineno})" if lineno else ""
        raise LocustfileError(f"failed to import {path}{where}: {last}") from e
    return module


def load_locustfiles(spec: str) -> Locustfiles:
    """Import every locustfile and collect its concrete User and LoadTestShape classes."""
    result = Locustfiles(paths=expand_paths(spec))
    for path in result.paths:
        module = import_file(path)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, User) and not obj.__dict__.get("abstract", False):
                existing = result.user_classes.get(obj.__name__)
                if existing is not None and existing is not obj:
                    raise LocustfileError(f"two user classes are named {obj.__name__}; names must be unique")
                result.user_classes[obj.__name__] = obj
            elif issubclass(obj, LoadTestShape) and not obj.__dict__.get("abstract", False):
                if obj not in result.shape_classes:
                    result.shape_classes.append(obj)
        for _, obj in inspect.getmembers(
            module, lambda o: isinstance(o, (ConstantArrivalRate, RampingArrivalRate))
        ):
            if all(obj is not m for m in result.models):
                result.models.append(obj)
    _drop_task_less_bases(result)
    return result


def _drop_task_less_bases(result: Locustfiles) -> None:
    """A user class without tasks that other loaded classes inherit from is a base, not a user to run
    (Locust treats it so): leave it out instead of failing the test."""
    classes = list(result.user_classes.values())
    for cls in classes:
        if not cls.tasks and any(other is not cls and issubclass(other, cls) for other in classes):
            del result.user_classes[cls.__name__]

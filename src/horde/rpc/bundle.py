"""Locustfiles shipped by the master: the bundle a worker without ``-f`` receives, and its checks.

The master reads its locustfile(s) **once, when it starts** (:func:`build`): the folder they live in —
every regular file below it, Python modules and data files (CSV test data) alike, skipping hidden
entries, ``__pycache__``, compiled files and virtualenvs — up to :data:`MAX_BUNDLE_BYTES` and
:data:`MAX_BUNDLE_FILES`. A folder over the limit is not shipped whole: the bundle falls back to the
locustfile(s) and the local modules they imported, and the master logs which data files were left out.
Editing the files afterwards changes nothing for the run: every worker, early or late, gets the same
bundle (restart the master to ship a new version).

A worker (:func:`unpack`) checks the bundle's shape, sizes and paths (nothing may land outside its
directory), recomputes the sha256 over every path and content, refuses anything that does not match,
and writes the files into a private temporary directory (0700).

    >>> bundle = build("locustfile.py")            # on the master
    >>> entries = unpack(bundle.to_wire(), tmpdir)  # on the worker: the paths to import
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from horde.exceptions import HordeError

MAX_BUNDLE_BYTES = 10 * 1024 * 1024  # total size of the shipped files
MAX_BUNDLE_FILES = 2000
SKIP_DIRS = {"__pycache__", "node_modules", ".git", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")


class BundleError(HordeError):
    """A bundle that cannot be built (master) or cannot be trusted (worker)."""


@dataclass(frozen=True)
class Bundle:
    files: dict[str, bytes]  # POSIX relative path -> content
    entries: tuple[str, ...]  # the locustfiles to import, relative paths
    sha256: str
    left_out: tuple[str, ...] = field(default=())  # files of the folder not shipped (over the limit)

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())

    def to_wire(self) -> dict[str, Any]:
        return {"entries": list(self.entries), "files": dict(self.files), "sha256": self.sha256}


def digest(files: dict[str, bytes]) -> str:
    """sha256 over every (path, content), in path order, each length-prefixed (no ambiguity)."""
    h = hashlib.sha256()
    for path in sorted(files):
        name = path.encode()
        h.update(len(name).to_bytes(8, "big") + name)
        h.update(len(files[path]).to_bytes(8, "big") + files[path])
    return h.hexdigest()


def _entries(spec: str) -> list[Path]:
    paths: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        path = Path(part)
        if path.is_dir():
            paths.extend(sorted(p for p in path.glob("*.py") if not p.name.startswith("_")))
        elif path.is_file():
            paths.append(path)
        elif Path(part + ".py").is_file():
            paths.append(Path(part + ".py"))
        else:
            raise BundleError(f"locustfile {part} does not exist")
    if not paths:
        raise BundleError(f"no locustfile in {spec!r}")
    # absolute, not resolved: a ConfigMap mounts each file as a symlink into a hidden ..data folder
    return [p.absolute() for p in paths]


def _root(spec: str, entries: list[Path]) -> Path:
    dirs = [Path(p.strip()).absolute() for p in spec.split(",") if p.strip() and Path(p.strip()).is_dir()]
    return Path(os.path.commonpath([*dirs, *(e.parent for e in entries)]))


def _walk(root: Path) -> tuple[list[Path], bool]:
    """Files under ``root`` to ship; True as second item when the folder is over the limits."""
    found: list[Path] = []
    total = 0
    real_root = root.resolve()
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIP_DIRS and not (here / d / "pyvenv.cfg").exists()
        )
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or name.endswith(SKIP_SUFFIXES) or not path.is_file():
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                continue  # a link out of the folder (to /etc/passwd, say) is never shipped
            total += path.stat().st_size
            found.append(path)
            if total > MAX_BUNDLE_BYTES or len(found) > MAX_BUNDLE_FILES:
                return found, True
    return found, False


def _imported_below(root: Path) -> list[Path]:
    """Local modules the master imported from ``root`` (the locustfile's own imports)."""
    out = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        path = Path(file).absolute()
        if path.suffix == ".py" and path.is_relative_to(root) and path.is_file():
            out.append(path)
    return sorted(set(out))


def build(spec: str) -> Bundle:
    """The bundle for the master's ``-f`` value (a file, a directory or a comma list)."""
    entries = _entries(spec)
    root = _root(spec, entries)
    files, over = _walk(root)
    left_out: list[str] = []
    if over:
        keep = sorted({*entries, *_imported_below(root)})
        left_out = ["(the rest of the folder)"]
        files = keep
    content: dict[str, bytes] = {}
    for path in files:
        try:
            content[path.relative_to(root).as_posix()] = path.read_bytes()
        except OSError as e:
            raise BundleError(f"cannot read {path} to ship it: {e.strerror}") from e
    size = sum(len(b) for b in content.values())
    if size > MAX_BUNDLE_BYTES:
        raise BundleError(
            f"the locustfile and its modules are {size / 1e6:.1f} MB, over the {MAX_BUNDLE_BYTES // 2**20} MiB "
            "that can be shipped: give the workers their own copy (-f)"
        )
    rel_entries = tuple(e.relative_to(root).as_posix() for e in entries)
    return Bundle(content, rel_entries, digest(content), tuple(left_out))


def _safe_relpath(name: Any) -> PurePosixPath:
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise BundleError(f"bundle holds an invalid path {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts):
        raise BundleError(f"bundle path {name!r} would land outside the bundle directory")
    return path


def unpack(data: Any, into: Path) -> list[Path]:
    """Check a received bundle and write it below ``into``; the locustfile paths to import.

    Raises :class:`BundleError` for anything malformed, over the limits, escaping ``into``, or whose
    sha256 does not match its content (nothing is written then).
    """
    if not isinstance(data, dict):
        raise BundleError("the locustfile bundle is not a map")
    files, entries, expected = data.get("files"), data.get("entries"), data.get("sha256")
    if not isinstance(files, dict) or not isinstance(entries, list) or not isinstance(expected, str):
        raise BundleError("the locustfile bundle lacks files, entries or sha256")
    if len(files) > MAX_BUNDLE_FILES:
        raise BundleError(
            f"the locustfile bundle holds {len(files)} files, over the {MAX_BUNDLE_FILES} allowed"
        )
    checked: dict[str, bytes] = {}
    for name, content in files.items():
        _safe_relpath(name)
        if not isinstance(content, bytes):
            raise BundleError(f"bundle file {name!r} is not binary content")
        checked[name] = content
    if sum(len(b) for b in checked.values()) > MAX_BUNDLE_BYTES:
        raise BundleError("the locustfile bundle is over the size limit")
    actual = digest(checked)
    if actual != expected:
        raise BundleError(
            f"the locustfile bundle is corrupt or tampered with (sha256 {actual[:12]}… != {expected[:12]}…)"
        )
    if not entries or not all(isinstance(e, str) and e in checked for e in entries):
        raise BundleError("the locustfile bundle names a locustfile it does not hold")
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, content in checked.items():
        target = into.joinpath(*_safe_relpath(name).parts)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.write_bytes(content)
    return [into.joinpath(*PurePosixPath(e).parts) for e in entries]

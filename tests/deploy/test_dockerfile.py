"""The Dockerfile and .dockerignore, checked statically: there is no Docker engine on the machines that run
these tests, so the image is never built here. What is checked is what the image is built from: a slim
Python base, horde installed with pip from the build context, a non-root numeric USER, ``horde`` as the
entrypoint, the web UI on 0.0.0.0, both ports exposed, no secret baked in, and a build context that holds
exactly what ``pip install .`` needs."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from horde.cli.main import run_cli
from tests.deploy.kustomize import build, pod_spec

ROOT = Path(__file__).resolve().parents[2]
SECRETISH = re.compile(r"(?i)(secret|password|passwd|token|api_?key|private|credential|\.key\b|key_secret)")


@dataclass
class Instruction:
    keyword: str
    value: str
    line: int

    @property
    def json_args(self) -> list[str] | None:
        try:
            parsed = json.loads(self.value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Docker's syntax as far as this Dockerfile needs: comments, ``\\`` continuations, one stage per FROM."""
    stages: list[Stage] = []
    logical, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped, as Docker does
        if not logical:
            start = number
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, value = logical.partition(" ")
        instruction = Instruction(keyword.upper(), value.strip(), start)
        logical = ""
        if instruction.keyword == "FROM":
            parts = instruction.value.split()
            assert len(parts) in (1, 3), f"line {start}: FROM image [AS name]"
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 else None))
        else:
            assert stages, f"line {start}: {instruction.keyword} before FROM"
            stages[-1].instructions.append(instruction)
    assert not logical, "the Dockerfile ends inside a continued line"
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for pair in shlex.split(instruction.value):
            key, sep, value = pair.partition("=")
            assert sep, f"line {instruction.line}: use ENV KEY=VALUE"
            env[key] = value
    return env


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_every_stage_is_a_slim_python(stages: list[Stage]) -> None:
    for stage in stages:
        assert re.fullmatch(r"python:3\.1[12]-slim", stage.base), stage.base
    assert len({s.base for s in stages}) == 1  # the venv is copied between stages: same Python


def test_horde_is_pip_installed_from_the_build_context(stages: list[Stage], final: Stage) -> None:
    build_stage = stages[0]
    runs = " && ".join(i.value for i in build_stage.all("RUN"))
    assert re.search(r"(^|\s)(\S*/)?pip install \.(\s|$)", runs), runs
    copied = [i.value.split() for i in build_stage.all("COPY")]
    assert ["pyproject.toml", "README.md", "./"] in copied and ["src", "./src"] in copied
    # the final stage takes the virtualenv, never the sources
    assert [i.value for i in final.all("COPY")] == [f"--from={build_stage.name} /opt/horde /opt/horde"]
    assert env_of(final)["PATH"].startswith("/opt/horde/bin:")


def test_runs_as_a_numeric_non_root_user_that_exists(final: Stage) -> None:
    users = final.all("USER")
    assert len(users) == 1
    uid, _, gid = users[0].value.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0  # runAsNonRoot can verify it
    runs = " ".join(i.value for i in final.all("RUN"))
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs
    assert all(final.instructions.index(r) < final.instructions.index(users[0]) for r in final.all("RUN"))
    # the pods run as the same user the image declares
    for name in ("base", "overlays/demo"):
        for resource in build(ROOT / "deploy" / "kubernetes" / name):
            spec = pod_spec(resource)
            if spec is not None:
                assert spec["securityContext"]["runAsUser"] == int(uid)
                assert spec["securityContext"]["runAsGroup"] == int(gid)


def test_horde_is_the_entrypoint_and_the_web_ui_listens_everywhere(final: Stage) -> None:
    (entrypoint,) = final.all("ENTRYPOINT")
    assert entrypoint.json_args == ["horde"]  # exec form: signals reach horde, args append
    (cmd,) = final.all("CMD")
    assert cmd.json_args == ["--help"]
    env = env_of(final)
    assert env["HORDE_WEB_HOST"] == "0.0.0.0"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the root filesystem is read-only in the pods
    exposed = {p for i in final.all("EXPOSE") for p in i.value.split()}
    assert {"8089", "5557"} <= exposed


def test_the_default_command_and_the_build_check_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``docker run horde`` is ``horde --help``; the build stage runs ``horde --version``. Both work with no
    locustfile in the working directory, as in the image."""
    monkeypatch.chdir(tmp_path)
    for argv in (["--help"], ["--version"]):
        with pytest.raises(SystemExit) as exited:
            run_cli(argv)
        assert exited.value.code == 0


def test_no_secret_is_baked_in(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword in ("ENV", "ARG", "LABEL"):
                names = [p.partition("=")[0] for p in shlex.split(instruction.value)]
                assert not [n for n in names if SECRETISH.search(n)], instruction
            if instruction.keyword in ("COPY", "ADD"):
                assert not SECRETISH.search(instruction.value), instruction
            assert instruction.keyword != "ADD", "use COPY: ADD fetches URLs and unpacks archives"
            assert "--mount=type=secret" not in instruction.value


# -- .dockerignore ---------------------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[str, bool]]:
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        patterns.append((line.lstrip("!").strip("/"), negate))
    return patterns


def _segment(segment: str) -> str:
    out, i = "", 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[" and "]" in segment[i:]:
            close = segment.index("]", i)
            out += segment[i : close + 1]
            i = close
        else:
            out += re.escape(char)
        i += 1
    return out


def _match(pattern: str, path: str) -> bool:
    """Docker's matcher: ``*``, ``?`` and ``[...]`` within one path segment, ``**`` any number of them."""
    regex, segments = "", pattern.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:.*/)?"
        else:
            regex += _segment(segment) + ("" if last else "/")
    return re.fullmatch(regex, path) is not None


def excluded(path: str, patterns: list[tuple[str, bool]]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last pattern matching it, or one of its
    parent directories, decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern, negate in patterns:
        if any(_match(pattern, prefix) for prefix in prefixes):
            result = not negate
    return result


def test_dockerignore_matcher() -> None:
    patterns = [("*", False), ("src", True), ("**/__pycache__", False)]  # "!src" is negated "src"
    assert excluded(".venv/bin/python", patterns)
    assert not excluded("src/horde/__init__.py", patterns)
    assert excluded("src/horde/__pycache__/x.pyc", patterns)
    assert excluded("tests/x.py", patterns)
    assert _match("**/*.py[cod]", "a/b/c.pyc") and _match("**/*.py[cod]", "c.pyo")
    assert not _match("**/*.py[cod]", "c.py") and not _match("src/*", "src/a/b")


def test_the_build_context_holds_what_pip_install_needs_and_nothing_else(stages: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    sent = {p for p in tracked if not excluded(p, patterns)}
    package = {p for p in tracked if p.startswith("src/")}
    assert sent == {"pyproject.toml", "README.md", *package}
    # what the Dockerfile copies is in the context
    for instruction in stages[0].all("COPY"):
        for source in instruction.value.split()[:-1]:
            assert source in sent or any(p.startswith(source + "/") for p in sent), source
    # never sent, tracked or not
    for path in (
        ".venv/bin/python",
        ".git/config",
        "src/horde/__pycache__/env.cpython-312.pyc",
        "horde-keys/master.key_secret",
        "keys/worker.key",
        ".env",
        "results/run_stats.csv",
        "src/horde.egg-info/PKG-INFO",
    ):
        assert excluded(path, patterns), path


def test_pip_install_dot_ships_every_package_file() -> None:
    """``pip install .`` (no VCS plugin, no MANIFEST.in) installs only the .py files and the package-data
    globs: a data file outside them is missing from the image (the web UI's page, for one)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"].get("package-data", {}).get("horde", [])
    tracked = subprocess.run(
        ["git", "ls-files", "src/horde"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    data = [p.removeprefix("src/horde/") for p in tracked if not p.endswith(".py")]
    missing = [p for p in data if not any(fnmatch.fnmatch(p, g) for g in globs)]
    assert not missing, (
        f"pyproject.toml [tool.setuptools.package-data] horde = {globs} leaves out {missing}: "
        "pip install . (and so the image) would not ship them"
    )


def test_the_image_reference_in_the_manifests_is_the_one_the_docs_build() -> None:
    base = yaml.safe_load((ROOT / "deploy/kubernetes/base/kustomization.yaml").read_text(encoding="utf-8"))
    image = base["images"][0]
    tag = f"{image['newName']}:{image['newTag']}"
    docs = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    assert f"docker build -t {tag} ." in docs
    assert f"docker build -t {tag} ." in (ROOT / "Dockerfile").read_text(encoding="utf-8")

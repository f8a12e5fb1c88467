"""The horde command end to end: real processes, real servers, exit codes, output and --json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.demo_target import running_target

pytestmark = pytest.mark.slow  # every test here runs the real command in a subprocess

LOCUSTFILE = textwrap.dedent(
    """
    from horde import HttpUser, task, constant

    class Quick(HttpUser):
        wait_time = constant(0.05)

        @task(3)
        async def ok(self):
            await self.client.get("/items")

        @task(1)
        async def item(self):
            await self.client.get("/items/999", name="/items/[id]")
    """
)
GOOD_ONLY = LOCUSTFILE.replace('"/items/999"', '"/items/1"')


@pytest.fixture(scope="module")
def target() -> str:
    with running_target() as url:
        yield url


def horde(
    *args: str, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "horde", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def write(tmp_path: Path, text: str, name: str = "locustfile.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_headless_run_prints_tables_writes_json_and_exits_1_on_failures(tmp_path: Path, target: str) -> None:
    write(tmp_path, LOCUSTFILE)
    out = tmp_path / "out.json"
    r = horde(
        "--headless",
        "-H",
        target,
        "-u",
        "5",
        "-r",
        "50",
        "-t",
        "2",
        "--json",
        str(out),
        "--print-stats-interval",
        "0.5",
        cwd=tmp_path,
    )
    assert r.returncode == 1, r.stderr
    assert "Aggregated" in r.stdout and "/items/[id]" in r.stdout
    assert "99.9%" in r.stdout and "HTTPError" in r.stdout
    data = json.loads(out.read_text())
    names = [s["name"] for s in data["stats"]]
    assert "Aggregated" in names and "/items" in names
    agg = next(s for s in data["stats"] if s["name"] == "Aggregated")
    for key in (
        "method",
        "num_requests",
        "num_failures",
        "min_response_time",
        "max_response_time",
        "avg_response_time",
        "median_response_time",
        "total_rps",
        "percentiles",
    ):
        assert key in agg
    assert set(agg["percentiles"]) >= {"0.5", "0.9", "0.95", "0.99", "0.999", "1.0"}
    assert agg["percentiles"]["1.0"] == pytest.approx(agg["max_response_time"])
    assert agg["num_failures"] > 0 and data["errors"][0]["occurrences"] > 0
    assert data["user_count"] == 5 and data["end_time"] > data["start_time"]


def test_successful_run_exits_0(tmp_path: Path, target: str) -> None:
    write(tmp_path, GOOD_ONLY)
    r = horde("--headless", "-H", target, "-u", "2", "-r", "10", "-t", "1", "--only-summary", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Aggregated") == 2  # final stats and percentile tables only


def test_sigterm_stops_gracefully_and_keeps_results(tmp_path: Path, target: str) -> None:
    write(tmp_path, GOOD_ONLY)
    out = tmp_path / "out.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "horde",
            "--headless",
            "-H",
            target,
            "-u",
            "3",
            "-r",
            "30",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Aggregated" in stdout
    agg = next(s for s in json.loads(out.read_text())["stats"] if s["name"] == "Aggregated")
    assert agg["num_requests"] > 0


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["-f", "nope.py"], "locustfile nope.py does not exist"),
        (
            {"broken.py": "import no_such_module_xyz\n"},
            ["-f", "broken.py"],
            "No module named 'no_such_module_xyz'",
        ),
        ({"syntax.py": "def (:\n"}, ["-f", "syntax.py"], "failed to import syntax.py"),
        ({"empty.py": "x = 1\n"}, ["-f", "empty.py"], "no User class found"),
        ({"locustfile.py": LOCUSTFILE}, [], "Quick has no host"),
        ({"locustfile.py": LOCUSTFILE.replace("HttpUser", "FastHttpUser")}, [], "Quick has no host"),
        (
            {"locustfile.py": LOCUSTFILE},
            ["Missing", "-H", "http://127.0.0.1:9"],
            "unknown user class(es) Missing",
        ),
        ({"locustfile.py": LOCUSTFILE}, ["-H", "127.0.0.1:9"], "include the scheme"),
        (
            {"locustfile.py": LOCUSTFILE.replace("wait_time", "weight = 0\n    wait_time")},
            ["-H", "http://127.0.0.1:9"],
            "weight 0",
        ),
        (
            {"locustfile.py": LOCUSTFILE.replace("wait_time", "fixed_count = 1.5\n    wait_time")},
            ["-H", "http://127.0.0.1:9"],
            "fixed_count must be a whole number",
        ),
        (
            {"locustfile.py": LOCUSTFILE, "pyproject.toml": "[tool.horde]\nhost = 5\n"},
            [],
            "invalid --host '5'",
        ),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_1(
    tmp_path: Path, files: dict[str, str], args: list[str], message: str
) -> None:
    for name, text in files.items():
        write(tmp_path, text, name)
    r = horde("--headless", *args, cwd=tmp_path, timeout=30)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_flag_exits_2(tmp_path: Path) -> None:
    r = horde("--bogus", cwd=tmp_path, timeout=30)
    assert r.returncode == 2 and "unrecognized arguments: --bogus" in r.stderr


def test_list_and_version(tmp_path: Path) -> None:
    write(tmp_path, LOCUSTFILE)
    r = horde("--list", cwd=tmp_path, timeout=30)
    assert r.returncode == 0 and r.stdout.splitlines() == ["Available Users:", "    Quick"]
    r = horde("-V", cwd=tmp_path, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("horde ")


def test_refused_connections_are_failures_and_the_run_ends_normally(
    tmp_path: Path, free_port_url: str
) -> None:
    write(tmp_path, GOOD_ONLY)
    out = tmp_path / "out.json"
    r = horde(
        "--headless", "-H", free_port_url, "-u", "2", "-r", "10", "-t", "1", "--json", str(out), cwd=tmp_path
    )
    assert r.returncode == 1
    data = json.loads(out.read_text())
    assert data["errors"] and "Connect" in data["errors"][0]["error"]


def test_exit_code_on_error_and_directory_locustfile(tmp_path: Path, target: str) -> None:
    folder = tmp_path / "lf"
    folder.mkdir()
    write(folder, LOCUSTFILE, "a.py")
    write(folder, "from horde import User\n", "_helpers.py")
    r = horde(
        "-f",
        str(folder),
        "--headless",
        "-H",
        target,
        "-u",
        "1",
        "-r",
        "10",
        "-t",
        "1",
        "--exit-code-on-error",
        "7",
        "--only-summary",
        cwd=tmp_path,
    )
    assert r.returncode == 7


def test_config_file_drives_a_run(tmp_path: Path, target: str) -> None:
    write(tmp_path, GOOD_ONLY)
    (tmp_path / "horde.conf").write_text(
        f"host = {target}\nusers = 2\nspawn-rate = 10\nrun-time = 1\nheadless = true\nonly-summary = true\n"
    )
    r = horde(cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Aggregated" in r.stdout


def test_failing_listener_makes_exit_code_2(tmp_path: Path, target: str) -> None:
    write(
        tmp_path,
        GOOD_ONLY
        + textwrap.dedent(
            """
            from horde import events

            @events.test_stop.add_listener
            def broken(environment, **kwargs):
                raise RuntimeError("listener bug")
            """
        ),
    )
    r = horde("--headless", "-H", target, "-u", "1", "-r", "10", "-t", "1", "--only-summary", cwd=tmp_path)
    assert r.returncode == 2
    assert "listener bug" in r.stderr and "Aggregated" in r.stdout


def test_user_exceptions_are_shown_and_exit_1(tmp_path: Path, target: str) -> None:
    write(
        tmp_path,
        textwrap.dedent(
            """
            from horde import HttpUser, task, constant

            class Crashy(HttpUser):
                wait_time = constant(0.1)

                @task
                async def boom(self):
                    await self.client.get("/items")
                    raise ValueError("unexpected payload")
            """
        ),
    )
    r = horde("--headless", "-H", target, "-u", "1", "-r", "10", "-t", "1", "--only-summary", cwd=tmp_path)
    assert r.returncode == 1
    assert "User exceptions" in r.stdout and "unexpected payload" in r.stdout

"""Locust's flags and config files work in horde as they do in Locust (issue: switch in five minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from horde.cli.options import parse_options
from tests.demo_target import running_target

LOCUSTFILE = textwrap.dedent(
    """
    from horde import HttpUser, TaskSet, task

    class Browse(TaskSet):
        @task(3)
        async def look(self):
            await self.client.get("/items")

        @task
        async def leave(self):
            self.interrupt()

    class Shopper(HttpUser):
        weight = 3
        tasks = {Browse: 1}

        @task
        async def cart(self):
            await self.client.get("/items/1")

    class Admin(HttpUser):
        @task
        async def report(self):
            await self.client.get("/items")
    """
)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def horde(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "horde", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_stop_timeout_takes_a_time_span_and_json_without_a_file_means_stdout() -> None:
    assert parse_options(["-s", "5s"], environ={}).stop_timeout == 5.0
    assert parse_options(["-s", "2.5"], environ={}).stop_timeout == 2.5
    assert parse_options(["--json"], environ={}).json_file == "-"
    assert parse_options(["--json-file", "out.json"], environ={}).json_file == "out.json"
    assert parse_options(["-i", "10"], environ={}).iterations == 10


def test_locust_conf_and_locust_variables_are_fallbacks_with_a_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "locust.conf").write_text("users = 7\nspawn-rate = 3\nweb-auth = a:b\n")
    (tmp_path / "horde.conf").write_text("spawn-rate = 4\n")
    options = parse_options(
        [],
        environ={"LOCUST_RUN_TIME": "30s", "HORDE_RUN_TIME": "20s", "LOCUST_HOST": "http://x"},
        cwd=tmp_path,
    )
    assert options.users == 7  # only in locust.conf
    assert options.spawn_rate == 4  # horde.conf wins
    assert options.run_time == 20  # HORDE_ wins over LOCUST_
    assert options.host == "http://x"
    err = capsys.readouterr().err
    assert "read Locust settings as fallbacks" in err and "locust.conf: users" in err and "LOCUST_HOST" in err


@pytest.mark.slow
def test_show_task_ratio_text_and_json(tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    text = horde("--show-task-ratio", cwd=tmp_path)
    assert text.returncode == 0
    assert "Task ratio per User class" in text.stdout and "Total task ratio" in text.stdout
    data = json.loads(horde("--show-task-ratio-json", cwd=tmp_path).stdout)
    shopper = data["total"]["Shopper"]
    assert shopper["ratio"] == pytest.approx(0.75)
    assert shopper["tasks"]["Browse"]["tasks"]["look"]["ratio"] == pytest.approx(0.75 * 0.5 * 0.75)
    assert data["per_class"]["Admin"]["tasks"]["report"]["ratio"] == 1.0


@pytest.mark.slow
def test_iterations_end_the_test_as_planned_and_json_goes_to_stdout(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    r = horde("Admin", "--headless", "-H", target, "-u", "3", "-r", "10", "-i", "20", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # nothing else on stdout: the tables went to stderr
    total = data["stats"][-1]
    assert total["name"] == "Aggregated" and total["num_requests"] == 20
    assert "Request statistics" in r.stderr
    assert "Starting horde" in r.stderr and "Shutting down (exit code 0)" in r.stderr
    assert "the iteration limit was reached" in r.stderr


CUSTOM_ARGS = textwrap.dedent(
    """
    from horde import HttpUser, events, task

    @events.init_command_line_parser.add_listener
    def _(parser, **kwargs):
        parser.add_argument("--my-greeting", default="hi", include_in_web_ui=True, help="what to say")
        parser.add_argument("--my-token", default="", is_secret=True, help="a secret")

    @events.test_start.add_listener
    def _(environment, **kwargs):
        print("GREETING=" + environment.parsed_options.my_greeting, flush=True)

    class Greeter(HttpUser):
        @task
        async def go(self):
            await self.client.get("/items")
    """
)


@pytest.mark.slow
def test_a_locustfile_adds_its_own_flags_seen_in_help_and_parsed_options(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(CUSTOM_ARGS)
    helped = horde("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "--my-greeting" in helped.stdout and "what to say" in helped.stdout
    r = horde("--headless", "-H", target, "-u", "1", "-t", "1s", "--my-greeting", "hello", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "GREETING=hello" in r.stdout
    env_set = horde(
        "--headless", "-H", target, "-u", "1", "-t", "1s", cwd=tmp_path, env={"HORDE_MY_GREETING": "hey"}
    )
    assert "GREETING=hey" in env_set.stdout

"""The open model through the real ``horde`` command: a rate, its figures in the summary and --json,
thresholds on dropped iterations, and bad stages refused before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demo_target import running_target

pytestmark = pytest.mark.slow

LOCUSTFILE = textwrap.dedent(
    """
    from horde import HttpUser, task

    class Reader(HttpUser):
        @task
        async def items(self):
            await self.client.get("/items")
    """
)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def horde(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "locustfile.py").write_text(LOCUSTFILE)
    return subprocess.run(
        [sys.executable, "-m", "horde", "--headless", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ},
    )


def test_a_constant_rate_runs_for_its_time_and_reports_both_latencies(tmp_path: Path, target: str) -> None:
    r = horde(
        "-H", target, "--arrival-rate", "20/s", "--pre-allocated", "2", "--max-users", "10", "-t", "3s",
        "--json-file", "out.json", "--threshold", "dropped_iterations==0",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    data = json.loads((tmp_path / "out.json").read_text())
    by_name = {(e["method"], e["name"]): e for e in data["stats"]}
    served = by_name[("GET", "/items")]["num_requests"]
    assert 55 <= served <= 61  # 20/s for 3 s (the first arrival at t=0)
    assert by_name[("GET", "/items (from intended start)")]["num_requests"] == served
    assert data["stats"][-1]["num_requests"] == served  # Aggregated counts each request once
    assert data["arrival"]["dropped_iterations"] == 0
    assert data["thresholds"][0]["ok"] is True
    assert "iterations/s" in r.stderr  # the model's one-sentence description at start


def test_bad_stages_are_all_reported_before_anything_starts(tmp_path: Path, target: str) -> None:
    r = horde("-H", target, "--stages", "30x:50/s,2m:fast,10s:5/s", cwd=tmp_path)
    assert r.returncode != 0
    assert "30x:50/s" in r.stderr and "2m:fast" in r.stderr
    assert "Request statistics" not in r.stdout


def test_an_arrival_rate_declared_in_the_locustfile_is_the_test(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(
        LOCUSTFILE
        + "\nfrom horde.load import ConstantArrivalRate\n\nload = ConstantArrivalRate(10, duration=2, max_users=5)\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "horde", "--headless", "-H", target, "--json-file", "out.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=90, env={**os.environ},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads((tmp_path / "out.json").read_text())
    assert 18 <= data["stats"][-1]["num_requests"] <= 21  # 10/s for the model's own 2 s
    assert data["stop_reason"] in (None, "the run time limit was reached", "the arrival schedule ended")

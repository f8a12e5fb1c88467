"""Thresholds through the real ``horde`` command: exit 3 on a breach, the gate over request failures,
every bad expression at once, JUnit, an abort, and a cluster where only the merged stats breach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demo_target import running_target

pytestmark = pytest.mark.slow

LOCUSTFILE = textwrap.dedent(
    """
    from horde import HttpUser, task, constant

    class Shopper(HttpUser):
        wait_time = constant(0.05)

        @task(9)
        async def items(self):
            await self.client.get("/items")

        @task(1)
        async def missing(self):
            await self.client.get("/items/999", name="/items/[id]")  # a 404: a failed request
    """
)

ONE_FAILURE_PER_USER = textwrap.dedent(
    """
    from horde import HttpUser, task, constant

    class Once(HttpUser):
        wait_time = constant(30)

        @task
        async def missing(self):
            await self.client.get("/items/999", name="/items/[id]")
    """
)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def horde(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "horde", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )


def run(tmp_path: Path, target: str, *extra: str, text: str = LOCUSTFILE) -> subprocess.CompletedProcess[str]:
    (tmp_path / "locustfile.py").write_text(text)
    return horde("--headless", "-H", target, "-u", "4", "-r", "20", "-t", "3s", *extra, cwd=tmp_path)


def test_a_breach_exits_3_and_is_reported_in_the_summary_json_and_junit(tmp_path: Path, target: str) -> None:
    r = run(
        tmp_path,
        target,
        "--threshold",
        "p95<0.001ms",
        "--threshold",
        "requests>0",
        "--json-file",
        "out.json",
        "--junit",
        "junit.xml",
    )
    assert r.returncode == 3, r.stderr
    assert "Thresholds: 1 of 2 breached" in r.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    assert [t["ok"] for t in data["thresholds"]] == [False, True]
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"


def test_passing_thresholds_are_the_gate_request_failures_count_only_through_them(
    tmp_path: Path, target: str
) -> None:
    lenient = run(tmp_path, target, "--threshold", "fail_ratio<50%")
    assert lenient.returncode == 0, lenient.stdout[-2000:]
    strict = run(tmp_path, target)  # no thresholds: a failed request fails the run, as in Locust
    assert strict.returncode == 1


def test_every_bad_expression_is_reported_at_once_before_anything_starts(tmp_path: Path, target: str) -> None:
    r = run(tmp_path, target, "--threshold", "p95<300kb", "--threshold", "p0<1", "--threshold", "bogus>1")
    assert r.returncode == 2
    assert "p95<300kb" in r.stderr and "p0<1" in r.stderr and "bogus>1" in r.stderr
    assert "Request statistics" not in r.stdout  # nothing ran


def test_abort_stops_the_test_at_the_first_breach_after_the_grace_period(tmp_path: Path, target: str) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    r = horde(
        "--headless", "-H", target, "-u", "2", "-r", "20", "-t", "60s",
        "--threshold", "p95<0.001ms", "--threshold-abort", "--threshold-abort-after", "1s",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 3
    assert "threshold p95<0.001ms breached" in r.stderr + r.stdout


def test_a_cluster_where_only_the_merged_stats_breach(tmp_path: Path, target: str) -> None:
    # each of the two workers runs one user that fails once: either worker alone has 1 failure, the
    # cluster has 2, and only the master's merged figure breaches failures<2
    r = run(
        tmp_path,
        target,
        "--processes",
        "2",
        "-u",
        "2",
        "--threshold",
        "failures<2",
        text=ONE_FAILURE_PER_USER,
    )
    assert r.returncode == 3, r.stdout[-3000:] + r.stderr[-3000:]
    assert "FAIL     failures<2" in r.stdout

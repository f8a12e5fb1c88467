"""After a SIGTERM mid-run, the final CSV totals, the JSON totals and what the target served are one number."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from horde.demo.target import start_target

pytestmark = pytest.mark.slow


def test_sigterm_mid_run_writes_csv_and_json_whose_totals_equal_the_targets(tmp_path: Path) -> None:
    target, url = start_target()
    try:
        (tmp_path / "locustfile.py").write_text(
            textwrap.dedent(
                """
                from horde import HttpUser, task, constant

                class Reader(HttpUser):
                    wait_time = constant(0.05)

                    @task
                    async def items(self):
                        await self.client.get("/items")
                """
            )
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "horde", "--headless", "-H", url, "-u", "5", "-r", "50", "-t", "60s", "-s", "5",
             "--csv", "out/run", "--json-file", "out/run.json"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ},
        )  # fmt: skip
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        with urllib.request.urlopen(f"{url}/stats", timeout=5) as resp:
            served = json.loads(resp.read())["served"]
    finally:
        target.terminate()
        target.wait(10)
    assert proc.returncode == 0, err[-2000:]
    data = json.loads((tmp_path / "out/run.json").read_text())
    json_total = data["stats"][-1]["num_requests"]
    with (tmp_path / "out/run_stats.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    aggregated = next(r for r in rows if r["Name"] == "Aggregated")
    with (tmp_path / "out/run_stats_history.csv").open(newline="") as f:
        history = list(csv.DictReader(f))
    assert served > 20
    assert int(aggregated["Request Count"]) == json_total == served
    assert int(history[-1]["Total Request Count"]) == served  # the final history row is the final total

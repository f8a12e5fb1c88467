"""HtmlOutput and PrometheusOutput plugged into a real TestRun (LocalRunner, FakeClock): what the lead wires."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from horde import User, task
from horde.clock import FakeClock
from horde.env import Environment
from horde.event import Events
from horde.reports.html import HtmlOutput, render_html
from horde.reports.prometheus import PrometheusOutput
from horde.session import StartRequest, TestRun


class Worker(User):
    """One 5 ms request per task (manual reporting), plus a failure every tenth task."""

    @task
    async def work(self) -> None:
        self.n = getattr(self, "n", 0) + 1
        self.environment.events.request.fire(
            request_type="job",
            name="work",
            response_time=5.0 + self.n % 7,
            response_length=10,
            exception=RuntimeError("every tenth") if self.n % 10 == 0 else None,
            context={},
        )
        await asyncio.sleep(0.001)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


async def settle(clock: FakeClock, seconds: float) -> None:
    steps = max(1, int(seconds / 0.05))
    for _ in range(steps):
        clock.advance(seconds / steps)
        await asyncio.sleep(0.002)


async def test_web_started_run_writes_the_report_with_its_real_figures(tmp_path: Path) -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Worker], events=Events(), clock=clock)  # no -u/-r/-t: a web start
    env.create_local_runner()
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("# the test script\n")
    html = HtmlOutput(tmp_path / "report_{u}_{r}_{t}.html")
    prom = PrometheusOutput(0)
    run = TestRun(env, outputs=[html, prom], locustfile=str(locustfile))
    try:
        await run.open()
        run.start(StartRequest(user_count=3, spawn_rate=3, run_time=6))  # what POST /swarm does
        await settle(clock, 2.0)
        live = render_html(run.result())  # the web UI's /stats/report while the test runs
        assert 'id="chart-rps"' in live and "horde report" in live
        run.edit(5, 5)  # the edit form
        await settle(clock, 5.0)  # the run time ends the test
        await run.wait()
        result = await run.close()

        assert html.error is None
        assert html.path == tmp_path / "report_5_5_6.html"
        text = html.path.read_text(encoding="utf-8")
        total = result.snapshot.total
        assert total.num_requests > 0 and total.num_failures > 0
        body = text.split('<tr class="total">')[1].split("</tr>")[0]
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", body)
        assert cells[2:4] == [f"{total.num_requests:,}", f"{total.num_failures:,}"]  # the final totals
        assert "locustfile.py" in text and "Stopped: the run time limit was reached." in text
        assert '"kind":"edit"' in text  # the edit marker is on the charts
        assert 'id="chart-cpu"' in text  # the local row's CPU and loop lag, sampled at every tick

        # the exporter still serves after the end: the last scrape has the final totals
        host, port = prom.address
        exposition = await asyncio.to_thread(fetch, f"http://{host}:{port}/metrics")
        families = {f.name: f for f in text_string_to_metric_families(exposition)}
        entry = result.stats.get("work", "job")
        requests = [s for s in families["horde_requests"].samples if s.labels["name"] == "work"]
        assert [s.value for s in requests] == [entry.num_requests]
        counts = [
            s.value
            for s in families["horde_response_time_seconds"].samples
            if s.name.endswith("_count") and s.labels["name"] == "work"
        ]
        assert counts == [entry.num_requests - entry.num_none_requests]
        states = {s.labels["state"]: s.value for s in families["horde_state"].samples}
        assert states["stopped"] == 1
    finally:
        prom.close()


async def test_a_second_test_in_the_same_session_names_the_report_after_itself(tmp_path: Path) -> None:
    clock = FakeClock()
    env = Environment(user_classes=[Worker], events=Events(), clock=clock)
    env.create_local_runner()
    html = HtmlOutput(tmp_path / "report_{u}_{r}.html")
    run = TestRun(env, outputs=[html])
    await run.open()
    run.start(StartRequest(user_count=6, spawn_rate=6))
    await settle(clock, 2.0)
    await run.stop()
    await settle(clock, 1.0)
    run.start(StartRequest(user_count=2, spawn_rate=2))  # a new test from the web form
    await settle(clock, 2.0)
    result = await run.close()
    assert html.path == tmp_path / "report_2_2.html"
    assert max(r.user_count for r in result.history.total_rows()) == 2  # the history is the second test's

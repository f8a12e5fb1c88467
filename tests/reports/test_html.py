"""The HTML report: its content and placeholders (fast), and the file opened in headless Chromium (slow)."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from horde.clock import FakeClock
from horde.reports import html as report
from horde.reports.html import (
    MAX_CHART_POINTS,
    HtmlOutput,
    Manifest,
    chart_data,
    check_writable,
    downsample,
    fill_placeholders,
    render_html,
)
from horde.reports.output import OutputPathError
from horde.runners.status import WorkerStatus
from horde.session import RunResult
from horde.stats import PERCENTILES_TO_REPORT, RequestStats
from horde.stats.history import StatsHistory
from horde.stats.snapshot import take_snapshot

REPO = Path(__file__).resolve().parents[2]
START = 1_796_104_480.0  # 2026-12-01 05:54:40 UTC


def simulate(
    seconds: int = 120,
    names: Sequence[str] = ("/", "/api/items", "/api/cart"),
    *,
    spike_at: int | None = None,
    **kw: Any,
) -> RunResult:
    """A run on a fake clock: a ramp to 20 users, 30 req/s per entry, 5 % failures on the last entry."""
    clock = FakeClock(START)
    stats = RequestStats(clock)
    history = StatsHistory(clock)
    users = 0
    classes: dict[str, int] = {}
    for sec in range(seconds):
        users = min(20, sec // 2 + 1)
        classes = {"Shop": users - users // 4, "Browse": users // 4}
        for i in range(30):
            clock.advance(1 / 30)
            for k, name in enumerate(names):
                rt = 20 + 15 * k + (i % 10) * 3 + (400 if spike_at is not None and sec == spike_at else 0)
                error = "HTTPError('500 Server Error')" if k == len(names) - 1 and i % 20 == 0 else None
                stats.record("POST" if "cart" in name else "GET", name, rt, 512, error)
        history.append(take_snapshot(stats, user_count=users, user_classes_count=classes))
    fields: dict[str, Any] = {
        "start_time": START,
        "end_time": clock.time(),
        "user_count": users,
        "user_classes_count": classes,
        "stats": stats,
        "snapshot": take_snapshot(stats, user_count=0, user_classes_count={}),
        "history": history,
        "exceptions": (),
        "workers": (),
        "warnings": (),
        "stop_reason": "the run time limit was reached",
        "exit_code": 0,
        "host": "http://127.0.0.1:8080",
        "markers": ({"time": START, "kind": "start", "text": "20 users at 2/s"},),
    }
    fields.update(kw)
    return RunResult(**fields)


@pytest.fixture(scope="module")
def run() -> RunResult:
    return simulate()


def data_of(text: str) -> Any:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match
    return json.loads(match.group(1))


# -- content ---------------------------------------------------------------------------------------------


def test_manifest(tmp_path: Path, run: RunResult) -> None:
    locustfile = tmp_path / "shop_locustfile.py"
    locustfile.write_text("from horde import HttpUser\n")
    options = argparse.Namespace(
        users=20, spawn_rate=2.0, run_time=120, web_login_password="hunter2", tags=None
    )
    result = simulate(10, locustfile=str(locustfile), options=options)
    text = render_html(result)
    assert "shop_locustfile.py" in text
    assert hashlib.sha256(locustfile.read_bytes()).hexdigest() in text
    assert "http://127.0.0.1:8080" in text
    assert "2026-12-01 05:54:40 UTC" in text  # start, in UTC
    assert "10 s" in text  # duration
    assert "hunter2" not in text and "***" in text  # secret-looking options are masked
    manifest = text.split('<section id="manifest">')[1].split("</section>")[0]
    assert "<td>spawn_rate</td>" in manifest and "<td>tags</td>" not in manifest  # unset ones left out
    assert "5 at peak, 5 at the end" in text  # the ramp reached 5 users in 10 s
    assert "local (one process)" in text
    assert report.__version__ in text


def test_manifest_counts_workers_and_hashes_directories(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("b = 2\n")
    workers = (WorkerStatus("w1", state="running"), WorkerStatus("w2", index=1, state="running"))
    m = Manifest.from_result(simulate(3, locustfile=str(tmp_path), workers=workers))
    assert [Path(d.path).name for d in m.locustfiles] == ["a.py", "b.py"]
    assert m.locustfiles[1].sha256 == hashlib.sha256(b"b = 2\n").hexdigest()
    assert m.workers == 2
    missing = report.digest_locustfiles(str(tmp_path / "nope.py"))
    assert missing[0].sha256 is None


def test_tables_list_every_entry_then_aggregated(run: RunResult) -> None:
    text = render_html(run)
    for section in ("request-statistics", "response-time-percentiles"):
        body = text.split(f'<section id="{section}">')[1].split("</section>")[0]
        names = re.findall(r'<td class="t name">([^<]*)</td>', body)
        assert names == ["/", "/api/cart", "/api/items", "Aggregated"]
        assert body.count('<tr class="total">') == 1
    pct = text.split('<section id="response-time-percentiles">')[1].split("</section>")[0]
    for label in ("50%", "66%", "90%", "99%", "99.9%", "99.99%", "100%"):
        assert f">{label}</th>" in pct
    total = run.stats.total
    assert f">{total.num_requests:,}</td>" in text
    assert f">{total.num_failures:,}</td>" in text


def test_untimed_entry_shows_na_and_names_are_escaped() -> None:
    result = simulate(5, names=("/ok",))
    result.stats.record("GET", "/x?<script>alert(1)</script>", None, 0)
    result.stats.record("GET", "/q", 5, 0, "<b>bold</b> & more")
    text = render_html(replace(result, snapshot=take_snapshot(result.stats, user_count=0)))
    assert "<script>alert(1)</script>" not in text
    assert "/x?&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in text
    row = text.split('name">/x?&lt;script&gt;alert(1)&lt;/script&gt;</td>')[2].split("</tr>")[0]
    assert row.count("N/A") == len(PERCENTILES_TO_REPORT)


def test_verdict_levels() -> None:
    base = simulate(3)
    ok = render_html(base)
    assert 'class="verdict pass"' in ok and "Passed (exit code 0)" in ok
    assert "Stopped: the run time limit was reached." in ok

    warned = render_html(
        simulate(3, warnings=("CPU usage above 90 % on local (97 %): response times may be inflated",))
    )
    assert 'class="verdict warn"' in warned and "Generator health: CPU usage above 90 %" in warned

    failed = render_html(simulate(3, exit_code=1))
    assert 'class="verdict fail"' in failed and "exit code 1" in failed

    thresholds = (
        SimpleNamespace(expression="p95 < 500", ok=True),
        {"name": "fail_ratio < 1%", "passed": False},
    )
    breached = render_html(simulate(3, exit_code=3, thresholds=thresholds))
    assert "1 threshold(s) breached" in breached
    assert "PASS \u2014 threshold p95 &lt; 500" in breached
    assert "FAIL \u2014 threshold fail_ratio &lt; 1%" in breached


def test_verdict_shows_real_threshold_verdicts() -> None:
    from horde.thresholds.evaluate import evaluate_all
    from horde.thresholds.parse import parse_threshold

    result = simulate(20)
    expressions = ["p95 < 1000", "p99 < 10", "fail_ratio < 50%", "GET /nope: p95 < 10"]
    verdicts = evaluate_all([parse_threshold(e) for e in expressions], result.snapshot, stats=result.stats)
    text = render_html(replace(result, thresholds=tuple(verdicts), exit_code=3))
    banner = text.split('id="verdict">')[1].split("</div>")[0]
    assert "1 threshold(s) breached (exit code 3)" in banner
    assert banner.count('<li class="pass">') == 2 and banner.count('<li class="fail">') == 1
    assert 'class="no">NO DATA' in banner
    assert "observed" in banner  # the verdict's own text, with the observed value


def test_failures_exceptions_workers_and_classes(run: RunResult) -> None:
    tb = "Traceback (most recent call last):\n  File \"locustfile.py\", line 9, in browse\nKeyError: '<id>'\n"
    result = simulate(
        5,
        exceptions=[{"count": 3, "msg": "KeyError('<id>')", "traceback": tb, "nodes": ["w1", "w2"]}],
        workers=(
            WorkerStatus(
                "w1", state="running", user_count=10, cpu_percent=97.0, loop_lag=0.3, memory_rss=80_000_000
            ),
        ),
    )
    text = render_html(result)
    failures = text.split('<section id="failures">')[1].split("</section>")[0]
    assert "HTTPError(&#x27;500 Server Error&#x27;)" in failures
    exceptions = text.split('<section id="exceptions">')[1].split("</section>")[0]
    assert "3&times;" in exceptions and "on w1, w2" in exceptions
    assert "KeyError: &#x27;&lt;id&gt;&#x27;" in exceptions and "<pre>" in exceptions
    workers = text.split('<section id="workers">')[1].split("</section>")[0]
    assert '<span class="hot">97.0</span>' in workers and '<span class="hot">300.0</span>' in workers
    classes = text.split('<section id="users-per-class">')[1].split("</section>")[0]
    assert "Shop" in classes and "Browse" in classes  # from the last tick with users: the result has 0
    empty = render_html(simulate(2))
    assert "No exceptions in user code." in empty


def test_self_contained_plotly_inlined() -> None:
    text = render_html(simulate(5))
    assert "<script src" not in text and "<link" not in text
    ours = text.replace(report._plotly_js(), "")
    assert len(ours) < 60_000
    assert not re.search(r'(src|href)="(https?:)?//', ours)  # nothing fetched from a network
    assert "plotly.js v" in text[:10_000_000]
    sizes = report.report_size_breakdown(text)
    assert sizes["plotly"] > 3_000_000 and sizes["report"] < 60_000


def test_chart_data_is_downsampled_and_keeps_peaks() -> None:
    result = simulate(2500, names=("/a",), spike_at=1234)
    chart = chart_data(result)
    assert len(chart["t"]) <= MAX_CHART_POINTS
    assert len(chart["t"]) == len(chart["rps"]) == len(chart["users"]) == len(chart["pct"]["95%"])
    assert chart["step"] == pytest.approx(3, abs=0.1)  # 2,500 one-second points in groups of 3
    assert max(v for v in chart["pct"]["100%"] if v is not None) > 400  # the spike survives grouping
    assert set(chart["pct"]) == {"50%", "75%", "90%", "95%", "99%", "100%"}
    assert chart["visible"] == ["50%", "95%"]
    assert max(chart["users"]) == 20
    # means keep the area under the rate curve: the request count
    rows = result.history.total_rows()
    full = sum(r.current_rps for r in rows)
    assert sum(chart["rps"]) * len(rows) / len(chart["rps"]) == pytest.approx(full, rel=0.01)


def test_entry_chart_shows_the_busiest_entries() -> None:
    result = simulate(60, names=[f"/e{i:02d}" for i in range(12)])
    result.stats.record("GET", "/e11", 5, 0)  # one more request: /e11 is the busiest
    entries = chart_data(replace(result, snapshot=take_snapshot(result.stats, user_count=0)))["entries"]
    assert entries["percentile"] == "95%"
    assert len(entries["lines"]) == report.TOP_ENTRIES
    assert next(iter(entries["lines"])) == "GET /e11"
    line = entries["lines"]["GET /e00"]
    assert line["from"] == 0 and "t" not in line  # the shared time axis
    assert len(entries["t"]) == len(line["v"]) == 6  # every 10 s over 60 s
    assert all(v is not None and 20 <= v <= 60 for v in line["v"])


def test_downsample() -> None:
    times = list(range(10))
    t, s = downsample(times, {"a": ("mean", list(range(10))), "b": ("max", [None] * 5 + [1] * 5)}, 4)
    assert t == [2, 5, 8, 9]
    assert s["a"] == [1.0, 4.0, 7.0, 9.0]
    assert s["b"] == [None, 1, 1, 1]
    same = downsample(times, {"x": ("last", times)}, 10)
    assert same == (times, {"x": times})
    with pytest.raises(ValueError):
        downsample(times, {}, 0)


def test_no_history_no_charts() -> None:
    result = simulate(1)
    text = render_html(replace(result, history=StatsHistory()))
    assert "No history was recorded" in text and 'id="chart-rps"' not in text


def test_worker_series_is_bounded_and_keeps_peaks() -> None:
    series = report.WorkerSeries(max_points=50)
    for sec in range(1000):
        cpu = 99.0 if sec == 700 else 30.0
        series.add(START + sec, [WorkerStatus("w1", cpu_percent=cpu, loop_lag=0.002), WorkerStatus("w2")])
    chart = series.chart(START)
    assert set(chart) == {"w1", "w2"}
    assert len(chart["w1"]["t"]) <= 50 and len(series._series["w1"][0]) < 100
    assert max(chart["w1"]["cpu"]) == 99.0 and chart["w1"]["lag"][0] == 2.0
    assert chart["w1"]["t"][-1] == 999


def test_cpu_and_lag_charts_when_workers_were_sampled() -> None:
    series = report.WorkerSeries()
    for sec in range(5):
        series.add(START + sec, [WorkerStatus("w1", cpu_percent=50.0 + sec)])
    text = render_html(simulate(5), workers=series)
    assert 'id="chart-cpu"' in text and 'id="chart-lag"' in text
    assert data_of(text)["chart"]["workers"]["w1"]["cpu"] == [50, 51, 52, 53, 54]
    assert 'id="chart-cpu"' not in render_html(simulate(5))


# -- placeholders and the output ----------------------------------------------------------------------------


def test_fill_placeholders() -> None:
    assert (
        fill_placeholders("r_{u}_{r}_{t}.html", users=100, spawn_rate=10.0, run_time=50) == "r_100_10_50.html"
    )
    assert fill_placeholders("r_{u}_{r}.html", users=None, spawn_rate=0.5, run_time=None) == "r_{u}_0.html"
    assert fill_placeholders("{x}{u}{u}", users=3, spawn_rate=None, run_time=None) == "{x}33"


TICK = SimpleNamespace(time=START + 1.0)  # what on_tick reads of the snapshot


class FakeRun:
    def __init__(self, options: argparse.Namespace | None = None) -> None:
        self.options = options
        self.env = SimpleNamespace()
        self.history = None
        self.current = SimpleNamespace(target_user_count=0, spawn_rate=0.0, run_time=None)

    def status(self) -> Any:
        return self.current


def test_placeholders_after_a_web_start(tmp_path: Path) -> None:
    # web mode: no -u/-r/-t on the command line; the form starts 50 users at 5/s, an edit raises to 80
    run = FakeRun(argparse.Namespace(users=None, spawn_rate=None, run_time=None, locustfile=None))
    output = HtmlOutput(tmp_path / "out" / "report_{u}_{r}_{t}.html")
    output.start(run)
    run.current = SimpleNamespace(target_user_count=50, spawn_rate=5.0, run_time=None)
    output.on_tick(TICK)
    run.current = SimpleNamespace(target_user_count=80, spawn_rate=8.0, run_time=None)
    output.on_tick(TICK)
    run.current = SimpleNamespace(target_user_count=0, spawn_rate=0.0, run_time=None)  # stopped
    result = simulate(12, spawn_rate=8.0)  # the session's result carries the last request's spawn rate
    output.stop(result)
    expected = tmp_path / "out" / "report_80_8_12.html"  # {t}: the measured 12 s
    assert output.path == expected and expected.exists()
    assert output.error is None
    assert expected.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in expected.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_placeholders_from_the_command_line(tmp_path: Path) -> None:
    run = FakeRun(argparse.Namespace(users=100, spawn_rate=10.0, run_time=50, locustfile=None))
    output = HtmlOutput(str(tmp_path / "test_report_{u}_{r}_{t}.html"))
    output.start(run)
    run.current = SimpleNamespace(target_user_count=100)  # what the session's status says once started
    output.on_tick(TICK)
    result = simulate(3, options=run.options)  # ended before the ramp reached 100
    assert output.path_for(result) == tmp_path / "test_report_100_10_50.html"


def test_write_failure_raises_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    output = HtmlOutput(blocker / "report.html")
    output.start(FakeRun())
    with pytest.raises(OSError, match=r"HTML report not written to .*report\.html") as caught:
        output.stop(simulate(2))
    assert "\n" not in str(caught.value)
    assert output.path is None and output.error == str(caught.value)


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "dir" / "r_{u}.html")
    assert (tmp_path / "new" / "dir").is_dir()
    assert not list((tmp_path / "new" / "dir").iterdir())  # the probe file is gone
    with pytest.raises(OutputPathError, match="it is a directory"):
        check_writable(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_writable(blocker / "r_{t}.html")
    if os.geteuid() != 0:  # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(OutputPathError, match="cannot write"):
            check_writable(ro / "r.html")


# -- in a real browser ------------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.slow
def test_report_renders_in_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    monkeypatch.chdir(tmp_path)
    locustfile = Path("shop.py")
    locustfile.write_text("from horde import HttpUser, task\n")
    tb = "Traceback (most recent call last):\n  File \"locustfile.py\", line 12, in checkout\nKeyError: 'cart'\n"
    result = simulate(
        600,
        names=("/", "/api/items", "/api/items/[id]", "/api/search?q=[term]", "/api/cart", "/api/checkout"),
        spike_at=400,
        exceptions=[{"count": 4, "msg": "KeyError('cart')", "traceback": tb, "nodes": ["w1", "w2"]}],
        workers=(
            WorkerStatus("w1", state="stopped", cpu_percent=41.5, loop_lag=0.004, memory_rss=73_400_000),
            WorkerStatus(
                "w2", index=1, state="stopped", cpu_percent=45.0, loop_lag=0.003, memory_rss=71_900_000
            ),
        ),
        warnings=("CPU usage above 90 % on w2 (97 %) for 60 s: response times may be inflated",),
        exit_code=1,
        options=argparse.Namespace(
            users=20, spawn_rate=2.0, run_time=600, host="http://127.0.0.1:8080", locustfile="shop.py"
        ),
        locustfile=str(locustfile),
    )
    from horde.thresholds.evaluate import evaluate_all
    from horde.thresholds.parse import parse_threshold

    thresholds = [parse_threshold(e) for e in ("p95 < 300ms", "GET /api/checkout: fail_ratio < 1%")]
    result = replace(
        result, thresholds=tuple(evaluate_all(thresholds, result.snapshot, stats=result.stats)), exit_code=3
    )
    workers = report.WorkerSeries()
    for sec in range(600):  # two workers; w2 saturates for a minute around the latency spike
        hot = 370 <= sec < 430
        workers.add(
            START + sec,
            [
                WorkerStatus("w1", cpu_percent=40.0 + sec % 7, loop_lag=0.003),
                WorkerStatus(
                    "w2", index=1, cpu_percent=97.0 if hot else 45.0, loop_lag=0.18 if hot else 0.004
                ),
            ],
        )
    path = tmp_path / "report.html"
    # a fixed footer time: the committed screenshot changes only when the report does
    path.write_text(render_html(result, workers=workers, generated_at=result.end_time + 2), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(path.as_uri())
            for chart in ("chart-rps", "chart-rt", "chart-entries", "chart-users", "chart-cpu", "chart-lag"):
                page.wait_for_selector(f"#{chart} svg.main-svg", timeout=20_000)
            # plotly drew lines: one path per visible trace
            assert page.locator("#chart-rps .scatterlayer .trace").count() == 2
            assert (
                page.eval_on_selector("#chart-rt", "el => el.data.filter(t => t.visible === true).length")
                == 2
            )
            page.check('#pct-select input[data-pct="99%"]')
            assert (
                page.eval_on_selector("#chart-rt", "el => el.data.filter(t => t.visible === true).length")
                == 3
            )
            assert page.eval_on_selector("#chart-users", "el => el.data.length") == 1
            assert page.eval_on_selector("#chart-cpu", "el => el.data.map(t => t.name)") == ["w1", "w2"]
            assert page.eval_on_selector("#chart-entries", "el => el.data.length") == 6
            # the lines have real geometry, and the start marker is drawn
            lengths = page.eval_on_selector_all(
                "#chart-rps .scatterlayer path.js-line", "els => els.map(e => e.getTotalLength())"
            )
            assert len(lengths) == 2 and min(lengths) > 100
            assert page.locator("#chart-rps .annotation-text", has_text="start").count() == 1
            # click-to-sort keeps Aggregated last
            page.click('#request-statistics th:has-text("# Requests")')
            page.click('#request-statistics th:has-text("# Requests")')
            names = page.eval_on_selector_all(
                "#request-statistics tbody td.name", "els => els.map(e => e.textContent)"
            )
            assert names[-1] == "Aggregated" and len(names) == 7
            page.uncheck('#pct-select input[data-pct="99%"]')
            page.click("details.exception summary")
            assert errors == []
            assert all(u.startswith(("file:", "data:", "blob:", "about:")) for u in requests), requests
            # the committed screenshot is refreshed only on request, so a test run leaves the tree clean
            update = os.environ.get("HORDE_UPDATE_SCREENSHOTS") == "1"
            shot = (REPO / "docs" / "screenshots" / "report.png") if update else (tmp_path / "report.png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000
    assert not math.isnan(result.stats.total.avg_response_time)

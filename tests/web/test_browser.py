"""The page in a real browser: Playwright for Python driving Debian's chromium, headless, over loopback.

The scenarios run against a real TestRun with real users; screenshots land in docs/screenshots/.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from horde.web.app import WebSettings
from horde.web.options import Login
from tests.web.conftest import WebCtx, until

CHROMIUM = os.environ.get("HORDE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots go to docs/screenshots/ when HORDE_UPDATE_SCREENSHOTS=1 (so `make test` leaves the tree clean),
# else to a temporary directory, where they can still be looked at after a failure.
if os.environ.get("HORDE_UPDATE_SCREENSHOTS"):
    SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
else:
    SHOTS = Path(tempfile.gettempdir()) / "horde-screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)"
    ),
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    playwright_api = pytest.importorskip(
        "playwright.async_api", reason="the playwright package is not installed"
    )
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Any, **kw: Any) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True, **kw)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


async def goto_status(page: Any, address: str) -> int | str:
    """The status of a navigation, or "refused" when chromium gave up on a login it could not supply."""
    try:
        response = await page.goto(address)
    except Exception as e:
        if "ERR_INVALID_AUTH_CREDENTIALS" in str(e):
            return "refused"
        raise
    return int(response.status)


async def page_text(page: Any) -> str:
    """The page's HTML once it settled (chromium swaps in its own error page after a refused login)."""
    for _ in range(50):
        try:
            await page.wait_for_load_state("load")
            return str(await page.content())
        except Exception as e:
            if "navigating" not in str(e):
                raise
            await page.wait_for_timeout(100)
    raise AssertionError("the page never settled")


def url(web: WebCtx, path: str = "/") -> str:
    return str(web.client.make_url(path))


async def chart_len(page: Any, chart: str, trace: int = 0) -> int:
    return int(
        await page.evaluate(
            f"() => {{ const c = document.getElementById('{chart}'); "
            f"return c && c.data && c.data[{trace}] ? c.data[{trace}].x.length : 0; }}"
        )
    )


async def test_start_watch_edit_stop_reload_and_download(browser: Any, web: WebCtx, tmp_path: Path) -> None:
    page = await new_page(browser)
    await page.goto(url(web))
    await page.wait_for_selector("#start-card:not([hidden])")
    assert await page.input_value("#f-host") == web.target.url
    await page.screenshot(path=str(SHOTS / "start-form.png"))

    # start a test from the form: the table fills
    await page.fill("#f-users", "3")
    await page.fill("#f-rate", "30")
    await page.click("#btn-start")
    await page.wait_for_selector("#dashboard:not([hidden])")
    await page.wait_for_function(
        "() => document.querySelectorAll('#stats-table tbody tr').length === 2", timeout=10_000
    )
    assert await page.text_content("#stats-table tfoot td:nth-child(2)") == "Aggregated"
    # hide a column; the choice is remembered
    await page.click("#column-picker summary")
    await page.uncheck("input[data-col='avg_content_length']")
    assert await page.is_hidden("#stats-table thead th:nth-child(11)")
    assert await page.evaluate("() => JSON.parse(localStorage.getItem('hiddenColumns'))") == [
        "avg_content_length"
    ]
    await page.check("input[data-col='avg_content_length']")
    await page.click("#column-picker summary")
    await page.wait_for_function("() => document.getElementById('m-state').textContent === 'running'")
    await page.wait_for_function("() => document.getElementById('m-users').textContent === '3'")

    # the charts fill, from the server's history
    await page.click("a[data-tab=charts]")
    assert "tab=charts" in page.url
    await page.wait_for_function(
        "() => { const c = document.getElementById('chart-rps'); return c.data && c.data[0].x.length >= 3; }",
        timeout=15_000,
    )
    names = await page.evaluate("() => document.getElementById('chart-rt').data.map(t => t.name)")
    assert names == ["50% (last 10 s)", "95% (last 10 s)"]

    # change the charted percentiles: 99 % on, 50 % off
    await page.check("input[data-pct='0.99']")
    await page.uncheck("input[data-pct='0.5']")
    names = await page.evaluate("() => document.getElementById('chart-rt').data.map(t => t.name)")
    assert names == ["95% (last 10 s)", "99% (last 10 s)"]
    p99 = await page.evaluate("() => document.getElementById('chart-rt').data[1].y.filter(v => v > 0).length")
    assert p99 > 0

    # edit the running test's users
    await page.click("#btn-edit")
    await page.fill("#e-users", "5")
    await page.fill("#e-rate", "50")
    await page.click("#btn-update")
    await page.wait_for_function(
        "() => document.getElementById('m-users').textContent === '5'", timeout=10_000
    )
    await until(lambda: len(web.run.markers) >= 2, what="the edit marker")
    await page.wait_for_function(
        "() => (document.getElementById('chart-rps').layout.shapes || []).length >= 2", timeout=5_000
    )
    await page.wait_for_timeout(2500)
    await page.screenshot(path=str(SHOTS / "charts-light.png"), full_page=True)
    await page.click("a[data-tab=stats]")
    await page.screenshot(path=str(SHOTS / "statistics-light.png"))

    # stop
    await page.click("#btn-stop")
    await page.wait_for_function("() => document.getElementById('m-state').textContent === 'stopped'")
    await page.wait_for_selector("#btn-new:not([hidden])")
    kept = len(web.run.history)
    assert kept >= 4

    # reload on the Charts tab: the whole history comes back from the server
    await page.goto(url(web, "/?tab=charts"))
    await page.wait_for_function(
        f"() => {{ const c = document.getElementById('chart-rps'); return c.data && c.data[0].x.length >= {kept}; }}",
        timeout=10_000,
    )
    assert await chart_len(page, "chart-rps") >= kept
    assert await chart_len(page, "chart-users") == await chart_len(page, "chart-rps")
    assert await page.is_checked("input[data-pct='0.99']")  # the choice survives the reload

    # download the requests CSV from the Download tab
    await page.click("a[data-tab=reports]")
    async with page.expect_download() as info:
        await page.click("text=Download requests CSV")
    download = await info.value
    target = tmp_path / download.suggested_filename
    await download.save_as(target)
    text = target.read_text()
    assert text.startswith("Type,Name,Request Count,Failure Count,Median Response Time,")
    assert ",Aggregated," in text
    assert download.suggested_filename.endswith("_requests.csv")

    # a new test from the stopped state: the form again, then a fresh run
    await page.click("#btn-new")
    await page.wait_for_selector("#start-card:not([hidden])")
    assert await page.is_visible("#btn-cancel-new")
    await page.fill("#f-users", "1")
    await page.click("#btn-start")
    await page.wait_for_function("() => document.getElementById('m-state').textContent === 'running'")
    await page.wait_for_function(
        "() => document.getElementById('m-users').textContent === '1'", timeout=10_000
    )
    assert [m["kind"] for m in web.run.markers] == ["start"]  # the session starts a new history
    await page.click("a[data-tab=charts]")
    await page.wait_for_timeout(1500)
    assert await chart_len(page, "chart-rps") < kept  # and the page's charts start over with it
    await page.click("#btn-stop")
    await page.wait_for_function("() => document.getElementById('m-state').textContent === 'stopped'")
    assert page.errors == []


async def test_dark_theme_and_the_other_tabs(browser: Any, web: WebCtx) -> None:
    import logging

    page = await new_page(browser, color_scheme="dark")
    await web.client.post("/swarm", data={"user_count": "2", "spawn_rate": "20"})
    await until(lambda: len(web.run.history) >= 4, timeout=15, what="some history")
    logging.getLogger("horde.demo").warning("this warning shows on the Logs tab")
    await page.goto(url(web, "/?tab=charts"))
    assert await page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    await page.wait_for_function(
        "() => { const c = document.getElementById('chart-rps'); return c.data && c.data[0].x.length >= 3; }"
    )
    await page.wait_for_timeout(500)
    await page.screenshot(path=str(SHOTS / "charts-dark.png"), full_page=True)
    for tab, selector in (
        ("failures", "#failures-table tbody tr"),
        ("ratios", "#ratio-per-class li"),
        ("logViewer", "#logs-master div.WARNING"),
        ("workers", "#workers-table tbody tr"),
    ):
        await page.click(f"a[data-tab={tab}]")
        await page.wait_for_selector(selector, timeout=10_000)
        assert f"tab={tab}" in page.url
    assert "local" in (await page.text_content("#workers-table tbody tr")) or ""
    await page.click("a[data-tab=failures]")
    await page.screenshot(path=str(SHOTS / "failures-dark.png"))
    # the theme toggle switches and remembers
    await page.click("#btn-theme")
    assert await page.evaluate("() => document.documentElement.dataset.theme") == "light"
    assert await page.evaluate("() => localStorage.getItem('theme')") == "light"
    await page.goto(url(web, "/?tab=unknown"))
    await page.wait_for_selector("a[data-tab=stats].active")  # an unknown tab falls back to Statistics
    await web.client.get("/stop")
    assert page.errors == []


async def test_web_login_refuses_an_anonymous_page(browser: Any, web_factory: Any) -> None:
    async with web_factory(WebSettings(port=0, login=Login("admin", "s3cret"))) as web:
        anonymous = await new_page(browser)
        # headless chromium cannot ask for a login: it shows the 401 or its own error page, never ours
        assert await goto_status(anonymous, url(web)) in (401, "refused")
        assert "Start new load test" not in await page_text(anonymous)
        refused = await anonymous.request.get(url(web))
        assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Basic")
        wrong = await new_page(browser, http_credentials={"username": "admin", "password": "nope"})
        assert await goto_status(wrong, url(web)) in (401, "refused")
        assert "Start new load test" not in await page_text(wrong)
        page = await new_page(browser, http_credentials={"username": "admin", "password": "s3cret"})
        response = await page.goto(url(web))
        assert response.status == 200
        await page.wait_for_selector("#start-card:not([hidden])")
        await page.fill("#f-users", "1")
        await page.fill("#f-rate", "10")
        await page.click("#btn-start")  # the page's own requests carry the login, the push channel too
        await page.wait_for_function("() => document.getElementById('m-state').textContent === 'running'")
        await page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")
        await page.click("#btn-stop")
        await until(lambda: web.run.status().state == "stopped", what="stopped")
        assert page.errors == []


LOCUSTFILE = """
from horde import HttpUser, constant, task


class Browse(HttpUser):
    wait_time = constant(0.1)

    @task
    async def ok(self):
        await self.client.get("/ok")
"""


async def test_processes_run_shows_two_workers(browser: Any, server: Any, tmp_path: Path) -> None:
    """The real command line, ``--processes 2 --autostart``: the Workers tab lists both worker processes."""
    import asyncio
    import signal
    import socket
    import sys

    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "horde",
        "-f",
        str(locustfile),
        "--processes",
        "2",
        "--autostart",
        "-u",
        "4",
        "-r",
        "20",
        "-H",
        server.url,
        "-P",
        str(port),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        page = await new_page(browser)
        address = f"http://127.0.0.1:{port}/?tab=workers"
        for _ in range(100):
            try:
                await page.goto(address)
                break
            except Exception:
                await asyncio.sleep(0.1)
        await page.wait_for_function(
            "() => document.querySelectorAll('#workers-table tbody tr').length === 2", timeout=20_000
        )
        await page.wait_for_function(
            "() => Array.from(document.querySelectorAll('#workers-table tbody tr td:nth-child(3)'))"
            ".map(td => td.textContent).join() === '2,2'",
            timeout=20_000,
        )
        assert not await page.is_hidden("#m-workers-box")
        assert await page.text_content("#m-workers") == "2"
        states = await page.eval_on_selector_all(
            "#workers-table tbody tr td:nth-child(2)", "tds => tds.map(td => td.textContent)"
        )
        assert states == ["running", "running"]
        await page.wait_for_timeout(1500)
        await page.screenshot(path=str(SHOTS / "workers-processes.png"))
        assert page.errors == []
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_five_hundred_entries_stay_readable(browser: Any, web: WebCtx) -> None:
    """500 rows (Locust's cap) render within a tick, sort by a click, and the Aggregated row stays last."""
    await web.client.post("/swarm", data={"user_count": "1", "spawn_rate": "10"})
    await until(lambda: web.run.status().user_count == 1, what="1 user")
    for i in range(600):
        web.env.stats.record("GET", f"/api/catalogue/items/{i:04d}?page=1", 1.0 + i % 40, 100)
    page = await new_page(browser)
    await page.goto(url(web))
    await page.wait_for_function(
        "() => document.querySelectorAll('#stats-table tbody tr').length === 500", timeout=10_000
    )
    took = await page.evaluate(
        "() => { const t = performance.now(); document.querySelector('#stats-table th:nth-child(10)').click();"
        " return performance.now() - t; }"
    )
    assert took < 500, f"sorting 500 rows took {took:.0f} ms"
    first = await page.text_content("#stats-table tbody tr:first-child td:nth-child(10)")
    assert first is not None and float(first) <= 1.0  # sorted by Max, ascending
    assert await page.text_content("#stats-table tfoot td:nth-child(2)") == "Aggregated"
    # the page keeps up: ticks still arrive and render while 500 rows are shown
    await page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")
    await page.wait_for_timeout(1500)
    await page.screenshot(path=str(SHOTS / "statistics-500-entries.png"))
    await web.client.get("/stop")
    assert page.errors == []


async def test_class_picker_starts_only_the_chosen_classes(browser: Any, web_factory: Any) -> None:
    from tests.web.conftest import Browse, Crash

    async with web_factory(WebSettings(port=0, class_picker=True), classes=[Browse, Crash]) as web:
        page = await new_page(browser)
        await page.goto(url(web))
        await page.wait_for_selector("#class-picker:not([hidden])")
        assert await page.is_checked("input[name=user_classes][value=Crash]")
        await page.uncheck("input[name=user_classes][value=Crash]")
        await page.fill("#f-users", "2")
        await page.fill("#f-rate", "20")
        await page.screenshot(path=str(SHOTS / "start-form-class-picker.png"))
        await page.click("#btn-start")
        await page.wait_for_function(
            "() => document.getElementById('m-users').textContent === '2'", timeout=10_000
        )
        assert web.run.status().user_classes_count == {"Browse": 2}
        await page.click("#btn-stop")
        await until(lambda: web.run.status().state == "stopped", what="stopped")
        assert page.errors == []


async def test_the_page_works_under_a_base_path(browser: Any, web_factory: Any) -> None:
    """Every URL the page uses is relative, so ``--web-base-path`` (or a rewriting proxy) just works."""
    async with web_factory(WebSettings(port=0, base_path="/load/horde")) as web:
        page = await new_page(browser)
        await page.goto(url(web, "/load/horde"))  # redirected to /load/horde/
        assert page.url.endswith("/load/horde/")
        await page.wait_for_function("() => document.getElementById('conn').textContent === 'live'")
        await page.fill("#f-users", "1")
        await page.fill("#f-rate", "10")
        await page.click("#btn-start")
        await page.wait_for_function(
            "() => document.querySelectorAll('#stats-table tbody tr').length === 2", timeout=10_000
        )
        await page.click("#btn-stop")
        await until(lambda: web.run.status().state == "stopped", what="stopped")
        assert page.errors == []

"""The route handlers: Locust's endpoints (same paths, methods and bodies) and horde's ``/api/`` extras."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from horde.reports.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from horde.reports.prometheus import metrics_text
from horde.web import downloads, payloads
from horde.web.app import (
    REPORT_UNAVAILABLE,
    UI_KEY,
    WebUI,
    _dumps,
    _in_background,
    _json,
    plotly_js_path,
    static_path,
)
from horde.web.swarm import parse_swarm

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
_STATIC_FILES = ("app.js", "style.css", "favicon.svg")


def _ui(request: web.Request) -> WebUI:
    return request.app[UI_KEY]


def add_routes(app: web.Application) -> None:
    get = app.router.add_get
    get("/", index)
    app.router.add_post("/swarm", swarm)
    get("/stop", stop)
    get("/stats/reset", reset)
    get("/stats/requests", stats_requests)
    get("/stats/requests/csv", requests_csv)
    get("/stats/requests_full_history/csv", history_csv)
    get("/stats/failures/csv", failures_csv)
    get("/stats/report", report)
    get("/exceptions", exceptions)
    get("/exceptions/csv", exceptions_csv)
    get("/tasks", tasks)
    get("/logs", logs)
    get("/worker-count", worker_count)
    get("/metrics", metrics)
    get("/api/status", api_status)
    get("/api/history", api_history)
    get("/api/history/full", api_history_full)
    get("/api/events", api_events)
    get("/assets/{name}", asset)


# -- the page --------------------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    ui = _ui(request)
    html = static_path("index.html").read_text(encoding="utf-8")
    args = _dumps(ui.template_args()).replace("</", "<\\/")
    html = html.replace("{{TEMPLATE_ARGS}}", args)
    return web.Response(
        text=html, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"}
    )


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "plotly.min.js":
        path = plotly_js_path()
    elif name in _STATIC_FILES:
        path = static_path(name)
    else:
        raise web.HTTPNotFound(text=f"no asset {name!r}\n")
    suffix = "." + name.rsplit(".", 1)[-1]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": _STATIC_TYPES.get(suffix, "application/octet-stream"),
            "Cache-Control": "no-cache",
        },
    )


# -- control ---------------------------------------------------------------------------------------------


async def swarm(request: web.Request) -> web.Response:
    ui = _ui(request)
    posted = await request.post()
    form = {key: [v for v in posted.getall(key) if isinstance(v, str)] for key in dict.fromkeys(posted)}
    req, problems = parse_swarm(form, ui.swarm_context())
    host = ui.env.host or None
    if req is None:
        return _json({"success": False, "message": "; ".join(problems), "host": host}, status=400)
    try:
        ui.apply(req)
    except (ValueError, RuntimeError) as e:  # the session refused (e.g. a state changed meanwhile)
        return _json({"success": False, "message": str(e), "host": ui.env.host or None}, status=400)
    body: dict[str, Any] = {"success": True, "host": ui.env.host or None}
    if req.uses_shape:
        body["message"] = f"Swarming started using shape class '{req.shape_class}'"
    else:
        body["message"] = "Swarming started"
    if req.run_time and not req.edit:
        body["run_time"] = req.run_time
    if ui.settings.class_picker and req.user_classes:
        body["user_classes"] = sorted(req.user_classes)
    return _json(body)


async def stop(request: web.Request) -> web.Response:
    ui = _ui(request)
    _in_background(ui.run.stop())
    ui.invalidate()
    return _json({"message": "Test stopped", "success": True})


async def reset(request: web.Request) -> web.Response:
    ui = _ui(request)
    ui.run.reset_stats()
    ui.invalidate()
    return web.Response(text="ok", content_type="text/html")


# -- Locust's data endpoints -----------------------------------------------------------------------------


async def stats_requests(request: web.Request) -> web.Response:
    return web.Response(text=_ui(request).stats_requests_text(), content_type="application/json")


def _csv(ui: WebUI, kind: str, text: str) -> web.Response:
    status = ui.status()
    name = downloads.download_name(kind, status.start_time, ui.settings.locustfile, ui.env.host)
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment;filename="{name}"'},
    )


async def requests_csv(request: web.Request) -> web.Response:
    ui = _ui(request)
    return _csv(ui, "requests", downloads.requests_csv(ui.env.stats))


async def failures_csv(request: web.Request) -> web.Response:
    ui = _ui(request)
    return _csv(ui, "failures", downloads.failures_csv(ui.env.stats))


async def history_csv(request: web.Request) -> web.Response:
    ui = _ui(request)
    history = getattr(ui.run, "history", None)
    if history is None:
        raise web.HTTPNotFound(text="Error: this run keeps no stats history.\n")
    return _csv(ui, "requests_full_history", downloads.history_csv(history))


async def exceptions(request: web.Request) -> web.Response:
    return _json(payloads.exceptions(_ui(request).exception_rows()))


async def exceptions_csv(request: web.Request) -> web.Response:
    ui = _ui(request)
    return _csv(ui, "exceptions", downloads.exceptions_csv(ui.exception_rows()))


async def report(request: web.Request) -> web.Response:
    """The HTML report of the run so far (``?download=1`` makes it an attachment, as in Locust)."""
    ui = _ui(request)
    try:
        from horde.reports.html import render_html
    except ImportError:
        return web.Response(status=501, text=REPORT_UNAVAILABLE + "\n")
    download = bool(request.query.get("download"))
    html = render_html(ui.run.result(), download_url=None if download else "./report?download=1")
    headers = {}
    if download:
        name = downloads.download_name("report", ui.status().start_time, ui.settings.locustfile, ui.env.host)
        headers["Content-Disposition"] = f'attachment;filename="{name.removesuffix(".csv")}.html"'
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)


async def tasks(request: web.Request) -> web.Response:
    ui = _ui(request)
    status = ui.status()
    env = ui.env
    return _json(payloads.tasks(list(env.user_classes), dict(status.user_classes_count), env.tasks_for))


async def logs(request: web.Request) -> web.Response:
    ui = _ui(request)
    workers = getattr(ui.env, "worker_logs", None) or {}
    # the last 500 lines per worker, like the master's own buffer
    return _json({"master": ui.logs.texts(), "workers": {k: list(v)[-500:] for k, v in workers.items()}})


async def worker_count(request: web.Request) -> web.Response:
    status = _ui(request).status()
    count = len(status.workers) if status.distributed else 0
    return _json({"worker_count": count})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of the live stats and the run's status (``--web-login`` protects it too)."""
    ui = _ui(request)
    text = metrics_text(ui.env.stats, ui.status())
    return web.Response(body=text.encode(), headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


# -- horde's extras --------------------------------------------------------------------------------------


async def api_status(request: web.Request) -> web.Response:
    return web.Response(text=_ui(request).status_text(), content_type="application/json")


async def api_history(request: web.Request) -> web.Response:
    return _json(_ui(request).history_dict())


async def api_history_full(request: web.Request) -> web.Response:
    history = getattr(_ui(request).run, "history", None)
    return _json(history.to_dict() if history is not None else {"rows": []})


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one ``tick`` a second with the status, the stats table and new chart points."""
    ui = _ui(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        }
    )
    await response.prepare(request)
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    ui.subscribers.add(queue)
    try:
        await response.write(b"retry: 2000\n\n")
        # the whole history first (also after a reconnect), then one tick a second
        await response.write(b"event: history\ndata: " + _dumps(ui.history_dict()).encode() + b"\n\n")
        queue.put_nowait(ui.tick_payload())
        while True:
            text = await queue.get()
            if text is None:
                break
            await response.write(b"event: tick\ndata: " + text.encode() + b"\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        ui.subscribers.discard(queue)
    return response

"""The aiohttp application: Locust's REST routes, horde's ``/api/`` extras and the page, over one TestRun.

Everything here reads and drives the run through :class:`horde.session.TestRun` (``status()``, ``start``,
``edit``, ``stop``, ``reset_stats``, ``history``, ``env``): never a runner's internals.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from horde._version import __version__
from horde.web import charts, payloads
from horde.web.logbuffer import LogBuffer
from horde.web.options import DEFAULT_WEB_HOST, DEFAULT_WEB_PORT, Login, parse_login
from horde.web.swarm import DEFAULT_SHAPE, SwarmContext, SwarmRequest

if TYPE_CHECKING:
    from horde.session import RunStatus, TestRun

logger = logging.getLogger(__name__)

#: Seconds a computed ``/stats/requests`` body is reused (Locust: 2 s); state changes drop it at once.
STATS_CACHE_SECONDS = 1.0
#: How old (s) the session's last tick may be to answer /stats/requests from it (it ticks every second).
SNAPSHOT_MAX_AGE = 1.5
#: The push channel's period.
PUSH_INTERVAL = 1.0
#: Chart points repeated in every push (seconds back), so a tick that arrives late still joins up.
RECENT_POINTS_SECONDS = 5.0
#: For this long (s) after the last status read, each session tick encodes its new status right away, so
#: the next ``/api/status`` only splices texts (at 5,000 workers the encoding is a megabyte, ~20 ms).
WARM_SECONDS = 5.0
REPORT_UNAVAILABLE = "The HTML report is not part of this build yet: download the CSV files instead."
CROSS_SITE_MESSAGE = "cross-site request refused: state-changing requests must come from this page"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class WebSettings:
    """What the server needs from the command line (see :func:`WebSettings.from_options`)."""

    host: str = DEFAULT_WEB_HOST
    port: int = DEFAULT_WEB_PORT
    base_path: str = ""
    login: Login | None = None
    tls_cert: str = ""
    tls_key: str = ""
    class_picker: bool = False
    # the start form's defaults (-u/-r/-t/-H)
    users: int | None = None
    spawn_rate: float | None = None
    run_time: int | None = None
    host_prefill: str | None = None
    locustfile: str | None = None
    #: custom-argument destinations (added by ``init_command_line_parser`` listeners) /swarm may set
    custom_dests: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_options(
        cls, options: argparse.Namespace, custom_dests: frozenset[str] = frozenset()
    ) -> WebSettings:
        get = getattr
        return cls(
            host=get(options, "web_host", DEFAULT_WEB_HOST) or DEFAULT_WEB_HOST,
            port=int(get(options, "web_port", DEFAULT_WEB_PORT)),
            base_path=get(options, "web_base_path", "") or "",
            login=parse_login(get(options, "web_login", "") or ""),
            tls_cert=get(options, "tls_cert", "") or "",
            tls_key=get(options, "tls_key", "") or "",
            class_picker=bool(get(options, "class_picker", False)),
            users=get(options, "users", None),
            spawn_rate=get(options, "spawn_rate", None),
            run_time=get(options, "run_time", None),
            host_prefill=get(options, "host", None),
            locustfile=get(options, "locustfile", None),
            custom_dests=custom_dests,
        )


UI_KEY: web.AppKey[WebUI] = web.AppKey("horde_web_ui")


def _in_background(future: asyncio.Future[Any]) -> None:
    """Leave a stop in progress running (Locust answers /stop at once) but log it if it fails."""

    def done(f: asyncio.Future[Any]) -> None:
        if not f.cancelled() and f.exception() is not None:
            logger.error("stopping the test failed", exc_info=f.exception())

    future.add_done_callback(done)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, allow_nan=False, default=str)


def _object_text(fields: Mapping[str, str]) -> str:
    """The JSON object whose values are the already-encoded texts in ``fields``: exactly what
    :func:`_dumps` writes for the decoded dict (sorted keys, the same separators), so a large value
    encoded once (5,000 worker rows are a megabyte) can go into several bodies without encoding it again.

    >>> _object_text({"b": "[1, 2]", "a": '"x"'}) == _dumps({"b": [1, 2], "a": "x"})
    True
    """
    return "{" + ", ".join(f"{_dumps(key)}: {text}" for key, text in sorted(fields.items())) + "}"


class WebUI:
    """The state the routes share: the run, the settings, the log buffer, the chart markers, subscribers."""

    def __init__(
        self, run: TestRun, settings: WebSettings | None = None, logs: LogBuffer | None = None
    ) -> None:
        self.run = run
        self.settings = settings or WebSettings()
        self.logs = logs or LogBuffer()
        self.subscribers: set[asyncio.Queue[str | None]] = set()
        self._stats_cache: tuple[float, str] | None = None
        # the encoded fields of the session's shared status, kept while the session hands out that same
        # object (it builds one a tick): every /api/status and push of the tick reuses them
        self._status_fields: tuple[RunStatus, dict[str, str]] | None = None
        self._locust_workers: tuple[RunStatus, dict[str, str]] | None = None
        self._status_read_at = float("-inf")  # time.monotonic() of the last status_text()
        self._changed_at = float("-inf")
        self._ticker: asyncio.Task[None] | None = None
        self.app = self._build()

    # -- reading the run ---------------------------------------------------------------------------------

    @property
    def env(self) -> Any:
        return self.run.env

    def status(self) -> RunStatus:
        return self.run.status()

    def exception_rows(self) -> list[Mapping[str, Any]]:
        runner = self.env.runner
        rows = getattr(runner, "exceptions", None) or {}
        return list(rows.values())

    def stats_requests_text(self) -> str:
        now = time.monotonic()
        cached = self._stats_cache
        if cached is not None and now - cached[0] < STATS_CACHE_SECONDS:
            return cached[1]
        status = self.status()
        snapshot = self._fresh_snapshot(str(status.state))
        if snapshot is not None:
            body = payloads.stats_requests_from_snapshot(
                snapshot, state=str(status.state), user_count=status.user_count
            )
        else:
            body = payloads.stats_requests(
                self.env.stats, state=str(status.state), user_count=status.user_count
            )
        fields = {key: _dumps(value) for key, value in body.items()}
        if status.distributed:  # Locust lists the workers on a master only
            fields.update(self._locust_worker_fields(status))
        text = _object_text(fields)
        self._stats_cache = (now, text)
        return text

    def _locust_worker_fields(self, status: RunStatus) -> dict[str, str]:
        """``workers`` and ``worker_count`` of /stats/requests, encoded once per shared status."""
        cached = self._locust_workers
        if cached is not None and cached[0] is status:
            return cached[1]
        fields = {
            "workers": _dumps([payloads.worker_dict(w) for w in status.workers]),
            "worker_count": _dumps(len(status.workers)),
        }
        self._locust_workers = (status, fields)
        return fields

    def _fresh_snapshot(self, state: str) -> Any:
        """The session's last tick while a test runs, if it is recent and newer than the last change made
        here (a reset or a stop must show at once, not a second later); else None (compute live)."""
        snapshot = getattr(self.run, "latest", None)
        if snapshot is None or state not in ("spawning", "running"):
            return None
        now = self.env.clock.time()
        if snapshot.time <= self._changed_at or now - snapshot.time > SNAPSHOT_MAX_AGE:
            return None
        return snapshot if payloads.snapshot_usable(snapshot) else None

    def invalidate(self) -> None:
        self._stats_cache = None
        self._changed_at = self.env.clock.time()

    def health(self, status: Any) -> dict[str, Any]:
        """The header's generator-health badge: worst CPU and loop lag over the load generators."""
        from horde.monitor import CPU_WARNING_THRESHOLD, LOOP_LAG_WARNING_THRESHOLD

        rows = [w for w in status.workers if str(w.state) != "missing"]
        cpu = max((w.cpu_percent for w in rows), default=0.0)
        lag = max((w.loop_lag for w in rows), default=0.0)
        saturated = cpu >= CPU_WARNING_THRESHOLD or lag >= LOOP_LAG_WARNING_THRESHOLD
        return {
            "cpu_percent": cpu,
            "loop_lag": lag,
            "saturated": saturated,
            "cpu_threshold": CPU_WARNING_THRESHOLD,
            "lag_threshold": LOOP_LAG_WARNING_THRESHOLD,
            "workers": len(rows),
        }

    def status_dict(self) -> dict[str, Any]:
        """``GET /api/status``: the run's status, the health badge, the totals and the log counters."""
        status = self.status()
        data = dict(status.to_dict())
        data["health"] = self.health(status)
        data.update(self._status_extras())
        return data

    def status_text(self) -> str:
        """:meth:`status_dict` encoded (the same text ``_dumps`` gives), re-using the encoding of the
        session's status while it is the same object; only the totals and log counters are encoded anew."""
        self._status_read_at = time.monotonic()
        fields = dict(self._encoded_status())
        fields.update((key, _dumps(value)) for key, value in self._status_extras().items())
        return _object_text(fields)

    def _encoded_status(self) -> dict[str, str]:
        status = self.status()
        cached = self._status_fields
        if cached is not None and cached[0] is status:
            return cached[1]
        data = status.to_dict()
        data["health"] = self.health(status)
        fields = {key: _dumps(value) for key, value in data.items()}
        self._status_fields = (status, fields)
        return fields

    def _warm(self, **_: Any) -> None:
        """``stats_tick`` listener: encode the tick's new status now, while a page or a script reads it
        (a push subscriber, or a status read in the last WARM_SECONDS), instead of in the next request."""
        if not self.subscribers and time.monotonic() - self._status_read_at >= WARM_SECONDS:
            return
        try:
            self._encoded_status()
        except Exception:  # the request that needs it will fail and say why; a tick must not
            logger.debug("web UI: encoding the status ahead failed", exc_info=True)

    def _status_extras(self) -> dict[str, Any]:
        """The parts of /api/status that are not the session's status: read live on every call."""
        total = self.env.stats.total
        return {
            "totals": {
                "num_requests": total.num_requests,
                "num_failures": total.num_failures,
                "current_rps": total.current_rps,
                "total_rps": total.total_rps,
                "fail_ratio": total.fail_ratio,
                "exceptions": len(self.exception_rows()),
            },
            "logs_version": self.logs.version,
            "logs_alerts": self.logs.alerts,
        }

    def history_dict(self) -> dict[str, Any]:
        history = getattr(self.run, "history", None)
        return {
            "history_id": getattr(history, "cleared_at", None),
            "percentiles": list(payloads.CHART_PERCENTILES),
            "points": charts.chart_points(history),
            "markers": charts.markers(self.run),
        }

    # -- the page's start values -------------------------------------------------------------------------

    def template_args(self) -> dict[str, Any]:
        """Locust's ``window.templateArgs`` keys the page uses, plus horde's."""
        env = self.env
        s = self.settings
        status = self.status()
        classes = list(env.user_classes)
        hosts = {getattr(c, "host", None) for c in classes}
        host = env.host or (next(iter(hosts)) if len(hosts) == 1 else None) or s.host_prefill or ""
        shape = env.shape_class
        return {
            "state": str(status.state),
            "is_distributed": status.distributed,
            "worker_count": len(status.workers) if status.distributed else 0,
            "user_count": status.user_count,
            "num_users": s.users,
            "spawn_rate": s.spawn_rate,
            "run_time": s.run_time,
            "host": host or "",
            "override_host_warning": len(hosts) > 1,
            "missing_host_warning": not host and any(not getattr(c, "host", None) for c in classes),
            "locustfile": s.locustfile,
            "version": __version__,
            "show_userclass_picker": s.class_picker,
            "available_user_classes": sorted(c.__name__ for c in classes),
            "available_shape_classes": [DEFAULT_SHAPE, *([type(shape).__name__] if shape else [])],
            "shape_class": type(shape).__name__ if shape is not None else None,
            "hide_common_options": shape is not None and not s.class_picker,
            "percentiles_to_chart": list(payloads.PERCENTILES_TO_CHART),
            "percentiles_to_statistics": list(payloads.PERCENTILES_TO_STATISTICS),
            "chart_percentiles": list(payloads.CHART_PERCENTILES),
            "extra_options": self._extra_options(),
            "login_required": s.login is not None,
        }

    def _custom_defaults(self) -> dict[str, Any]:
        options = getattr(self.env, "parsed_options", None)
        values = vars(options) if options is not None else {}
        return {k: values.get(k) for k in self.settings.custom_dests if k in values}

    def _extra_options(self) -> dict[str, Any]:
        return {
            k: {"default_value": v if not isinstance(v, (list, tuple)) else ",".join(map(str, v))}
            for k, v in sorted(self._custom_defaults().items())
        }

    # -- driving the run ---------------------------------------------------------------------------------

    def swarm_context(self) -> SwarmContext:
        env = self.env
        shape = env.shape_class
        status = self.status()
        ready = sum(1 for w in status.workers if str(w.state) != "missing") if status.distributed else None
        return SwarmContext(
            state=str(status.state),
            workers_ready=ready,
            user_classes=sorted(c.__name__ for c in env.user_classes),
            shape_classes=[type(shape).__name__] if shape is not None else [],
            default_shape=type(shape).__name__
            if shape is not None and not self.settings.class_picker
            else None,
            class_picker=self.settings.class_picker,
            custom_defaults=self._custom_defaults(),
        )

    def apply(self, req: SwarmRequest) -> None:
        """Start or edit; the session raises ConfigurationError before changing anything. Custom arguments
        are set only once it accepted, and before the ramp (a task that runs later) fires test_start."""
        if req.edit and not req.uses_shape:
            assert req.user_count is not None and req.spawn_rate is not None
            self.run.edit(req.user_count, req.spawn_rate)
        else:
            self.run.start(start_request(req))
        options = getattr(self.env, "parsed_options", None)
        if options is not None:
            for key, value in req.custom.items():
                setattr(options, key, value)
        self.invalidate()

    # -- the push channel --------------------------------------------------------------------------------

    def tick_payload(self) -> str:
        """One push: status, the stats table, and the last few chart points (the page keeps those newer
        than what it has, so a late or dropped tick loses nothing and no cursor is shared between tabs)."""
        history = getattr(self.run, "history", None)
        last = getattr(history, "last_time", None)
        since = None if last is None else last - RECENT_POINTS_SECONDS
        fields = {
            # changes when a new test clears the history
            "history_id": _dumps(getattr(history, "cleared_at", None)),
            "status": self.status_text(),
            "stats": self.stats_requests_text(),
            "points": _dumps(charts.chart_points(history, since) if since is not None else []),
            "markers": _dumps(charts.markers(self.run)),
        }
        return _object_text(fields)

    async def _tick_forever(self) -> None:
        while True:
            try:
                if self.subscribers:
                    text = self.tick_payload()
                    for queue in list(self.subscribers):
                        if queue.qsize() < 5:  # a stalled tab drops ticks instead of growing memory
                            queue.put_nowait(text)
            except Exception:
                logger.exception("web UI: the push tick failed")
            await asyncio.sleep(PUSH_INTERVAL)

    def start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(), name="web-ticker")
            self.env.events.stats_tick.add_listener(self._warm)

    async def stop_ticker(self) -> None:
        task, self._ticker = self._ticker, None
        if task is not None and self._warm in self.env.events.stats_tick.listeners:
            self.env.events.stats_tick.remove_listener(self._warm)
        for queue in list(self.subscribers):
            queue.put_nowait(None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- assembly ----------------------------------------------------------------------------------------

    def _build(self) -> web.Application:
        from horde.web import routes

        base = self.settings.base_path
        # login is checked once, by the outermost app (which with a base path also guards the redirect)
        inner = (
            [self._cross_site_middleware] if base else [self._auth_middleware, self._cross_site_middleware]
        )
        app = web.Application(middlewares=inner)
        app[UI_KEY] = self
        routes.add_routes(app)
        if not base:
            return app
        root = web.Application(middlewares=[self._auth_middleware])
        root[UI_KEY] = self

        async def to_slash(request: web.Request) -> web.Response:
            raise web.HTTPPermanentRedirect(base + "/")

        root.router.add_get(base, to_slash)
        root.add_subapp(base + "/", app)
        return root

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        login = self.settings.login
        if login is None:
            return await handler(request)
        if not _credentials_match(request.headers.get("Authorization", ""), login):
            return web.Response(
                status=401,
                text="401: login required\n",
                headers={"WWW-Authenticate": 'Basic realm="horde", charset="UTF-8"'},
            )
        return await handler(request)

    @web.middleware
    async def _cross_site_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _changes_state(request) and _is_cross_site(request):
            return _json({"success": False, "message": CROSS_SITE_MESSAGE}, status=403)
        return await handler(request)


def start_request(req: SwarmRequest) -> Any:
    """The session's StartRequest for a checked /swarm form."""
    from horde.session import StartRequest

    return StartRequest(
        user_count=req.user_count,
        spawn_rate=req.spawn_rate,
        host=req.host,
        run_time=req.run_time,
        user_classes=req.user_classes,
        use_shape=req.uses_shape,
        model=req.model,
    )


_STATE_CHANGING_GETS = ("/stop", "/stats/reset")


def _changes_state(request: web.Request) -> bool:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return True
    return request.path.rstrip("/").endswith(_STATE_CHANGING_GETS)


def _is_cross_site(request: web.Request) -> bool:
    """A request another site made the browser send (a form post, an <img src>, a fetch).

    Scripts (curl, exporters) send none of these headers and pass; so do same-origin requests from the page.
    Behind a reverse proxy the Host header may be rewritten: X-Forwarded-Host is then taken as ours.
    """
    if request.headers.get("Sec-Fetch-Site", "same-origin") in ("cross-site", "same-site"):
        return True
    ours = {request.host.lower()}
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded:
        ours.add(forwarded.split(",")[0].strip().lower())
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if not value:
            continue
        if value == "null":
            return True
        netloc = urlsplit(value).netloc.lower()
        if netloc not in ours:
            return True
    return False


def _credentials_match(header: str, login: Login) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    ok_user = hmac.compare_digest(user.encode(), login.user.encode())
    ok_password = hmac.compare_digest(password.encode(), login.password.encode())
    return ok_user and ok_password


def static_path(name: str) -> Path:
    return Path(str(resources.files("horde.web") / "static" / name))


def plotly_js_path() -> Path:
    """``plotly.min.js`` from the installed plotly wheel (no CDN: load-test machines are often offline)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

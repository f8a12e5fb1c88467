"""Start and stop the web UI's HTTP server (the CLI calls these; tests call them with port 0).

>>> server = WebServer(run, WebSettings.from_options(options))
>>> url = await server.start()          # raises WebServerError("cannot listen on ...") if the port is taken
>>> print(server.startup_line())
>>> await server.stop()
"""

from __future__ import annotations

import errno
import logging
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

from horde.web.app import WebSettings, WebUI
from horde.web.logbuffer import LogBuffer

if TYPE_CHECKING:
    from horde.session import TestRun

logger = logging.getLogger(__name__)


class WebServerError(Exception):
    """The server cannot start (port in use, bad TLS files); the message is one clear line."""


class WebServer:
    """The aiohttp server of one run: bind, serve, push a tick every second, and stop cleanly."""

    def __init__(
        self, run: TestRun, settings: WebSettings | None = None, logs: LogBuffer | None = None
    ) -> None:
        self.settings = settings or WebSettings()
        self.logs = logs or LogBuffer()
        self.ui = WebUI(run, self.settings, self.logs)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def app(self) -> web.Application:
        return self.ui.app

    @property
    def scheme(self) -> str:
        return "https" if self.settings.tls_cert and self.settings.tls_key else "http"

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "*") else host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"{self.scheme}://{shown}:{self.port}{self.settings.base_path}/"

    def startup_line(self) -> str:
        host = self.settings.host
        if host in ("127.0.0.1", "localhost", "::1"):
            where = "this machine only; --web-host 0.0.0.0 opens it to the network"
        else:
            where = f"listening on {host or 'all interfaces'}"
            if self.settings.login is None:
                where += ", no login: consider --web-login USER:PASSWORD"
        return f"Starting web interface at {self.url} ({where})"

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.scheme != "https":
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        except (OSError, ssl.SSLError) as e:
            raise WebServerError(f"cannot use --tls-cert/--tls-key: {e}") from None
        return context

    async def start(self) -> str:
        """Bind and serve; returns the URL. Raises :class:`WebServerError` with one line on failure."""
        host = self.settings.host
        bind = None if host in ("", "*") else host
        context = self._ssl_context()
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, bind, self.settings.port, ssl_context=context, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise WebServerError(_listen_error(host, self.settings.port, e)) from None
        self._runner = runner
        self.port = runner.addresses[0][1] if runner.addresses else self.settings.port
        self.logs.attach()
        self.ui.start_ticker()
        return self.url

    async def stop(self) -> None:
        """Close every connection (the push streams end) and release the port; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.logs.detach()
        await self.ui.stop_ticker()
        await runner.cleanup()


def _listen_error(host: str, port: int, e: OSError) -> str:
    where = f"{host or '*'}:{port}"
    if e.errno == errno.EADDRINUSE or "address already in use" in str(e).lower():
        return f"cannot start the web UI: {where} is already in use (choose another port with -P/--web-port)"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"cannot start the web UI: {host} is not an address of this machine (see --web-host)"
    return f"cannot start the web UI on {where}: {e.strerror or e}"

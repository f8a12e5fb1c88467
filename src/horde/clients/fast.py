"""``FastHttpUser``: a lean HTTP/1.1 keep-alive client for the most requests per core.

The client is asyncio protocols plus httptools' parser (uvloop where the CLI installed it; the plain
asyncio loop works too). It speaks what load tests need — keep-alive, Content-Length and chunked bodies,
gzip/deflate, redirects, cookies, headers, query params, JSON and form bodies, basic auth, timeouts,
TLS — and reports exactly like :class:`~horde.clients.http.HttpUser`: one ``request`` event per request,
response time to the last byte of the body, status >= 400 and transport errors as failures unless
``catch_response=True`` lets the task decide. It returns the shared
:class:`~horde.clients.response.Response` (a lazily filled subclass).

Where the time goes, and why the code is shaped as it is, is in ``docs/fast-http.md``. In short: a
request that was made before with the same method and URL reuses its prepared bytes; an idle
keep-alive connection is a list pop; nothing is built for the response that the task does not read.

Retry rule (the only one): a request is sent again, once, on a fresh connection when it failed on a
reused keep-alive connection that the server closed before sending any byte of the response, and the
method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). That is the race of a server closing an
idle connection just as the next request goes out; anything else is reported as it happened. A
connection already known to be closed when a request starts is never used, whatever the method.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from horde.clients._fast_conn import ProtocolError, ServerDisconnected
from horde.clients._fast_cookies import CookieJar
from horde.clients._fast_response import FastResponse
from horde.clients._fast_session import FastHttpSession, FastRequestCall, TooManyRedirects
from horde.clients.http import missing_host_message
from horde.clients.response import DEFAULT_MAX_BODY, RestCall, rest_call
from horde.exceptions import StopTest
from horde.user.users import User

if TYPE_CHECKING:
    from horde.env import Environment

__all__ = [
    "CookieJar",
    "FastHttpSession",
    "FastHttpUser",
    "FastRequestCall",
    "FastResponse",
    "ProtocolError",
    "RestCall",
    "RestResponseContextManager",
    "ServerDisconnected",
    "TooManyRedirects",
]


#: Locust's name for what ``rest()`` returns
RestResponseContextManager = RestCall


class FastHttpUser(User):
    """A user whose ``self.client`` is a :class:`FastHttpSession`: several times the requests per core
    of :class:`~horde.clients.http.HttpUser`, for the HTTP/1.1 features load tests use.

    >>> class Api(FastHttpUser):
    ...     host = "http://127.0.0.1:8080"
    ...     @task
    ...     async def index(self):
    ...         await self.client.get("/")

    Class attributes: ``concurrency`` (connections per user, for requests run in parallel with
    ``asyncio.gather``), ``connection_timeout`` and ``network_timeout`` (seconds; the latter bounds a
    whole exchange), ``insecure`` (skip TLS verification), ``ssl_context`` (your own, e.g. with a
    private CA), ``max_redirects``, ``default_headers``, ``max_body_size`` (bytes of a response body
    read into memory, default 64 MiB; ``max_body=`` per request).
    """

    abstract = True
    concurrency: ClassVar[int] = 10
    connection_timeout: ClassVar[float] = 60.0
    network_timeout: ClassVar[float] = 60.0
    insecure: ClassVar[bool] = False
    ssl_context: ClassVar[_ssl.SSLContext | None] = None
    max_redirects: ClassVar[int] = 30  # as Locust
    default_headers: ClassVar[Mapping[str, str] | None] = None
    max_body_size: ClassVar[int] = DEFAULT_MAX_BODY
    client: FastHttpSession

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.host:
            raise StopTest(missing_host_message(type(self)))
        self.client = FastHttpSession(
            self.host,
            self,
            concurrency=self.concurrency,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            insecure=self.insecure,
            ssl_context=self.ssl_context,
            max_redirects=self.max_redirects,
            headers=self.default_headers,
            max_body_size=self.max_body_size,
        )

    def rest(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> RestCall:
        """A JSON request as a context manager, as in Locust:

        >>> async with self.rest("POST", "/orders", json={"id": 1}) as resp:
        ...     if resp.js is not None and resp.js["status"] != "ok":
        ...         resp.failure(f"order refused: {resp.js['status']}")

        ``Content-Type`` and ``Accept`` are ``application/json`` (``headers`` adds to them); the other
        keywords are ``client.request``'s. ``resp.js`` is the parsed body, or None (and the request a
        failure) when the body is not JSON; ``resp.failure()``/``resp.success()`` decide as with
        ``catch_response``; an exception raised in the block fails the request with its message (and
        does not propagate), as Locust's ``rest`` does.
        """
        return rest_call(self.client, method, url, headers, kwargs)

    async def teardown(self) -> None:
        await self.client.close()

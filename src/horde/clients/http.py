"""``HttpUser``: a user with an aiohttp session of its own (cookies, redirects, TLS, proxies).

Use it when you need a complete HTTP client; ``FastHttpUser`` trades some of that for requests per core.
Both report requests identically (see :mod:`horde.clients.response`).
"""

from __future__ import annotations

import asyncio
import base64
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp

from horde.clients.response import HttpVerbs, RequestCall, Response, report_request
from horde.clock import Clock
from horde.exceptions import StopTest
from horde.user.users import User

if TYPE_CHECKING:
    from horde.env import Environment

_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)
# shared by every session: ClientTimeout is immutable, and one threaded resolver per event loop does
# what each connector's own would (it holds nothing but the loop)
_DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=60)
_resolvers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ThreadedResolver] = (
    weakref.WeakKeyDictionary()
)
_reporters: weakref.WeakKeyDictionary[Any, Callable[..., None]] = weakref.WeakKeyDictionary()


def _shared_resolver() -> aiohttp.ThreadedResolver | None:
    """The threaded resolver of the running loop (None outside a loop: the connector makes its own)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    resolver = _resolvers.get(loop)
    if resolver is None:
        resolver = _resolvers[loop] = aiohttp.ThreadedResolver(loop=loop)
    return resolver


def _reporter(hook: Any) -> Callable[..., None]:
    """``report_request`` bound to a request event hook, one per hook rather than one per user."""
    try:
        return _reporters[hook]
    except (KeyError, TypeError):
        pass
    reporter = partial(report_request, hook)
    try:
        _reporters[hook] = reporter
    except TypeError:  # a hook that cannot be weakly referenced: keep it unshared
        pass
    return reporter


def basic_auth_header(auth: Any) -> str:
    """``Authorization`` header value for ``auth=(user, password)`` (or an aiohttp.BasicAuth)."""
    if isinstance(auth, tuple):
        login, password = auth
    else:
        login, password = auth.login, auth.password
    token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def missing_host_message(cls: type) -> str:
    return (
        f'{cls.__name__} has no host: set `host = "http://..."` on the class '
        "or pass --host on the command line"
    )


class HttpSession(HttpVerbs):
    """The ``client`` of an :class:`HttpUser`: requests-like calls that record every request.

    >>> resp = await self.client.get("/items", name="/items")
    >>> async with self.client.post("/cart", {"id": 1}, catch_response=True) as resp:
    ...     if "error" in resp.text:
    ...         resp.failure("cart rejected the item")
    """

    def __init__(self, base_url: str, user: User, **session_kwargs: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        env = user.environment
        self._report = _reporter(env.events.request)
        self._user_context = type(user).context is not User.context  # only ask users that override it
        # the system clock's wall time is time.time itself: skip the method call per request
        self._wall = time.time if type(env.clock) is Clock else env.clock.time
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, resolver=_shared_resolver())
        session_kwargs.setdefault("cookie_jar", aiohttp.CookieJar(unsafe=True))  # accept IP-address hosts
        session_kwargs.setdefault("timeout", _DEFAULT_TIMEOUT)
        self._session = aiohttp.ClientSession(connector=connector, **session_kwargs)

    @property
    def cookie_jar(self) -> aiohttp.abc.AbstractCookieJar:
        return self._session.cookie_jar

    @property
    def headers(self) -> Any:
        """Headers sent with every request of this session (mutable)."""
        return self._session.headers

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        catch_response: bool = False,
        context: dict[str, Any] | None = None,
        auth: Any = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
        verify: bool | None = None,
        **kwargs: Any,
    ) -> RequestCall:
        """Make a request; ``name`` groups URLs in the stats (``/item?id=[id]``)."""
        full_url = url if "://" in url else self.base_url + url
        if auth is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": basic_auth_header(auth)}
        if timeout is not None:
            kwargs["timeout"] = (
                timeout
                if isinstance(timeout, aiohttp.ClientTimeout)
                else aiohttp.ClientTimeout(total=timeout)
            )
        if verify is False:
            kwargs["ssl"] = False
        label = name or url
        method = method.upper()

        session = self._session
        wall = self._wall

        async def perform(report: bool = False) -> Any:
            start_time = wall()
            t0 = time.perf_counter()
            try:
                r = await session.request(method, full_url, **kwargs)
                try:
                    body = await r.read()
                finally:
                    r.release()
                elapsed = time.perf_counter() - t0
                # the charset is worked out from the headers only if the task reads .text
                resp = Response(
                    method=method,
                    url=str(r.url),
                    status_code=r.status,
                    reason=r.reason or "",
                    headers=r.headers,
                    content=body,
                    elapsed=elapsed,
                )
            except _TRANSPORT_ERRORS as e:
                elapsed = time.perf_counter() - t0
                if isinstance(e, asyncio.TimeoutError) and not str(e):
                    e = TimeoutError(f"no complete response within the timeout ({elapsed:.1f}s)")
                resp = Response(method=method, url=full_url, elapsed=elapsed, error=e)
            ctx = self.user.context() if self._user_context else {}
            if context:
                ctx = {**ctx, **context}
            if report:
                self._report(resp, label, start_time, elapsed * 1000.0, resp.error, ctx)
                return resp
            return resp, label, start_time, elapsed * 1000.0, ctx

        return RequestCall(perform, self._report, catch_response, partial(perform, True))

    async def close(self) -> None:
        await self._session.close()


class HttpUser(User):
    """A user whose ``self.client`` is an aiohttp-backed :class:`HttpSession` with its own cookie jar."""

    abstract = True
    client: HttpSession

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.host:
            raise StopTest(missing_host_message(type(self)))
        self.client = HttpSession(self.host, self)

    async def teardown(self) -> None:
        await self.client.close()

"""``HttpUser``: a user with an aiohttp session of its own (cookies, redirects, TLS, proxies).

Use it when you need a complete HTTP client; ``FastHttpUser`` trades some of that for requests per core.
Both report requests identically (see :mod:`horde.clients.response`).
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import time
import weakref
from asyncio import current_task
from collections.abc import Awaitable, Callable, Generator, Mapping
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from horde.clients._multipart import encode_multipart
from horde.clients.response import (
    DEFAULT_MAX_BODY,
    BodyStream,
    HttpVerbs,
    RequestCall,
    RequestInfo,
    Response,
    RestCall,
    body_too_large,
    not_awaited,
    report_aborted,
    report_request,
    rest_call,
    short_error,
)
from horde.clock import Clock
from horde.exceptions import StopTest
from horde.user.users import User

if TYPE_CHECKING:
    from horde.env import Environment

_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)
# shared by every session: ClientTimeout is immutable, and one threaded resolver per event loop does
# what each connector's own would (it holds nothing but the loop)
DEFAULT_CONNECTION_TIMEOUT = 60.0
DEFAULT_NETWORK_TIMEOUT = 60.0
_timeouts: dict[tuple[float, float | None], aiohttp.ClientTimeout] = {}


def _timeout(connect: float, total: float | None) -> aiohttp.ClientTimeout:
    """One immutable ClientTimeout per setting, shared by every session that uses it."""
    key = (connect, total)
    timeout = _timeouts.get(key)
    if timeout is None:
        timeout = _timeouts[key] = aiohttp.ClientTimeout(total=total, sock_connect=connect)
    return timeout


_resolvers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ThreadedResolver] = (
    weakref.WeakKeyDictionary()
)
_reporters: weakref.WeakKeyDictionary[Any, Callable[..., None]] = weakref.WeakKeyDictionary()


@lru_cache(maxsize=1024)
def _parsed_url(url: str) -> tuple[URL, str]:
    """``url`` parsed once, and how it prints, for every request and session that uses it.

    aiohttp would parse the string on every request, and ``str()`` of the response's URL renders it
    again: ~0.7 µs a request. A ValueError (an invalid URL) is not cached: aiohttp reports it."""
    parsed = URL(url)
    return parsed, str(parsed)


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


class _Deadlines:
    """``network_timeout`` for a session at the cost of a dict entry per request.

    aiohttp's total timeout, or ``asyncio.timeout``, arms and cancels a timer per request, which was
    measured to cost HttpUser 10-40 % of its requests per core under uvloop. Here each request notes
    its task and deadline, and one timer per session, armed only when none is pending for an earlier
    moment, cancels the tasks whose deadline has passed (``expired`` tells their request that the
    cancellation was a timeout) and re-arms itself for the next deadline.
    """

    __slots__ = ("_inflight", "_timer", "_timer_at", "expired", "loop")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inflight: dict[asyncio.Task[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _INF
        self.expired: set[asyncio.Task[Any]] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """Remember the session's loop (a session lives on one loop)."""
        self.loop = loop
        return loop

    def add(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], deadline: float) -> None:
        self._inflight[task] = deadline
        if deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_at(deadline, self._fire, loop)
            self._timer_at = deadline

    def done(self, task: asyncio.Task[Any]) -> None:
        self._inflight.pop(task, None)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_at = _INF
        now = loop.time()
        upcoming = _INF
        for task, deadline in list(self._inflight.items()):
            if deadline <= now:
                del self._inflight[task]
                self.expired.add(task)
                task.cancel()
            elif deadline < upcoming:
                upcoming = deadline
        if upcoming < _INF:
            self._timer = loop.call_at(upcoming, self._fire, loop)
            self._timer_at = upcoming

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = _INF


_INF = float("inf")
_perf_counter = time.perf_counter


class _AiohttpStream(BodyStream):
    """A streamed aiohttp body: chunks as the network delivers them, the connection released at the end."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response: aiohttp.ClientResponse | None = response

    async def read_chunk(self) -> bytes:
        r = self._response
        if r is None:
            return b""
        try:
            chunk = await r.content.readany()
        except TimeoutError:
            self.close()
            raise TimeoutError("the streamed body did not complete within the timeout") from None
        except BaseException:
            self.close()
            raise
        if not chunk:
            r.release()
            self._response = None
        return chunk

    def close(self) -> None:
        r = self._response
        if r is not None:
            self._response = None
            if r.content.at_eof():
                r.release()
            else:
                r.close()  # the rest of the body is not wanted: drop the connection

    def __del__(self) -> None:
        if self._response is not None:
            self._response.close()


async def _read_bounded(r: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or BodyTooLarge (and the connection closed) once it passes ``limit`` bytes."""
    length = r.content_length
    if length is not None and "Content-Encoding" not in r.headers:
        if length > limit:
            r.close()
            raise body_too_large(limit)
        return await r.read()
    parts: list[bytes] = []
    size = 0
    while chunk := await r.content.readany():
        size += len(chunk)
        if size > limit:
            r.close()
            raise body_too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _sent_body(kwargs: dict[str, Any]) -> bytes | None:
    data, js = kwargs.get("data"), kwargs.get("json")
    if js is not None:
        return jsonlib.dumps(js).encode()
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, Mapping) or isinstance(data, list | tuple):
        return urlencode(data, doseq=True).encode()
    return None


def _history(method: str, history: tuple[aiohttp.ClientResponse, ...]) -> list[Response]:
    return [
        Response(
            method=h.method, url=str(h.url), status_code=h.status, reason=h.reason or "", headers=h.headers
        )
        for h in history
    ]


class HttpSession(HttpVerbs):
    """The ``client`` of an :class:`HttpUser`: requests-like calls that record every request.

    >>> resp = await self.client.get("/items", name="/items")
    >>> async with self.client.post("/cart", {"id": 1}, catch_response=True) as resp:
    ...     if "error" in resp.text:
    ...         resp.failure("cart rejected the item")

    Built with Locust's constructor, ``HttpSession(base_url, request_event, user)``, a library can make a
    second session of its own (``HttpSession(base_url, user)`` works too). ``verify = False`` on the
    session skips TLS verification for all its requests, ``verify=False`` on a call for that one.
    """

    def __init__(
        self,
        base_url: str,
        request_event: Any = None,
        user: User | None = None,
        *args: Any,
        pool_manager: Any = None,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        network_timeout: float | None = DEFAULT_NETWORK_TIMEOUT,
        max_body_size: int = DEFAULT_MAX_BODY,
        **session_kwargs: Any,
    ) -> None:
        if isinstance(request_event, User) and user is None:  # HttpSession(base_url, user)
            request_event, user = None, request_event
        self.base_url = base_url.rstrip("/")
        self.user = user
        env = user.environment if user is not None else None
        if request_event is None:
            if env is None:
                raise TypeError(
                    "HttpSession needs a request event or a user: HttpSession(base_url, request_event, user)"
                )
            request_event = env.events.request
        self.request_event = request_event
        self._report = _reporter(request_event)
        # only ask users that override context()
        self._user_context = user is not None and type(user).context is not User.context
        # the system clock's wall time is time.time itself: skip the method call per request
        self._wall = time.time if env is None or type(env.clock) is Clock else env.clock.time
        self.verify = True
        self.max_body_size = max_body_size
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, resolver=_shared_resolver())
        session_kwargs.setdefault("cookie_jar", aiohttp.CookieJar(unsafe=True))  # accept IP-address hosts
        # network_timeout is applied per request by _Deadlines: aiohttp's own total timeout costs
        # much more per request (measured: ~70 -> ~90 µs of CPU per request)
        self._deadlines = _Deadlines()
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        session_kwargs.setdefault("timeout", _timeout(connection_timeout, None))
        self._session = aiohttp.ClientSession(connector=connector, **session_kwargs)

    @property
    def cookie_jar(self) -> aiohttp.abc.AbstractCookieJar:
        return self._session.cookie_jar

    @property
    def cookies(self) -> aiohttp.abc.AbstractCookieJar:
        """The user's cookie jar (the name requests and Locust use)."""
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
        files: Any = None,
        stream: bool = False,
        max_body: int | None = None,
        **kwargs: Any,
    ) -> RequestCall:
        """Make a request; ``name`` groups URLs in the stats (``/item?id=[id]``).

        ``timeout`` (seconds) caps the whole request, connecting included, up to the last byte of the
        body; ``max_body`` caps the body's size; ``stream=True`` returns at the headers (see
        ``Response.iter_content``); ``files=`` sends a multipart form (requests' format); ``cookies=``
        are sent with this request only.
        """
        full_url = url if "://" in url else self.base_url + url
        if auth is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": basic_auth_header(auth)}
        if timeout is not None:
            kwargs["timeout"] = (
                timeout
                if isinstance(timeout, aiohttp.ClientTimeout)
                else aiohttp.ClientTimeout(total=timeout)
            )
        if verify is False or (verify is None and self.verify is False):
            kwargs["ssl"] = False
        if files is not None:
            body, content_type = encode_multipart(kwargs.pop("data", None), files)
            kwargs["data"] = body
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Type": content_type}
        # cookies= is aiohttp's own: sent with this request, merged with the jar, not stored in it
        cap = None if "timeout" in kwargs else self.network_timeout
        if stream and cap is not None:  # aiohttp's total timeout runs until the streamed body is released
            kwargs["timeout"] = _timeout(self.connection_timeout, cap)
            cap = None
        return _HttpCall(
            self,
            method.upper(),
            full_url,
            name or url,
            kwargs,
            catch_response,
            context,
            stream,
            self.max_body_size if max_body is None else max_body,
            cap,
        )

    def get(self, url: str, **kwargs: Any) -> RequestCall:
        # a URL alone, the common case, skips request()'s option handling
        if kwargs:
            return self.request("GET", url, **kwargs)
        return _HttpCall(
            self,
            "GET",
            url if "://" in url else self.base_url + url,
            url,
            {},
            False,
            None,
            False,
            self.max_body_size,
            self.network_timeout,
        )

    async def close(self) -> None:
        self._deadlines.close()
        await self._session.close()


class _HttpCall(RequestCall):
    """One request of an :class:`HttpSession`, as :class:`RequestCall` describes it (awaitable, or an
    async context manager for ``catch_response``).

    It carries the request's options itself and makes the request in its own coroutine method: a
    closure per request (a function, a partial and a cell per captured name) cost more than the
    request's own Python code, and fed the cyclic garbage collector. It also tells ``resp.request``
    what was sent, on first use.
    """

    __slots__ = (
        "_cap",
        "_context",
        "_info",
        "_kwargs",
        "_label",
        "_limit",
        "_method",
        "_session",
        "_stream",
        "_url",
    )

    def __init__(
        self,
        session: HttpSession,
        method: str,
        url: str,
        label: str,
        kwargs: dict[str, Any],
        catch_response: bool,
        context: dict[str, Any] | None,
        stream: bool,
        limit: int,
        cap: float | None,
    ) -> None:
        # RequestCall's own slots, as its __init__ would set them for this subclass
        self._report = session._report
        self._catch = catch_response
        self._result = None
        self._pending = True  # until awaited or entered; see __del__
        self._session = session
        self._method = method
        self._url = url
        self._label = label
        self._kwargs = kwargs
        self._context = context
        self._stream = stream
        self._limit = limit
        self._cap = cap

    def __del__(self) -> None:
        if self._pending is not None:
            self._pending = None
            not_awaited(self._session.user, self._method, self._url)

    def __await__(self) -> Generator[Any, None, Response]:
        self._pending = None
        if self._catch:
            return self._run().__await__()
        return self._send(True).__await__()  # reports the request itself: one coroutine per request

    def _performed(self) -> Awaitable[tuple[Response, str, float, float, dict[str, Any]]]:
        return self._send(False)

    def request_info(self) -> RequestInfo:
        """What was sent (``resp.request``), built only when a task asks."""
        info = self._info
        return RequestInfo(info.method, str(info.url), info.headers, _sent_body(self._kwargs))

    async def _send(self, report: bool) -> Any:
        """Make the request; with ``report``, report it and return the response, else return
        ``(response, name, start_time, ms, context)`` for the caller to report."""
        s = self._session
        method = self._method
        cap = self._cap
        start_time = s._wall()
        t0 = _perf_counter()
        task = None
        deadlines = s._deadlines
        if cap is not None:
            # the loop is looked up once per session: on Python 3.11 get_running_loop() costs a
            # getpid() system call, per request that is measurable
            loop = deadlines.loop or deadlines.bind(asyncio.get_running_loop())
            task = current_task(loop)
            if task is not None:
                deadlines.add(loop, task, loop.time() + cap)
        try:
            target: URL | str
            try:
                target, shown = _parsed_url(self._url)
            except ValueError:
                target = shown = self._url  # not a valid URL: aiohttp says what is wrong with it
            r = await s._session.request(method, target, **self._kwargs)
            if self._stream:
                body = b""
            else:
                limit = self._limit
                try:
                    length = r.content_length
                    if length is not None and length <= limit and "Content-Encoding" not in r.headers:
                        body = await r.read()  # the common case, without a frame more
                    else:
                        body = await _read_bounded(r, limit)
                finally:
                    r.release()
            elapsed = _perf_counter() - t0
            # the charset is worked out from the headers only if the task reads .text
            resp = Response(
                method=method,
                url=shown if r.url is target else str(r.url),  # redirected, or params=
                status_code=r.status,
                reason=r.reason or "",
                headers=r.headers,
                content=body,
                elapsed=elapsed,
            )
            if self._stream:
                resp.stream = _AiohttpStream(r)
            if r.history:
                resp.history = _history(method, r.history)
            self._info = r.request_info
            resp.request = self
        except _TRANSPORT_ERRORS as e:
            elapsed = _perf_counter() - t0
            if isinstance(e, asyncio.TimeoutError) and not str(e):
                e = TimeoutError(f"no complete response within the timeout ({elapsed:.1f}s)")
            resp = Response(method=method, url=self._url, elapsed=elapsed, error=short_error(e))
        except asyncio.CancelledError:
            if task is None or task not in deadlines.expired:
                report_aborted(s.user, method, self._label)
                raise
            deadlines.expired.discard(task)
            task.uncancel()  # the cancellation was our timeout's: it ends here
            elapsed = _perf_counter() - t0
            resp = Response(
                method=method,
                url=self._url,
                elapsed=elapsed,
                error=TimeoutError(f"no complete response within {cap:g}s"),
            )
        finally:
            if task is not None:
                deadlines.done(task)
        ctx = s.user.context() if s._user_context else {}  # type: ignore[union-attr]
        context = self._context
        if context:
            ctx = {**ctx, **context}
        if report:
            self._report(resp, self._label, start_time, elapsed * 1000.0, resp.error, ctx)
            return resp
        return resp, self._label, start_time, elapsed * 1000.0, ctx


class HttpUser(User):
    """A user whose ``self.client`` is an aiohttp-backed :class:`HttpSession` with its own cookie jar.

    Class attributes: ``connection_timeout`` (seconds to connect, default 60), ``network_timeout``
    (seconds for a whole request, connecting included, to the last byte of the body, default 60;
    None: no limit), ``max_body_size`` (bytes of a response body read into memory, default 64 MiB).
    """

    abstract = True
    connection_timeout: ClassVar[float] = DEFAULT_CONNECTION_TIMEOUT
    network_timeout: ClassVar[float | None] = DEFAULT_NETWORK_TIMEOUT
    max_body_size: ClassVar[int] = DEFAULT_MAX_BODY
    client: HttpSession

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.host:
            raise StopTest(missing_host_message(type(self)))
        self.client = HttpSession(
            self.host,
            environment.events.request,
            self,
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            max_body_size=self.max_body_size,
        )

    def rest(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> RestCall:
        """A JSON request as a context manager, as FastHttpUser's (``async with self.rest(...) as resp``)."""
        return rest_call(self.client, method, url, headers, kwargs)

    async def teardown(self) -> None:
        await self.client.close()

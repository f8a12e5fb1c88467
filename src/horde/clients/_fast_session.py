"""The fast client's session: preparing requests, the per-request path, redirects, retries, reporting.

``horde.clients.fast`` is the public face (``FastHttpUser``, the retry rule, the overview);
this module is the machinery behind ``self.client``.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
import time
import zlib
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from horde._version import __version__
from horde.clients._fast_conn import (
    STREAM,
    BodyTooLarge,
    Connection,
    ProtocolError,
    ServerDisconnected,
    head_pairs,
)
from horde.clients._fast_cookies import CookieJar
from horde.clients._fast_message import (
    DecodedTooLarge,
    HeaderDict,
    Prepared,
    Target,
    basic_auth,
    decode_body,
    encode_body,
    header_values,
    parse_target,
    with_params,
)
from horde.clients._fast_pool import Pool
from horde.clients._fast_response import FastResponse
from horde.clients._multipart import encode_multipart
from horde.clients.response import (
    _LISTENER_CONTROL,
    DEFAULT_MAX_BODY,
    WITH_MESSAGE,
    BodyStream,
    HTTPError,
    HttpVerbs,
    RequestCall,
    Response,
    body_too_large,
    not_awaited,
    report_aborted,
    report_request,
)
from horde.clock import Clock
from horde.event import RequestRecorder
from horde.user.users import User

_REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
_FAILURES = (OSError, ValueError, UnicodeError)  # OSError covers ConnectionError, TimeoutError, ssl errors
_CACHE_LIMIT = 1024
_new_call = _new_response = object.__new__


class TooManyRedirects(ValueError):
    """A redirect chain longer than ``max_redirects``."""


@dataclass(slots=True)
class _Options:
    """The per-request keyword arguments of a call that has any (such calls skip the prepared cache)."""

    params: Any = None
    headers: Mapping[str, Any] | None = None
    data: Any = None
    json: Any = None
    auth: tuple[str, str] | None = None
    timeout: float | None = None
    allow_redirects: bool = True
    context: dict[str, Any] | None = None
    cookies: Mapping[str, str] | None = None
    verify: bool | None = None
    files: Any = None
    stream: bool = False
    max_body: int | None = None


_ssl_contexts: dict[bool, _ssl.SSLContext] = {}


def _default_ssl_context(verify: bool) -> _ssl.SSLContext:
    """One context per verification mode per process: loading the CA store takes milliseconds."""
    ctx = _ssl_contexts.get(verify)
    if ctx is None:
        ctx = _ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = _ssl.CERT_NONE
        _ssl_contexts[verify] = ctx
    return ctx


class _Awaitable:
    """Makes a request generator awaitable for :class:`RequestCall` (the ``catch_response`` path)."""

    __slots__ = ("_gen",)

    def __init__(self, gen: Generator[Any, None, Any]) -> None:
        self._gen = gen

    def __await__(self) -> Generator[Any, None, Any]:
        return self._gen


class FastRequestCall:
    """What ``client.get(...)`` returns: awaitable, or an async context manager for ``catch_response``.

    Plain ``await`` takes a lean path that behaves exactly like
    :class:`~horde.clients.response.RequestCall` (perform, report once, return the response);
    ``async with`` delegates to ``RequestCall`` itself, so ``catch_response`` semantics are shared
    code, not a copy.
    """

    __slots__ = ("_catch", "_inner", "_method", "_name", "_opts", "_session", "_url")

    def __init__(
        self,
        session: FastHttpSession,
        method: str,
        url: str,
        name: str | None,
        catch_response: bool,
        opts: _Options | None,
    ) -> None:
        self._session = session
        self._method = method
        self._url: str | None = url  # None once awaited or entered
        self._name = name
        self._catch = catch_response
        self._opts = opts
        self._inner: RequestCall | None = None

    def __await__(self) -> Generator[Any, None, Response]:
        # the request generator itself, reporting as it ends: no wrapper frame per request
        url = self._url
        self._url = None  # awaited: __del__ has nothing to report
        return self._session._request(self._method, url, self._name, self._opts, True)  # type: ignore[arg-type]

    def __del__(self) -> None:
        if self._url is not None:
            url, self._url = self._url, None
            not_awaited(self._session.user, self._method, url)

    def __enter__(self) -> Any:
        self._url = None
        raise TypeError(WITH_MESSAGE)

    def __exit__(self, *args: Any) -> None:
        return None

    async def __aenter__(self) -> Response:
        s = self._session
        url = self._url
        self._url = None
        request = partial(s._request, self._method, url, self._name, self._opts, False)  # type: ignore[arg-type]
        report = partial(report_request, s._request_event)
        self._inner = RequestCall(lambda: _Awaitable(request()), report, self._catch)
        return await self._inner.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        assert self._inner is not None
        return await self._inner.__aexit__(exc_type, exc, tb)


class FastHttpSession(HttpVerbs):
    """The ``client`` of a :class:`FastHttpUser`.

    >>> resp = await self.client.get("/items", params={"page": 2}, name="/items")
    >>> async with self.client.post("/cart", {"id": 1}, catch_response=True) as resp:
    ...     if resp.json()["status"] != "ok":
    ...         resp.failure("cart rejected the item")

    ``headers`` (case-insensitive, mutable) are sent with every request; ``cookies`` is the user's jar.
    """

    def __init__(
        self,
        base_url: str,
        user: User,
        *,
        concurrency: int = 10,
        connection_timeout: float = 60.0,
        network_timeout: float = 60.0,
        insecure: bool = False,
        ssl_context: _ssl.SSLContext | None = None,
        max_redirects: int = 30,
        headers: Mapping[str, str] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.user = user
        self.max_body_size = max_body_size
        env = user.environment
        self._request_event = env.events.request
        self._request_handlers = self._request_event.handlers  # the live list: read per request
        # the system clock's time() is time.time; calling it directly spares a method frame. On it, a
        # request's start time is only read when a listener other than a RequestRecorder needs it, and
        # is then derived from the request's perf_counter start (None here: no clock call per request)
        self._system_clock = type(env.clock) is Clock
        self._clock_time = time.time if self._system_clock else env.clock.time
        # a user that does not override context() gets a fresh empty dict without the call
        self._context = None if type(user).context is User.context else user.context
        self.connection_timeout = connection_timeout
        self.network_timeout = network_timeout
        self.max_redirects = max_redirects
        self._ssl_context = ssl_context
        self._insecure = insecure
        self._cache: dict[tuple[str, str], Prepared] = {}
        self._base_headers: dict[str, tuple[str, str]] | None = None
        self._cookies = CookieJar()
        self._cookie_store = self._cookies._cookies  # a plain dict: its truth test is the per-request check
        self.headers = HeaderDict(
            {"User-Agent": f"horde/{__version__}", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"},
            on_change=self._headers_changed,
        )
        self._base_url = self._set_base_url(base_url)
        if headers:
            self.headers.update(headers)
        self._pool = Pool(concurrency)
        self._loop: asyncio.AbstractEventLoop | None = None
        # prepared requests depend on the base URL and the session headers only: sessions that start
        # alike share one cache (a session that changes its headers or base URL gets its own)
        self._cache = _shared_cache(self._base_url, self.headers.lowered())

    @property
    def base_url(self) -> str:
        """Where relative URLs point; may be changed between requests (the request cache follows)."""
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self._base_url = self._set_base_url(value)
        self._cache = {}

    @property
    def verify(self) -> bool:
        """False skips TLS verification for every request of this session (``insecure`` on the class)."""
        return not self._insecure

    @verify.setter
    def verify(self, value: bool) -> None:
        self._insecure = not value

    @property
    def cookies(self) -> CookieJar:
        """This user's cookie jar (accepts cookies from IP-address hosts)."""
        return self._cookies

    @property
    def cookie_jar(self) -> CookieJar:
        """Alias of ``cookies``, the name HttpSession uses."""
        return self._cookies

    # --- calling forms -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        catch_response: bool = False,
        context: dict[str, Any] | None = None,
        params: Any = None,
        headers: Mapping[str, Any] | None = None,
        data: Any = None,
        json: Any = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = True,
        cookies: Mapping[str, str] | None = None,
        verify: bool | None = None,
        files: Any = None,
        stream: bool = False,
        max_body: int | None = None,
    ) -> FastRequestCall:
        """Make a request; ``name`` groups URLs in the stats (``/item?id=[id]``).

        ``timeout`` bounds connecting and, separately, each exchange up to the last byte of the
        response (of a streamed body too); the class's ``connection_timeout`` / ``network_timeout``
        apply otherwise. ``cookies=`` are sent with this request only (over the jar's of the same
        name); ``verify=False`` skips TLS verification; ``files=`` sends a multipart form (requests'
        format); ``max_body`` caps the body's size; ``stream=True`` returns at the headers (see
        ``Response.iter_content``).
        """
        opts = None
        if (
            params is not None
            or headers is not None
            or data is not None
            or json is not None
            or auth is not None
            or timeout is not None
            or not allow_redirects
            or context
            or cookies
            or verify is not None
            or files is not None
            or stream
            or max_body is not None
        ):
            opts = _Options(
                params,
                headers,
                data,
                json,
                auth,
                timeout,
                allow_redirects,
                context,
                cookies or None,
                verify,
                files,
                stream,
                max_body,
            )
        return FastRequestCall(self, method.upper(), url, name, catch_response, opts)

    # get skips request()'s argument handling when called with a URL alone, the common case
    def get(self, url: str, **kwargs: Any) -> FastRequestCall:
        if not kwargs:
            call = _new_call(FastRequestCall)  # __init__ written out: a frame less per request
            call._session = self
            call._method = "GET"
            call._url = url
            call._name = None
            call._catch = False
            call._opts = None
            call._inner = None
            return call
        return self.request("GET", url, **kwargs)

    async def close(self) -> None:
        """Close every connection (``FastHttpUser.teardown`` calls this)."""
        self._pool.close()

    # --- performing and reporting ------------------------------------------------------------------

    def _request(
        self, method: str, url: str, name: str | None, opts: _Options | None, report: bool
    ) -> Generator[Any, None, Any]:
        """Make the request. With ``report`` it fires the event and returns the response (plain
        ``await``); without, it returns what ``RequestCall`` reports later:
        ``(response, name, start_time, response_time_ms, context)``.

        It is a plain generator so that ``FastRequestCall.__await__`` can return it as is (``__await__``
        may return a generator, not a coroutine), and the first exchange is written out here rather
        than in helper coroutines: on the common path (a prepared request, an idle connection, no
        redirect) each avoided frame is a measurable share of the client's cost per request.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        start_time = None if self._system_clock else self._clock_time()
        t0 = perf_counter()
        resp: FastResponse
        try:
            if opts is None:
                prep = self._cache.get((method, url))
                if prep is None:
                    prep = self._prepare_cached(method, url)
                timeout = self.network_timeout
                follow = True
                head_only = prep.head_only
                limit = None
            else:
                prep = self._prepare(method, url, opts)
                timeout = opts.timeout if opts.timeout is not None else self.network_timeout
                follow = opts.allow_redirects
                head_only = STREAM if opts.stream and not prep.head_only else prep.head_only
                limit = opts.max_body
            pool = self._pool
            idle = pool.idle.get(prep.origin)
            conn = idle.pop() if idle else None
            if conn is None or conn.closed:
                conn = yield from self._connection(loop, prep, timeout, conn).__await__()
            if limit is not None:
                conn.max_body = limit  # until the response is complete (_limit_done puts it back)
            data = prep.data if not self._cookie_store else self._with_cookies(prep)
            try:
                status = yield from conn.send(data, timeout, head_only)
            except ServerDisconnected as e:
                status, conn = yield from self._retry(
                    loop, prep, timeout, conn, e, head_only, limit
                ).__await__()
            except BaseException:  # failed, timed out, or cancelled: the stream state is unknown
                pool.discard(conn, abort=True)
                raise
            self.user._loop_turned = True  # the exchange awaited the network: see TaskSet.run
            if limit is not None:
                conn.max_body = self.max_body_size
            if follow and status in _REDIRECT_STATUSES:
                if head_only is STREAM:
                    yield from _drain(conn).__await__()
                resp = yield from self._follow(
                    loop, prep, timeout, status, conn, method, t0, limit
                ).__await__()
            elif head_only is STREAM:
                resp = self._streamed(conn, prep, method, status, t0)
            else:
                raw = conn.raw_head
                if conn.has_cookies:
                    self._store_cookies(raw, prep)
                content = conn.content
                encoding = conn.content_encoding
                error = None
                if encoding is not None:
                    content, error = _decoded(
                        content, encoding, self.max_body_size if limit is None else limit
                    )
                conn.raw_head = conn.content = b""  # the response has them: an idle connection holds nothing
                if idle is not None and conn.keep_alive and not conn.closed and not pool._closed:
                    idle.append(conn)  # Pool.release, written out for the common case
                    if pool._waiters:
                        pool._wake_one()
                else:
                    pool.release(conn)
                # FastResponse(...), written out: a frame less per request (keep in step with __init__)
                resp = _new_response(FastResponse)
                resp.request_method = method
                resp.url = prep.url
                resp.status_code = status
                resp._raw_head = raw
                resp.content = content
                resp._elapsed_s = conn.done_at - t0
                resp.encoding = None
                resp._text = None
                resp._request = prep
                if error is None and status >= 400:
                    error = HTTPError(f"{status} {resp.reason}".rstrip())
                resp.error = error
        except _FAILURES as e:
            full_url = url if "://" in url else self._join(url)
            if isinstance(e, BodyTooLarge):
                e = body_too_large(
                    opts.max_body if opts is not None and opts.max_body else self.max_body_size
                )
            resp = FastResponse(method, full_url, 0, b"", b"", perf_counter() - t0, e)
        except asyncio.CancelledError:  # the user was stopped mid-request: aborted, not a failure
            report_aborted(self.user, method, name or url)
            raise
        if report:
            handlers = self._request_handlers
            if len(handlers) == 1 and type(recorder := handlers[0]) is RequestRecorder:
                # the only listener takes the stats' five figures: call it without the keywords (and
                # without the context dict, which it does not read), handling what it raises as
                # report_request does
                try:
                    recorder.record(
                        method, name or url, resp._elapsed_s * 1000.0, len(resp.content), resp.error
                    )
                except _LISTENER_CONTROL:
                    raise
                except Exception:
                    self._request_event.listener_failed(recorder)
                return resp
            report_request(
                self._request_event,
                resp,
                name or url,
                _started(start_time, t0),
                resp._elapsed_s * 1000.0,
                resp.error,
                self._request_context(opts),
            )
            return resp
        return (
            resp,
            name or url,
            _started(start_time, t0),
            resp._elapsed_s * 1000.0,
            self._request_context(opts),
        )

    def _request_context(self, opts: _Options | None) -> dict[str, Any]:
        """The ``context`` of the request event: the user's ``context()``, then the call's ``context=``."""
        ctx = {} if self._context is None else self._context()
        if opts is not None and opts.context:
            ctx = {**ctx, **opts.context}
        return ctx

    async def _connection(
        self, loop: asyncio.AbstractEventLoop, prep: Prepared, timeout: float, stale: Connection | None
    ) -> Connection:
        """The slow path of picking a connection: skip closed idle ones, open or wait for one."""
        pool = self._pool
        if stale is not None:
            pool.discard(stale)
        target = prep.target
        conn = await pool.acquire(
            loop,
            prep.origin,
            target.host,
            target.port,
            self._ssl_for(target, prep.insecure),
            min(self.connection_timeout, timeout),
        )
        conn.max_body = self.max_body_size
        return conn

    async def _retry(
        self,
        loop: asyncio.AbstractEventLoop,
        prep: Prepared,
        timeout: float,
        conn: Connection,
        error: ServerDisconnected,
        head_only: Any = None,
        limit: int | None = None,
    ) -> tuple[int, Connection]:
        """Apply the retry rule (module docstring) after the server dropped a connection."""
        may_retry = conn.reused and not conn.received and prep.idempotent
        self._pool.discard(conn, abort=True)
        if not may_retry:
            raise error
        conn = await self._connection(loop, prep, timeout, None)
        if limit is not None:
            conn.max_body = limit
        data = prep.data if not self._cookie_store else self._with_cookies(prep)
        try:
            return await conn.send(data, timeout, prep.head_only if head_only is None else head_only), conn
        except BaseException:
            self._pool.discard(conn, abort=True)
            raise

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, prep: Prepared, timeout: float, limit: int | None = None
    ) -> tuple[int, Connection]:
        """One request/response on a pooled connection (the redirect path; the first hop is inlined)."""
        pool = self._pool
        conn = pool.take_idle(prep.origin)
        if conn is None:
            conn = await self._connection(loop, prep, timeout, None)
        if limit is not None:
            conn.max_body = limit
        data = prep.data if not self._cookie_store else self._with_cookies(prep)
        try:
            status = await conn.send(data, timeout, prep.head_only)
        except ServerDisconnected as e:
            status, conn = await self._retry(loop, prep, timeout, conn, e, None, limit)
        except BaseException:
            pool.discard(conn, abort=True)
            raise
        if limit is not None:
            conn.max_body = self.max_body_size
        return status, conn

    def _streamed(
        self, conn: Connection, prep: Prepared, method: str, status: int, t0: float
    ) -> FastResponse:
        """A stream=True response at its headers: the body stays on the connection for iter_content."""
        resp = FastResponse(method, prep.url, status, conn.raw_head, b"", conn.done_at - t0, None, prep)
        if conn.has_cookies:
            self._store_cookies(conn.raw_head, prep)
        resp.stream = _FastStream(conn, self._pool, conn.content_encoding)
        return resp

    async def _follow(
        self,
        loop: asyncio.AbstractEventLoop,
        prep: Prepared,
        timeout: float,
        status: int,
        conn: Connection,
        method: str,
        t0: float,
        limit: int | None = None,
    ) -> FastResponse:
        """Follow redirects from a first response; the result has the final URL and the first method."""
        hops = 0
        history: list[Response] = []
        while True:
            raw = conn.raw_head
            body = conn.content
            encoding = conn.content_encoding
            if conn.has_cookies:
                self._store_cookies(raw, prep)
            conn.raw_head = conn.content = b""
            self._pool.release(conn)
            locations = header_values(head_pairs(raw), b"location") if status in _REDIRECT_STATUSES else None
            if not locations:
                break
            history.append(FastResponse(prep.method, prep.url, status, raw, body, 0.0, None, prep))
            location = locations[0]
            hops += 1
            if hops > self.max_redirects:
                raise TooManyRedirects(f"more than {self.max_redirects} redirects, the last to {location!r}")
            prep = self._redirected(prep, status, location)
            status, conn = await self._exchange(loop, prep, timeout, limit)
        content = body
        error = None
        if encoding is not None:
            content, error = _decoded(content, encoding, self.max_body_size if limit is None else limit)
        resp = FastResponse(method, prep.url, status, raw, content, conn.done_at - t0, error, prep)
        resp.history = history
        return resp

    def _with_cookies(self, prep: Prepared) -> bytes:
        target = prep.target
        cookie = self._cookies.header_for(target.host, prep.cookie_path, target.secure)
        if cookie and prep.cookie:  # a per-request cookie replaces the jar's of the same name
            own = {part.split("=", 1)[0].strip() for part in prep.cookie.split(";")}
            cookie = "; ".join(p for p in cookie.split("; ") if p.split("=", 1)[0] not in own)
        return prep.with_cookie(cookie) if cookie else prep.data

    # --- preparing requests ------------------------------------------------------------------------

    def _set_base_url(self, base_url: str) -> str:
        parts = urlsplit(base_url)
        if parts.username is not None:
            # credentials in the host URL become a session-wide basic auth header
            self.headers["Authorization"] = basic_auth(unquote(parts.username), unquote(parts.password or ""))
            netloc = parts.netloc.rpartition("@")[2]
            base_url = parts._replace(netloc=netloc).geturl()
        return base_url.rstrip("/")

    def _join(self, url: str) -> str:
        return f"{self._base_url}{url}" if url.startswith("/") else f"{self._base_url}/{url}"

    def _headers_changed(self) -> None:
        self._base_headers = None
        self._cache = {}  # never clear(): the old cache may be shared with other sessions

    def _session_headers(self) -> dict[str, tuple[str, str]]:
        if self._base_headers is None:
            self._base_headers = self.headers.lowered()
        return self._base_headers

    def _prepare_cached(self, method: str, url: str) -> Prepared:
        prep = self._prepare(method, url, None)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # URLs with ids in them: keep the cache from growing without bound
        self._cache[(method, url)] = prep
        return prep

    def _prepare(self, method: str, url: str, opts: _Options | None) -> Prepared:
        if "://" not in url:
            url = self._join(url)
        headers = self._session_headers()
        body = None
        cookie = None
        insecure = False
        if opts is not None:
            url = with_params(url, opts.params)
            headers = dict(headers)
            if opts.files is not None:
                body, multipart_type = encode_multipart(opts.data, opts.files)
                content_type: str | None = multipart_type
                headers.pop("content-type", None)
            else:
                body, content_type = encode_body(opts.data, opts.json)
            if opts.cookies:
                cookie = "; ".join(f"{k}={v}" for k, v in dict(opts.cookies).items())
            insecure = opts.verify is False
            if opts.headers:
                for key, value in opts.headers.items():
                    if value is None:
                        headers.pop(key.lower(), None)  # None removes a session header, as in requests
                    else:
                        headers[key.lower()] = (key, str(value))
            if content_type is not None and "content-type" not in headers:
                headers["content-type"] = ("Content-Type", content_type)
            if opts.auth is not None:
                headers["authorization"] = ("Authorization", basic_auth(*opts.auth))
        return Prepared.build(method, parse_target(url), headers, body, cookie, insecure)

    def _redirected(self, prep: Prepared, status: int, location: bytes) -> Prepared:
        """The next hop: 303 (and 301/302 after a POST) become a GET without body, as browsers do."""
        target = parse_target(urljoin(prep.target.url, location.decode("latin-1")))
        method, body, headers = prep.method, prep.body, prep.headers
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k not in ("content-type", "content-length")}
        if target.origin != prep.target.origin:
            # credentials and a forced Host are for the origin they were given for
            headers = {k: v for k, v in headers.items() if k not in ("authorization", "host")}
        return Prepared.build(method, target, headers, body, prep.cookie, prep.insecure)

    def _ssl_for(self, target: Target, insecure: bool = False) -> _ssl.SSLContext | None:
        if not target.secure:
            return None
        if insecure:
            return _default_ssl_context(False)
        if self._ssl_context is not None:
            return self._ssl_context
        return _default_ssl_context(not self._insecure)

    def _store_cookies(self, raw_head: bytes, prep: Prepared) -> None:
        values = [v.decode("latin-1") for v in header_values(head_pairs(raw_head), b"set-cookie")]
        self._cookies.extract(values, prep.target.host, prep.cookie_path)


_SHARED_CACHES: dict[
    tuple[str, tuple[tuple[str, tuple[str, str]], ...]], dict[tuple[str, str], Prepared]
] = {}
_SHARED_CACHES_LIMIT = 256  # distinct (base URL, headers) pairs whose caches are shared


def _shared_cache(base_url: str, headers: dict[str, tuple[str, str]]) -> dict[tuple[str, str], Prepared]:
    """The request cache of every session with this base URL and these session headers.

    A prepared request holds nothing of its user (cookies are added per request), so users of one
    class share it instead of each building and keeping the same bytes.
    """
    key = (base_url, tuple(headers.items()))
    try:
        cache = _SHARED_CACHES.get(key)
    except TypeError:  # an unhashable header value
        return {}
    if cache is None:
        cache = {}
        if len(_SHARED_CACHES) < _SHARED_CACHES_LIMIT:
            _SHARED_CACHES[key] = cache
    return cache


def _started(start_time: float | None, t0: float) -> float:
    """A request's wall-clock start: as read at the start, or (system clock) derived from its
    ``perf_counter`` start ``t0``."""
    if start_time is not None:
        return start_time
    return time.time() - (perf_counter() - t0)


def _decoded(content: bytes, encoding: bytes, limit: int) -> tuple[bytes, BaseException | None]:
    """The decoded body, or the body as received and the error that makes the request fail."""
    try:
        return decode_body(content, encoding, limit), None
    except DecodedTooLarge:
        return b"", body_too_large(limit)
    except zlib.error as e:
        return content, ProtocolError(f"could not decode the {encoding.decode('latin-1')} response body: {e}")


async def _drain(conn: Connection) -> None:
    """Read a streamed redirect's body to its end, so the connection can carry the next hop."""
    parts: list[bytes] = []
    while chunk := await conn.read_stream():
        parts.append(chunk)
    conn.content = b"".join(parts)


class _FastStream(BodyStream):
    """A stream=True body on its connection; the connection goes back to the pool once it is read."""

    __slots__ = ("_conn", "_decoder", "_pool")

    def __init__(self, conn: Connection, pool: Pool, encoding: bytes | None) -> None:
        self._conn: Connection | None = conn
        self._pool = pool
        self._decoder: Any = None
        if encoding in (b"gzip", b"x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == b"deflate":
            self._decoder = zlib.decompressobj()

    async def read_chunk(self) -> bytes:
        conn = self._conn
        if conn is None:
            return b""
        while True:
            try:
                chunk = await conn.read_stream()
            except BaseException:
                self.close()
                raise
            if not chunk:
                self._conn = None
                conn.raw_head = b""
                conn._head_only = False
                self._pool.release(conn)
                if self._decoder is not None:
                    return self._decoder.flush()
                return b""
            if self._decoder is not None:
                try:
                    chunk = self._decoder.decompress(chunk)
                except zlib.error as e:
                    self.close()
                    raise ProtocolError(f"could not decode the response body: {e}") from None
                if not chunk:
                    continue
            return chunk

    def close(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._pool.discard(conn, abort=True)  # unread body: the connection cannot be reused

    def __del__(self) -> None:
        if self._conn is not None:
            self.close()

"""The response and request-accounting contract both HTTP clients share.

``HttpUser`` (aiohttp) and ``FastHttpUser`` (httptools) return the same :class:`Response` and report
through the same :class:`RequestCall`, so a locustfile can switch clients without edits and both
count requests identically: one ``request`` event per request, response time measured to the last
byte of the body, status >= 400 and transport errors counted as failures unless ``catch_response``
lets the task decide.
"""

from __future__ import annotations

import datetime
import inspect
import json as jsonlib
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from multidict import CIMultiDict

from horde.event import EventHook
from horde.exceptions import (
    CatchResponseError,
    HordeError,
    InterruptTaskSet,
    RescheduleTask,
    ResponseError,
    StopTest,
    StopUser,
)

logger = logging.getLogger("horde.clients")

DEFAULT_MAX_BODY = 64 * 1024 * 1024
"""The largest response body either client reads into memory unless told otherwise (64 MiB)."""

_NO_ERROR: Any = object()
# leaving a catch_response block by these is not a verdict on the response (the user is stopping, or
# its task set handed control back): the request keeps its automatic classification
_CONTROL_FLOW = (StopUser, StopTest, InterruptTaskSet, RescheduleTask)
# raised by a ``request`` listener, these take effect in the task that made the request (as in Locust)
_LISTENER_CONTROL = (StopUser, InterruptTaskSet, RescheduleTask)


class BodyTooLarge(ValueError):
    """A response body longer than the request's limit (``max_body=``, the class's ``max_body_size``)."""


def body_too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"response body larger than {_size(limit)}: the connection was closed (raise max_body_size on "
        "the class or pass max_body= for this request, or use stream=True)"
    )


def _size(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


class BodyStream:
    """The body of a ``stream=True`` response, read by ``iter_content``/``read``; each client has one."""

    async def read_chunk(self) -> bytes:  # b"" at the end of the body
        raise NotImplementedError

    def close(self) -> None:
        """Stop reading: the connection is dropped unless the body was read to its end."""


class HTTPError(ResponseError):
    """A response whose status code is 400 or more; the error table shows ``HTTPError('503 Service Unavailable')``."""


class Response:
    """A finished HTTP response whose body has been read.

    ``error`` is the exception that made the request fail (a transport error, a timeout, or an
    :class:`HTTPError` for status >= 400); it is None for a success. A transport failure still yields a
    Response with ``status_code`` 0, so task code never has to catch client exceptions.
    """

    __slots__ = (
        "_cookies",
        "_history",
        "_js",
        "_request",
        "_stream",
        "_text",
        "content",
        "elapsed",
        "encoding",
        "error",
        "headers",
        "reason",
        "request_meta",
        "request_method",
        "status_code",
        "url",
    )
    # set only when used (the properties below default them): declared for the type checker
    _cookies: dict[str, str]
    _history: list[Response]
    _js: Any
    _request: Any
    _stream: BodyStream | None

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status_code: int = 0,
        reason: str = "",
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
        elapsed: float = 0.0,
        error: BaseException | None = None,
        encoding: str | None = None,
    ) -> None:
        self.request_method = method
        self.url = url
        self.status_code = status_code
        self.reason = reason
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.content = content
        self.elapsed = datetime.timedelta(seconds=elapsed)
        self.encoding = encoding
        self.request_meta: dict[str, Any] = {}
        self._text: str | None = None
        if error is None and status_code >= 400:
            error = HTTPError(f"{status_code} {reason}".rstrip())
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    # history, request, js and cookies are read through properties with a default so that neither
    # client has to set them per request when the task never looks (the fast client's hot path)
    @property
    def history(self) -> list[Response]:
        """The redirect responses that led to this one, oldest first (empty without redirects)."""
        try:
            return self._history
        except AttributeError:
            return []

    @history.setter
    def history(self, value: list[Response]) -> None:
        self._history = value

    @property
    def request(self) -> RequestInfo | None:
        """What was sent for this response: ``method``, ``url``, ``headers``, ``body``."""
        try:
            req: Any = self._request
        except AttributeError:
            return None
        if req is None or isinstance(req, RequestInfo):
            return req
        # built on first use: a callable, or an object that can describe itself (the fast client's
        # prepared request)
        req = self._request = req() if callable(req) else req.request_info()
        return req

    @request.setter
    def request(self, value: Any) -> None:
        self._request = value

    @property
    def js(self) -> Any:
        """The parsed JSON body inside a ``rest()`` block (None when the body is not JSON)."""
        try:
            return self._js
        except AttributeError:
            return None

    @js.setter
    def js(self, value: Any) -> None:
        self._js = value

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies this response set (``Set-Cookie``), name to value; the user's jar keeps them."""
        try:
            cached: dict[str, str] = self._cookies
            return cached
        except AttributeError:
            pass
        headers = self.headers
        getall = getattr(headers, "getall", None)
        values = getall("Set-Cookie", []) if getall is not None else [headers.get("Set-Cookie", "")]
        jar: dict[str, str] = {}
        for value in values:
            if not value:
                continue
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(value)
            except CookieError:
                name, _, rest = value.partition("=")
                jar[name.strip()] = rest.split(";", 1)[0].strip()
                continue
            for name, morsel in parsed.items():
                jar[name] = morsel.value
        self._cookies = jar
        return jar

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.content.decode(self.encoding or _charset(self.headers) or "utf-8", "replace")
        return self._text

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.content, **kwargs)

    # --- stream=True ------------------------------------------------------------------------------
    # A streamed response is returned (and recorded) when its headers have arrived; ``content`` stays
    # empty until ``read()``. An error while reading the body raises from iter_content/read.

    @property
    def stream(self) -> BodyStream | None:
        try:
            return self._stream
        except AttributeError:
            return None

    @stream.setter
    def stream(self, value: BodyStream | None) -> None:
        self._stream = value

    async def iter_content(self, chunk_size: int | None = 65536) -> AsyncIterator[bytes]:
        """The body in pieces of at most ``chunk_size`` bytes (``None``: as they arrive), read from
        the network as the loop asks for them when the request was made with ``stream=True``."""
        stream = self.stream
        if stream is None:
            content = self.content
            step = chunk_size or len(content) or 1
            for i in range(0, len(content), step):
                yield content[i : i + step]
            return
        try:
            while True:
                chunk = await stream.read_chunk()
                if not chunk:
                    return
                if chunk_size is None or len(chunk) <= chunk_size:
                    yield chunk
                else:
                    for i in range(0, len(chunk), chunk_size):
                        yield chunk[i : i + chunk_size]
        finally:
            stream.close()

    async def read(self, max_body: int = DEFAULT_MAX_BODY) -> bytes:
        """Read the rest of a streamed body into ``content`` (at most ``max_body`` bytes: beyond that,
        BodyTooLarge), and return it; for a response that was not streamed, just ``content``."""
        stream = self.stream
        if stream is None:
            return self.content
        parts = [self.content] if self.content else []
        size = len(self.content)
        try:
            while chunk := await stream.read_chunk():
                size += len(chunk)
                if size > max_body:
                    raise body_too_large(max_body)
                parts.append(chunk)
        finally:
            stream.close()
            self._stream = None
        self.content = b"".join(parts)
        self._text = None
        return self.content

    def close(self) -> None:
        """Give up the rest of a streamed body (its connection is closed); nothing for other responses."""
        stream = self.stream
        if stream is not None:
            stream.close()
            self._stream = None

    def raise_for_status(self) -> None:
        if self.error is not None:
            raise self.error

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.request_method} {self.url}>"

    def __bool__(self) -> bool:
        return self.ok

    # catch_response helpers; only meaningful inside ``async with ... catch_response=True``
    def success(self) -> None:
        meta = self.request_meta
        if "catch" not in meta:
            raise CatchResponseError("success() is only allowed inside a catch_response=True block")
        meta["catch"] = None

    def failure(self, exc: BaseException | str) -> None:
        meta = self.request_meta
        if "catch" not in meta:
            raise CatchResponseError("failure() is only allowed inside a catch_response=True block")
        meta["catch"] = exc if isinstance(exc, BaseException) else FailureMessage(str(exc))


class FailureMessage(CatchResponseError):
    """``resp.failure("sold out")``: recorded (and shown in the error table) as ``sold out``."""

    def __repr__(self) -> str:
        return str(self)


# listeners written for Locust look at the type's name: it stays CatchResponseError
FailureMessage.__name__ = FailureMessage.__qualname__ = "CatchResponseError"


class RequestInfo:
    """What a response was the answer to (``resp.request``): ``method``, ``url``, ``headers``, ``body``.

    ``headers`` are those the client wrote (case-insensitive). The fast client's do not include the
    ``Cookie`` line it adds from the user's jar; per-request ``cookies=`` are included.
    """

    __slots__ = ("body", "headers", "method", "url")

    def __init__(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body

    @property
    def path_url(self) -> str:
        rest = self.url.split("://", 1)[-1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"

    def __repr__(self) -> str:
        return f"<RequestInfo {self.method} {self.url}>"


def headers_from_head(head: bytes) -> CIMultiDict[str]:
    """The header lines of a request head (the request line is skipped)."""
    headers: CIMultiDict[str] = CIMultiDict()
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.add(name.strip(), value.strip())
    return headers


def short_error(e: BaseException) -> BaseException:
    """A transport error in the short form the error table shows (``ConnectionRefusedError(111,
    'Connection refused')``), without addresses or a wrapping client exception."""
    inner = getattr(e, "os_error", None)  # aiohttp's ClientConnectorError wraps the OSError
    if isinstance(inner, OSError):
        e = inner
    if isinstance(e, ConnectionRefusedError) and e.errno:
        return ConnectionRefusedError(e.errno, os.strerror(e.errno))
    return e


def _charset(headers: Mapping[str, str]) -> str | None:
    ctype = headers.get("Content-Type") or headers.get("content-type") or ""
    for part in ctype.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return None


Reporter = Callable[[Response, str, float, float, BaseException | None, dict[str, Any]], None]
"""``report(response, name, start_time, response_time_ms, exception, context)`` fires one request event."""


def report_request(
    hook: EventHook,
    resp: Response,
    name: str,
    start_time: float,
    response_time: float,
    error: BaseException | None,
    context: dict[str, Any],
) -> None:
    """Fire the ``request`` event for one finished request, as both clients count it.

    The listeners are called with keywords directly: ``EventHook.fire(**kwargs)`` would pack the nine
    arguments into a dict and unpack them again per listener, about 0.5 µs of a request that costs
    ~13 µs with FastHttpUser. A listener that raises or returns an awaitable gets ``fire()``'s handling.
    """
    control: BaseException | None = None
    for listener in hook.handlers:  # read each time: listeners may come and go during a test
        try:
            result = listener(
                request_type=resp.request_method,
                name=name,
                response_time=response_time,
                response_length=len(resp.content),
                response=resp,
                context=context,
                exception=error,
                start_time=start_time,
                url=resp.url,
            )
        except _LISTENER_CONTROL as raised:
            # StopUser/RescheduleTask/InterruptTaskSet: the other listeners still see the request (the
            # stats count it), then the first such exception goes on to the task, as in Locust
            if control is None:
                control = raised
            continue
        except Exception:
            hook.listener_failed(listener)
            continue
        if result is not None and inspect.isawaitable(result):
            hook.schedule_result(listener, result)
    if control is not None:
        raise control


class MissingAwait(HordeError, RuntimeError):
    """A request call that was never awaited: nothing was sent (the usual porting slip from Locust)."""


_reported_sites: set[tuple[str, int, str]] = set()


def not_awaited(user: Any, method: str, url: str) -> None:
    """Report a request call dropped without ``await``: once in the log per place in the locustfile,
    and every time as a user error (``user_error`` event, so the run's exception table counts it).

    Called from ``__del__``, at the moment the call object is dropped, so the caller's frame is the
    task that forgot the ``await``.
    """
    try:
        frame = sys._getframe(2)  # 0: here, 1: __del__, 2: where the call object was dropped
        where = f"{frame.f_code.co_qualname} ({os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno})"
        site = (frame.f_code.co_filename, frame.f_lineno, url)
    except (ValueError, AttributeError):
        where, site = "a task", ("", 0, url)
    error = MissingAwait(
        f"{method} {url} in {where} was never sent: the request call was not awaited "
        f"(missing await?). Write `await self.client.{method.lower()}(...)`"
    )
    if site not in _reported_sites:
        if len(_reported_sites) < 1000:
            _reported_sites.add(site)
        logger.error("%s", error)
    env = getattr(user, "environment", None)
    if env is not None:
        env.events.user_error.fire(user_instance=user, exception=error, tb=None)


WITH_MESSAGE = (
    "a request call is an async context manager: write `async with self.client.get(..., "
    "catch_response=True) as resp:` (with `async def` on the task), not `with`"
)


class RequestCall:
    """What ``client.get(...)`` returns: awaitable for the plain form, an async context manager for
    ``catch_response``.

    ``await client.get(path)`` performs the request, reports it, and returns the Response.
    ``async with client.get(path, catch_response=True) as resp:`` performs the request and reports it
    when the block ends, as a success or a failure according to ``resp.success()`` /
    ``resp.failure(msg)`` (default: the automatic classification). An exception escaping the block
    records the request as a failure carrying that exception, then propagates, so the request is
    still counted exactly once.

    A call dropped without being awaited or entered is reported as a user error ("missing await?");
    a plain ``with`` raises a TypeError saying ``async with``.
    """

    __slots__ = ("_catch", "_pending", "_perform", "_report", "_reporting_perform", "_response", "_result")

    def __init__(
        self,
        perform: Callable[[], Awaitable[tuple[Response, str, float, float, dict[str, Any]]]],
        report: Reporter,
        catch_response: bool,
        reporting_perform: Callable[[], Awaitable[Response]] | None = None,
        pending: tuple[Any, str, str] | None = None,
    ) -> None:
        """``perform`` makes the request and returns ``(response, name, start_time, ms, context)``;
        ``reporting_perform``, if given, does the same but reports the request itself and returns the
        response: the lean path a plain ``await`` takes. ``pending`` (user, method, url) names the
        request if it is never awaited."""
        self._perform = perform
        self._reporting_perform = reporting_perform if not catch_response else None
        self._report = report
        self._catch = catch_response
        self._response: Response | None = None
        self._result: tuple[Response, str, float, float, dict[str, Any]] | None = None
        # what to name if never awaited; a subclass that names it itself keeps True here until then
        self._pending: tuple[Any, str, str] | bool | None = pending

    def __del__(self) -> None:
        pending = self._pending
        if isinstance(pending, tuple):
            self._pending = None
            not_awaited(*pending)

    def __enter__(self) -> Any:
        self._pending = None
        raise TypeError(WITH_MESSAGE)

    def __exit__(self, *args: Any) -> None:
        return None

    def __await__(self) -> Generator[Any, None, Response]:
        self._pending = None
        if self._reporting_perform is not None:
            return self._reporting_perform().__await__()  # one coroutine per request, no wrapper
        return self._run().__await__()

    def _performed(self) -> Awaitable[tuple[Response, str, float, float, dict[str, Any]]]:
        """The request, made but not yet reported (a client's subclass may make it without a callable)."""
        return self._perform()

    async def _run(self) -> Response:
        resp, name, start, rt, ctx = await self._performed()
        self._report(resp, name, start, rt, resp.error, ctx)
        return resp

    async def __aenter__(self) -> Response:
        self._pending = None
        if not self._catch:
            self._response = await self._run()
            return self._response
        self._result = await self._performed()
        resp = self._result[0]
        resp.request_meta["catch"] = _NO_ERROR
        return resp

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self._result is None:
            return False
        resp, name, start, rt, ctx = self._result
        self._result = None
        verdict = resp.request_meta.pop("catch", _NO_ERROR)
        if verdict is _NO_ERROR and isinstance(exc, Exception) and not isinstance(exc, _CONTROL_FLOW):
            verdict = exc  # the task failed while judging the response: count the request as failed
        error = resp.error if verdict is _NO_ERROR else verdict
        self._report(resp, name, start, rt, error, ctx)
        # A ResponseError raised in the block only marks the request failed; anything else propagates.
        return isinstance(exc, ResponseError)


def report_aborted(user: Any, method: str, name: str) -> None:
    """A request was in flight when its task was cancelled (the user stopped, the stop_timeout
    deadline, a ``wait_for`` around the call): counted as *aborted*, neither a request of the target
    nor a failure. Recorded with ``environment.stats.log_aborted(method, name)`` where the stats have it.
    """
    env = getattr(user, "environment", None)
    log = getattr(getattr(env, "stats", None), "log_aborted", None)
    if log is not None:
        try:
            log(method, name)
        except Exception:
            logger.exception("could not record the aborted request %s %s", method, name)


class _Renamed:
    """``with client.rename_request(name):`` (or ``async with``): every request inside is recorded
    under ``name``. It replaces the session's calling methods on the instance for the block, so a
    session outside such a block pays nothing for the feature."""

    __slots__ = ("_name", "_saved", "_session")

    def __init__(self, session: Any, name: str) -> None:
        self._session = session
        self._name = name
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> None:
        session = self._session
        own = vars(session)
        self._saved = {k: own[k] for k in ("request", "get") if k in own}
        request = type(session).request.__get__(session)  # the innermost rename wins
        name = self._name

        def renamed(method: str, url: str, **kwargs: Any) -> Any:
            kwargs["name"] = name
            return request(method, url, **kwargs)

        session.request = renamed
        session.get = lambda url, **kwargs: renamed("GET", url, **kwargs)

    def __exit__(self, *exc: Any) -> None:
        own = vars(self._session)
        own.pop("request", None)
        own.pop("get", None)
        own.update(self._saved)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__()


_REST_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class RestCall:
    """What ``user.rest(method, url, ...)`` returns (Locust's ``RestResponseContextManager``): used as
    ``async with self.rest("POST", "/x", json={...}) as resp:``.

    The request is a ``catch_response`` request with JSON headers; ``resp.js`` is the parsed body (None
    when it is empty, or not JSON, which also fails the request). An exception raised in the block
    fails the request with its message and is not raised further, as in Locust; ``StopUser``,
    ``RescheduleTask``, ``InterruptTaskSet`` and ``StopTest`` pass through.
    """

    __slots__ = ("_call", "_response")

    def __init__(self, call: Any) -> None:
        self._call = call
        self._response: Response | None = None

    def __enter__(self) -> Any:
        try:
            self._call.__enter__()  # marks the inner call as handled: one report, this one
        except TypeError:
            pass
        raise TypeError(WITH_MESSAGE.replace("self.client.get(..., catch_response=True)", "self.rest(...)"))

    def __exit__(self, *args: Any) -> None:
        return None

    async def __aenter__(self) -> Response:
        resp = self._response = await self._call.__aenter__()
        resp.js = None
        if resp.status_code == 0 and resp.error is not None:
            resp.failure(resp.error)
        elif resp.content:
            try:
                resp.js = resp.json()
            except ValueError as e:
                resp.failure(
                    f"Could not parse response as JSON. {resp.text[:250]}, "
                    f"response code {resp.status_code}, error {e}"
                )
        return resp

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        resp = self._response
        if (
            resp is not None
            and isinstance(exc, Exception)
            and not isinstance(exc, (*_CONTROL_FLOW, ResponseError))
        ):
            if isinstance(exc, AssertionError):
                message = str(exc.args[0]) if exc.args else "Assertion failed"
                if message.endswith(","):
                    message = f"{message[:-1]}, response was {resp.text[:200]}"
            else:
                message = f"{type(exc).__name__}: {exc} at {_where(tb)}. Response was {resp.text[:200]}"
            resp.failure(message)
            await self._call.__aexit__(None, None, None)
            return True
        return bool(await self._call.__aexit__(exc_type, exc, tb))


def _where(tb: Any) -> str:
    frames = traceback.extract_tb(tb) if tb is not None else []
    if not frames:
        return "?"
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno} {last.name}"


def rest_call(
    client: Any, method: str, url: str, headers: Mapping[str, str] | None, kwargs: dict[str, Any]
) -> RestCall:
    """``rest()`` of both user classes, in terms of the client's ``request``."""
    merged = dict(_REST_HEADERS) if headers is None else {**_REST_HEADERS, **headers}
    kwargs["catch_response"] = True
    return RestCall(client.request(method, url, headers=merged, **kwargs))


class HttpVerbs:
    """``get``/``post``/... in terms of ``request(method, url, **kwargs)``, for both clients.

    The body of ``post``/``put``/``patch`` is the second positional argument, as in requests.
    """

    request: Callable[..., Any]  # each client defines request(method, url, **options)

    def rename_request(self, name: str) -> _Renamed:
        """``with self.client.rename_request("/item/[id]"):`` records every request inside under ``name``."""
        return _Renamed(self, name)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Any:
        return self.request("OPTIONS", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", url, data=data, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", url, data=data, **kwargs)

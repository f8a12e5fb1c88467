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
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

from horde.event import EventHook
from horde.exceptions import (
    CatchResponseError,
    InterruptTaskSet,
    RescheduleTask,
    ResponseError,
    StopTest,
    StopUser,
)

_NO_ERROR: Any = object()
# leaving a catch_response block by these is not a verdict on the response (the user is stopping, or
# its task set handed control back): the request keeps its automatic classification
_CONTROL_FLOW = (StopUser, StopTest, InterruptTaskSet, RescheduleTask)


class HTTPError(ResponseError):
    """A response whose status code is 400 or more; the error table shows ``HTTPError('503 Service Unavailable')``."""


class Response:
    """A finished HTTP response whose body has been read.

    ``error`` is the exception that made the request fail (a transport error, a timeout, or an
    :class:`HTTPError` for status >= 400); it is None for a success. A transport failure still yields a
    Response with ``status_code`` 0, so task code never has to catch client exceptions.
    """

    __slots__ = (
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

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.content.decode(self.encoding or _charset(self.headers) or "utf-8", "replace")
        return self._text

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.content, **kwargs)

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
        meta["catch"] = exc if isinstance(exc, BaseException) else CatchResponseError(str(exc))


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
        except Exception:
            hook.listener_failed(listener)
            continue
        if result is not None and inspect.isawaitable(result):
            hook.schedule_result(listener, result)


class RequestCall:
    """What ``client.get(...)`` returns: awaitable for the plain form, an async context manager for
    ``catch_response``.

    ``await client.get(path)`` performs the request, reports it, and returns the Response.
    ``async with client.get(path, catch_response=True) as resp:`` performs the request and reports it
    when the block ends, as a success or a failure according to ``resp.success()`` /
    ``resp.failure(msg)`` (default: the automatic classification). An exception escaping the block
    records the request as a failure carrying that exception, then propagates, so the request is
    still counted exactly once.
    """

    __slots__ = ("_catch", "_perform", "_report", "_reporting_perform", "_response", "_result")

    def __init__(
        self,
        perform: Callable[[], Awaitable[tuple[Response, str, float, float, dict[str, Any]]]],
        report: Reporter,
        catch_response: bool,
        reporting_perform: Callable[[], Awaitable[Response]] | None = None,
    ) -> None:
        """``perform`` makes the request and returns ``(response, name, start_time, ms, context)``;
        ``reporting_perform``, if given, does the same but reports the request itself and returns the
        response: the lean path a plain ``await`` takes."""
        self._perform = perform
        self._reporting_perform = reporting_perform if not catch_response else None
        self._report = report
        self._catch = catch_response
        self._response: Response | None = None
        self._result: tuple[Response, str, float, float, dict[str, Any]] | None = None

    def __await__(self) -> Generator[Any, None, Response]:
        if self._reporting_perform is not None:
            return self._reporting_perform().__await__()  # one coroutine per request, no wrapper
        return self._run().__await__()

    async def _run(self) -> Response:
        resp, name, start, rt, ctx = await self._perform()
        self._report(resp, name, start, rt, resp.error, ctx)
        return resp

    async def __aenter__(self) -> Response:
        if not self._catch:
            self._response = await self._run()
            return self._response
        self._result = await self._perform()
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


class HttpVerbs:
    """``get``/``post``/... in terms of ``request(method, url, **kwargs)``, for both clients.

    The body of ``post``/``put``/``patch`` is the second positional argument, as in requests.
    """

    request: Callable[..., Any]  # each client defines request(method, url, **options)

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

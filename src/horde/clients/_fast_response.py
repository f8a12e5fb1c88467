"""The fast client's :class:`Response`: the shared contract, with its costly parts built on first use.

Most load-test tasks never look at response headers or ``elapsed``; building a case-insensitive
multidict and a ``timedelta`` for every response would cost more than parsing the response did. This
subclass keeps the response head as received (one ``bytes``) and builds ``headers``, ``reason``,
``elapsed`` and ``request_meta`` when first read; everything else (``ok``, ``text``, ``json()``,
``raise_for_status()``, ``success()``/``failure()``) is inherited unchanged.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict

from horde.clients._fast_conn import head_pairs, head_reason
from horde.clients.response import HTTPError, Response


class FastResponse(Response):
    """A :class:`~horde.clients.response.Response` filled from the fast client's parser."""

    __slots__ = ("_elapsed", "_elapsed_s", "_headers", "_meta", "_raw_head", "_reason")
    # set on first use (the properties below build them): declared for the type checker
    _elapsed: datetime.timedelta
    _headers: Mapping[str, str]
    _meta: dict[str, Any]
    _reason: str

    def __init__(
        self,
        method: str,
        url: str,
        status_code: int,
        raw_head: bytes,
        content: bytes,
        elapsed: float,
        error: BaseException | None = None,
        request: Any = None,
    ) -> None:
        # Response.__init__ is not called on purpose: it builds what this class builds lazily.
        # FastHttpSession._request writes this out for its common case: keep the two in step.
        self.request_method = method
        self.url = url
        self.status_code = status_code
        self._raw_head = raw_head  # status line and header lines (see _fast_conn.head_pairs)
        self.content = content
        self._elapsed_s = elapsed
        self.encoding = None
        self._text = None
        self._request = request  # the Prepared request: resp.request is built from it on first use
        if error is None and status_code >= 400:
            error = HTTPError(f"{status_code} {self.reason}".rstrip())
        self.error = error

    @property
    def reason(self) -> str:
        try:
            return self._reason
        except AttributeError:  # unset until first read: one store less per response
            self._reason = reason = head_reason(self._raw_head).decode("latin-1")
            return reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive response headers (a ``CIMultiDict``: ``getall("Set-Cookie")`` works)."""
        try:
            return self._headers
        except AttributeError:
            headers: Mapping[str, str] = CIMultiDict(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in head_pairs(self._raw_head)
            )
            self._headers = headers
            return headers

    @headers.setter
    def headers(self, value: Mapping[str, str]) -> None:
        self._headers = value

    @property
    def elapsed(self) -> datetime.timedelta:
        """From the start of the request to the last byte of the body, redirects included."""
        try:
            return self._elapsed
        except AttributeError:
            self._elapsed = elapsed = datetime.timedelta(seconds=self._elapsed_s)
            return elapsed

    @elapsed.setter
    def elapsed(self, value: datetime.timedelta) -> None:
        self._elapsed = value

    @property
    def request_meta(self) -> dict[str, Any]:
        try:
            return self._meta
        except AttributeError:
            meta: dict[str, Any] = {}
            self._meta = meta
            return meta

    @request_meta.setter
    def request_meta(self, value: dict[str, Any]) -> None:
        self._meta = value

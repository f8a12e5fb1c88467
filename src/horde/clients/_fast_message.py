"""Building request bytes and decoding response bodies for the fast client (no I/O here).

Everything a request needs that does not change between two calls with the same arguments (the parsed
URL, the request line, the merged headers) is computed here once and cached by the session, so the
per-request work of the common ``await client.get("/path")`` is a dictionary lookup.
"""

from __future__ import annotations

import base64
import json as jsonlib
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from horde.clients.response import RequestInfo, headers_from_head

DEFAULT_PORTS = {"http": 80, "https": 443}
IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))
_SAFE_URL_CHARS = "/:@!$&'()*+,;=-._~%?#[]"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes: the parsed parts of an absolute URL."""

    url: str  # absolute, as reported in ``Response.url``
    scheme: str
    host: str
    port: int
    origin: str  # "scheme://host:port", the connection pool's key
    host_header: str
    path: str  # request-target: path and query

    @property
    def secure(self) -> bool:
        return self.scheme == "https"


def parse_target(url: str) -> Target:
    """Split an absolute http(s) URL; raises ValueError with a readable message for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"unsupported URL scheme in {url!r}: the fast client speaks http and https")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"invalid port in URL {url!r}") from None
    display_host = f"[{host}]" if ":" in host else host
    host_header = display_host if port == DEFAULT_PORTS[scheme] else f"{display_host}:{port}"
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if not path.isascii() or " " in path:
        path = quote(path, safe=_SAFE_URL_CHARS)
    return Target(url, scheme, host, port, f"{scheme}://{display_host}:{port}", host_header, path)


def header_values(raw_headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of header ``name`` (lower-case) among raw header pairs."""
    return [v for k, v in raw_headers if k.lower() == name]


def with_params(url: str, params: Any) -> str:
    """Append ``params`` (a mapping, a sequence of pairs, or a ready query string) to ``url``."""
    if not params:
        return url
    query = params if isinstance(params, str) else urlencode(params, doseq=True)
    base, _, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}#{fragment}" if fragment else joined


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def encode_body(data: Any, json: Any) -> tuple[bytes | None, str | None]:
    """The body bytes and the Content-Type they imply (None when the caller's headers should decide)."""
    if json is not None:
        return jsonlib.dumps(json, separators=(",", ":")).encode(), "application/json"
    if data is None:
        return None, None
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode(), None
    if isinstance(data, Mapping) or isinstance(data, list | tuple):
        return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
    read = getattr(data, "read", None)
    if callable(read):
        content = read()
        return (content.encode() if isinstance(content, str) else bytes(content)), None
    raise TypeError(f"cannot send a {type(data).__name__} as a request body: use bytes, str, a dict or json=")


def decode_body(body: bytes, encoding: bytes | None, limit: int | None = None) -> bytes:
    """Undo a gzip or deflate Content-Encoding; other encodings are returned as received.

    With ``limit``, a decoded body longer than that raises :class:`DecodedTooLarge` (a small
    compressed body can decode to gigabytes): decoding stops there.
    """
    if not encoding or not body:
        return body
    if encoding == b"gzip" or encoding == b"x-gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, limit)
    if encoding == b"deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, limit)  # zlib-wrapped, as RFC 9110 says
        except zlib.error:
            return _inflate(body, -zlib.MAX_WBITS, limit)  # raw deflate, as some servers send
    return body


class DecodedTooLarge(ValueError):
    """A compressed body whose decoded size passes the limit."""


def _inflate(body: bytes, wbits: int, limit: int | None) -> bytes:
    if limit is None:
        return zlib.decompress(body, wbits)
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, limit + 1)
    if len(out) > limit:
        raise DecodedTooLarge(limit)
    if not d.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


class HeaderDict(MutableMapping[str, str]):
    """Case-insensitive headers sent with every request of a session; tells the session when it changes.

    The session caches prepared request bytes; a change here (a login setting ``Authorization`` in
    ``on_start``) must drop that cache, so every mutation calls ``on_change``.

    The items are copied on write, never changed in place: :meth:`lowered` can hand them out without a
    copy, and every session starting with the same headers shares one items dict (thousands of users
    would otherwise hold thousands of identical copies) until one of them changes its own.
    """

    __slots__ = ("_items", "_on_change")

    def __init__(
        self, initial: Mapping[str, str] | None = None, on_change: Callable[[], None] | None = None
    ) -> None:
        self._on_change = on_change
        self._items: dict[str, tuple[str, str]] = _shared_items(initial) if initial else {}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        items = dict(self._items)
        items[key.lower()] = (key, value)
        self._items = items
        if self._on_change is not None:
            self._on_change()

    def __delitem__(self, key: str) -> None:
        items = dict(self._items)
        del items[key.lower()]
        self._items = items
        if self._on_change is not None:
            self._on_change()

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"HeaderDict({dict(self.items())!r})"

    def lowered(self) -> dict[str, tuple[str, str]]:
        """The headers keyed by lower-case name (read-only: copy before merging per-request headers)."""
        return self._items


_SHARED_ITEMS: dict[tuple[tuple[str, str], ...], dict[str, tuple[str, str]]] = {}
_SHARED_ITEMS_LIMIT = 256  # distinct initial header sets kept for sharing


def _shared_items(initial: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """The items dict for these initial headers, shared by every HeaderDict created with equal ones."""
    key = tuple(initial.items())
    try:
        items = _SHARED_ITEMS.get(key)
    except TypeError:  # an unhashable value: nothing to share
        return {k.lower(): (k, v) for k, v in key}
    if items is None:
        items = {k.lower(): (k, v) for k, v in key}
        if len(_SHARED_ITEMS) < _SHARED_ITEMS_LIMIT:
            _SHARED_ITEMS[key] = items
    return items


def build_head(method: str, target: Target, headers: dict[str, tuple[str, str]], body: bytes | None) -> bytes:
    """The request head up to, not including, the blank line that ends it (a Cookie line may follow)."""
    lines = [f"{method} {target.path} HTTP/1.1\r\n"]
    if "host" not in headers:
        lines.append(f"Host: {target.host_header}\r\n")
    for name, value in headers.values():
        lines.append(f"{name}: {value}\r\n")
    if (body is not None or method in ("POST", "PUT", "PATCH")) and "content-length" not in headers:
        lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
    return "".join(lines).encode("latin-1")


@dataclass(slots=True)
class Prepared:
    """A request ready to write; cached per (method, URL) when the call has no per-request options."""

    method: str
    target: Target
    origin: str  # the pool key, copied from target: one attribute hop less per request
    url: str
    headers: dict[str, tuple[str, str]]  # lower-case name -> (name as given, value)
    body: bytes | None
    head: bytes  # without the blank line, so a Cookie line can be appended
    data: bytes  # the whole request when no cookie applies
    cookie_path: str
    head_only: bool
    idempotent: bool
    cookie: str | None = None  # per-request cookies= (already in ``data``; merged with the jar's)
    insecure: bool = False  # verify=False: its own pool key, so verified connections are never shared

    @classmethod
    def build(
        cls,
        method: str,
        target: Target,
        headers: dict[str, tuple[str, str]],
        body: bytes | None,
        cookie: str | None = None,
        insecure: bool = False,
    ) -> Prepared:
        head = build_head(method, target, headers, body)
        tail = b"\r\n" + body if body else b"\r\n"
        data = head + (f"Cookie: {cookie}\r\n".encode("latin-1") if cookie else b"") + tail
        cookie_path = target.path.split("?", 1)[0]
        origin = target.origin + " (verify=False)" if insecure and target.secure else target.origin
        return cls(
            method,
            target,
            origin,
            target.url,
            headers,
            body,
            head,
            data,
            cookie_path,
            method == "HEAD",
            method in IDEMPOTENT,
            cookie,
            insecure,
        )

    def with_cookie(self, cookie: str) -> bytes:
        if self.cookie:
            cookie = f"{cookie}; {self.cookie}"
        tail = b"\r\n" + self.body if self.body else b"\r\n"
        return self.head + f"Cookie: {cookie}\r\n".encode("latin-1") + tail

    def request_info(self) -> RequestInfo:
        """``resp.request``: what this request wrote (the jar's Cookie line aside)."""
        headers = headers_from_head(self.head)
        if self.cookie:
            headers.add("Cookie", self.cookie)
        return RequestInfo(self.method, self.url, headers, self.body)

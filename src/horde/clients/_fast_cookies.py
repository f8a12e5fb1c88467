"""The fast client's per-user cookie jar: the parts of RFC 6265 a load test meets, and IP-address hosts.

Load tests often target ``http://10.0.0.5:8080``; browsers and aiohttp's default jar refuse cookies
from such hosts, which silently logs every simulated user out. This jar accepts them (host-only, as a
browser would treat a cookie without a Domain attribute). It keeps no public-suffix list: a test talks
to the systems it was pointed at, so a ``Domain=.com`` cookie is not a threat worth the cost.

An empty jar costs one truth test per request; the session only asks for a Cookie header when the jar
holds something.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import mktime_tz, parsedate_tz


@dataclass
class Cookie:
    """One stored cookie; ``host_only`` cookies go back only to the exact host that set them."""

    name: str
    value: str
    domain: str
    path: str = "/"
    host_only: bool = True
    secure: bool = False
    expires: float | None = None  # epoch seconds; None: until the user ends

    def matches(self, host: str, path: str, secure: bool) -> bool:
        if self.secure and not secure:
            return False
        if self.host_only or _is_ip(host):
            if host != self.domain:
                return False
        elif host != self.domain and not host.endswith("." + self.domain):
            return False
        cp = self.path
        return path == cp or (path.startswith(cp) and (cp.endswith("/") or path[len(cp)] == "/"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _default_path(request_path: str) -> str:
    path = request_path.split("?", 1)[0]
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rfind("/")]


class CookieJar:
    """Cookies of one user, keyed by (domain, path, name) as RFC 6265 keys them.

    >>> jar = CookieJar()
    >>> jar.set("session", "abc", domain="10.0.0.5")
    >>> jar.header_for("10.0.0.5", "/cart", secure=False)
    'session=abc'
    """

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def __bool__(self) -> bool:
        return bool(self._cookies)

    def __iter__(self) -> Iterator[Cookie]:
        return iter(list(self._cookies.values()))

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self._cookies.values())

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first cookie called ``name`` (any domain or path)."""
        for c in self._cookies.values():
            if c.name == name:
                return c.value
        return default

    def set(self, name: str, value: str, *, domain: str, path: str = "/", secure: bool = False) -> None:
        """Store a cookie by hand (e.g. a token obtained outside HTTP)."""
        domain = domain.lower().lstrip(".")
        self._cookies[(domain, path, name)] = Cookie(name, value, domain, path, True, secure)

    def clear(self) -> None:
        self._cookies.clear()

    def extract(self, set_cookie_values: list[str], host: str, request_path: str) -> None:
        """Store the cookies of a response's ``Set-Cookie`` headers, sent by ``host`` for ``request_path``."""
        now = time.time()
        for raw in set_cookie_values:
            cookie = _parse(raw, host.lower(), request_path, now)
            if cookie is None:
                continue
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expires is not None and cookie.expires <= now:
                self._cookies.pop(key, None)  # the server deletes it
            else:
                self._cookies[key] = cookie

    def header_for(self, host: str, path: str, secure: bool) -> str | None:
        """The ``Cookie`` header value for a request, or None when no cookie applies."""
        if not self._cookies:
            return None
        host = host.lower()
        now = 0.0
        found: list[Cookie] = []
        for key, c in list(self._cookies.items()):
            if c.expires is not None:
                now = now or time.time()
                if c.expires <= now:
                    del self._cookies[key]
                    continue
            if c.matches(host, path, secure):
                found.append(c)
        if not found:
            return None
        found.sort(key=lambda c: -len(c.path))  # longer paths first, as browsers send them
        return "; ".join(f"{c.name}={c.value}" for c in found)


def _parse(raw: str, host: str, request_path: str, now: float) -> Cookie | None:
    parts = raw.split(";")
    name, eq, value = parts[0].partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    cookie = Cookie(name, value.strip(), host, _default_path(request_path))
    max_age: float | None = None
    for attr in parts[1:]:
        key, _, val = attr.partition("=")
        key = key.strip().lower()
        val = val.strip()
        if key == "domain" and val:
            domain = val.lower().lstrip(".")
            if domain != host and (_is_ip(host) or not host.endswith("." + domain)):
                return None  # a cookie for a domain this host does not belong to
            cookie.domain = domain
            cookie.host_only = _is_ip(host)
        elif key == "path":
            cookie.path = val if val.startswith("/") else _default_path(request_path)
        elif key == "secure":
            cookie.secure = True
        elif key == "max-age":
            try:
                max_age = float(val)
            except ValueError:
                continue
        elif key == "expires" and max_age is None:
            parsed = parsedate_tz(val)  # RFC 1123 and the old Netscape forms (21-Oct-15)
            if parsed is not None:
                cookie.expires = float(mktime_tz(parsed))
    if max_age is not None:
        cookie.expires = now + max_age if max_age > 0 else now - 1.0
    return cookie

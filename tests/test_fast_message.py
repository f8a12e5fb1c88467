"""The fast client's pure parts: URL and body handling, session headers, the cookie jar."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from horde.clients._fast_cookies import CookieJar
from horde.clients._fast_message import (
    HeaderDict,
    build_head,
    decode_body,
    encode_body,
    header_values,
    parse_target,
    with_params,
)

# --- URLs ---------------------------------------------------------------------------------------------


def test_parse_target() -> None:
    t = parse_target("http://127.0.0.1:8080/a/b?x=1#frag")
    assert (t.scheme, t.host, t.port, t.path) == ("http", "127.0.0.1", 8080, "/a/b?x=1")
    assert t.origin == "http://127.0.0.1:8080" and t.host_header == "127.0.0.1:8080" and not t.secure
    t = parse_target("https://Example.com")
    assert (t.host, t.port, t.path, t.host_header, t.secure) == ("example.com", 443, "/", "example.com", True)
    t = parse_target("http://[::1]:9000/x")
    assert t.host == "::1" and t.host_header == "[::1]:9000" and t.origin == "http://[::1]:9000"
    assert parse_target("http://h/with space/ü").path == "/with%20space/%C3%BC"


@pytest.mark.parametrize(
    ("url", "message"),
    [("ftp://h/x", "unsupported URL scheme"), ("http:///x", "no host"), ("http://h:99999/", "invalid port")],
)
def test_parse_target_rejects_what_it_cannot_reach(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_target(url)


def test_with_params() -> None:
    assert with_params("http://h/p", None) == "http://h/p"
    assert with_params("http://h/p", {"a": 1, "b": ["x", "y z"]}) == "http://h/p?a=1&b=x&b=y+z"
    assert with_params("http://h/p?q=0", [("a", "1")]) == "http://h/p?q=0&a=1"
    assert with_params("http://h/p#top", "raw=1") == "http://h/p?raw=1#top"


# --- bodies and heads ------------------------------------------------------------------------------


def test_encode_body() -> None:
    assert encode_body(None, None) == (None, None)
    assert encode_body(b"raw", None) == (b"raw", None)
    assert encode_body(bytearray(b"ba"), None) == (b"ba", None)
    assert encode_body("text é", None) == ("text é".encode(), None)
    assert encode_body({"a": "1 2"}, None) == (b"a=1+2", "application/x-www-form-urlencoded")
    assert encode_body([("a", "1"), ("a", "2")], None) == (b"a=1&a=2", "application/x-www-form-urlencoded")
    assert encode_body(None, {"k": [1]}) == (b'{"k":[1]}', "application/json")
    assert encode_body(io.BytesIO(b"file"), None) == (b"file", None)
    with pytest.raises(TypeError, match="cannot send a int"):
        encode_body(3, None)


def test_decode_body() -> None:
    assert decode_body(gzip.compress(b"g"), b"gzip") == b"g"
    assert decode_body(zlib.compress(b"z"), b"deflate") == b"z"
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_body(raw.compress(b"r") + raw.flush(), b"deflate") == b"r"  # raw deflate, as IIS sends
    assert decode_body(b"as is", b"br") == b"as is"
    assert decode_body(b"", b"gzip") == b""
    with pytest.raises(zlib.error):
        decode_body(b"not gzip", b"gzip")


def test_build_head() -> None:
    target = parse_target("http://h:81/p?q=1")
    headers = {"user-agent": ("User-Agent", "t")}
    assert (
        build_head("GET", target, headers, None) == b"GET /p?q=1 HTTP/1.1\r\nHost: h:81\r\nUser-Agent: t\r\n"
    )
    assert build_head("POST", target, {}, None).endswith(b"Content-Length: 0\r\n")
    assert build_head("PUT", target, {}, b"abc").endswith(b"Content-Length: 3\r\n")
    forced = build_head("GET", target, {"host": ("Host", "other")}, None)
    assert b"Host: other\r\n" in forced and b"h:81" not in forced


def test_header_values() -> None:
    raw = [(b"Set-Cookie", b"a=1"), (b"Content-Type", b"x"), (b"set-cookie", b"b=2")]
    assert header_values(raw, b"set-cookie") == [b"a=1", b"b=2"]


def test_header_dict_is_case_insensitive_and_reports_changes() -> None:
    changes = []
    h = HeaderDict({"User-Agent": "a"}, on_change=lambda: changes.append(1))
    assert h["user-agent"] == "a" and "USER-AGENT" in h and list(h) == ["User-Agent"]
    h["user-agent"] = "b"
    h.update({"X-One": "1"})
    del h["x-one"]
    assert dict(h) == {"user-agent": "b"} and len(changes) == 3
    assert h.lowered() == {"user-agent": ("user-agent", "b")}


# --- cookies -------------------------------------------------------------------------------------------


def test_cookies_from_ip_hosts_are_accepted_and_host_only() -> None:
    jar = CookieJar()
    jar.extract(["sid=1; Path=/", "wide=2; Domain=10.0.0.5"], "10.0.0.5", "/login")
    assert jar.header_for("10.0.0.5", "/", secure=False) == "sid=1; wide=2"
    assert jar.header_for("10.0.0.6", "/", secure=False) is None
    jar.extract(["evil=1; Domain=10.0.0.6"], "10.0.0.5", "/")  # an IP cannot set cookies for another
    assert "evil" not in jar


def test_domain_and_path_matching() -> None:
    jar = CookieJar()
    jar.extract(
        ["all=1; Domain=.example.com; Path=/", "api=2; Path=/api", "def=3"], "www.example.com", "/app/page"
    )
    assert jar.header_for("shop.example.com", "/", False) == "all=1"
    assert jar.header_for("www.example.com", "/api/x", False) == "api=2; all=1"  # longer path first
    assert jar.header_for("www.example.com", "/apix", False) == "all=1"
    assert jar.header_for("www.example.com", "/app/other", False) == "def=3; all=1"  # default path /app
    jar.extract(["x=1; Domain=other.org"], "www.example.com", "/")
    assert "x" not in jar


def test_expiry_secure_and_deletion() -> None:
    jar = CookieJar()
    jar.extract(
        [
            "keep=1; Max-Age=3600",
            "gone=1; Max-Age=0",
            "old=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            "s=1; Secure",
        ],
        "h",
        "/",
    )
    assert jar.header_for("h", "/", secure=False) == "keep=1"
    assert jar.header_for("h", "/", secure=True) == "keep=1; s=1"
    jar.extract(["keep=; Max-Age=-1"], "h", "/")
    assert jar.get("keep") is None and len(jar) == 1
    jar.set("manual", "v", domain="h")
    assert jar.get("manual") == "v" and [c.name for c in jar] == ["s", "manual"]
    jar.clear()
    assert not jar and jar.header_for("h", "/", True) is None


def test_garbage_set_cookie_values_are_ignored() -> None:
    jar = CookieJar()
    jar.extract(["", "novalue", "=nameless", "ok=1; Max-Age=soon; Expires=garbage"], "h", "/")
    assert [c.name for c in jar] == ["ok"] and next(iter(jar)).expires is None

"""requests-style ``files=`` for both clients: a multipart/form-data body built in memory.

``files`` is a mapping or a list of pairs, ``field -> value``, where value is bytes, a str, a file
object, or a tuple ``(filename, content[, content_type[, headers]])`` whose content is bytes, str or a
file object, exactly as requests takes it. ``data`` fields (a mapping or pairs) go first, as plain parts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any


def _pairs(value: Any) -> Iterable[tuple[str, Any]]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return value.items()
    return value


def _content(value: Any) -> bytes:
    read = getattr(value, "read", None)
    if callable(read):
        value = read()
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"cannot send a {type(value).__name__} as a file: use bytes, str or a file object")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode_multipart(data: Any, files: Any) -> tuple[bytes, str]:
    """The body and its Content-Type (with the boundary)."""
    if data is not None and not isinstance(data, Mapping | list | tuple):
        raise TypeError("with files=, data= must be a mapping or a list of pairs (the form fields)")
    boundary = uuid.uuid4().hex
    out: list[bytes] = []

    def part(name: str, content: bytes, filename: str | None, ctype: str | None, extra: Any) -> None:
        disposition = f'form-data; name="{_quote(str(name))}"'
        if filename is not None:
            disposition += f'; filename="{_quote(filename)}"'
        lines = [f"--{boundary}", f"Content-Disposition: {disposition}"]
        if ctype:
            lines.append(f"Content-Type: {ctype}")
        for key, value in _pairs(extra):
            lines.append(f"{key}: {value}")
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode())
        out.append(content)
        out.append(b"\r\n")

    for name, value in _pairs(data):
        values = value if isinstance(value, list) else [value]
        for v in values:
            part(name, v if isinstance(v, bytes) else str(v).encode(), None, None, None)
    for name, value in _pairs(files):
        filename: str | None
        ctype: str | None = None
        extra: Any = None
        if isinstance(value, tuple):
            filename, content = value[0], value[1]
            if len(value) > 2:
                ctype = value[2]
            if len(value) > 3:
                extra = value[3]
        else:
            content = value
            raw = getattr(value, "name", None)
            filename = os.path.basename(raw) if isinstance(raw, str) and raw[:1] != "<" else str(name)
        if filename is not None and ctype is None:
            ctype = "application/octet-stream"
        part(name, _content(content), filename, ctype, extra)
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"

"""The web UI's command-line flags (Locust's names) and the checks run on them before anything starts.

The CLI calls :func:`add_web_arguments` on its parser, so each flag also comes from ``HORDE_*`` variables,
``horde.conf`` and ``pyproject.toml [tool.horde]`` like every other option, then :func:`check_web_options`
for the one-line problems argparse cannot see (``--autoquit`` without ``--autostart``, half a TLS pair).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WEB_HOST = "127.0.0.1"
DEFAULT_WEB_PORT = 8089

#: store_true destinations added here: config text such as "true" must become a bool (see cli/options.py).
WEB_BOOL_DESTS = frozenset({"autostart", "class_picker"})


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the web UI flags (``--web-host``, ``-P/--web-port``, ``--web-base-path``, ``--autostart`` …)."""
    web = parser.add_argument_group("web UI")
    add = web.add_argument
    add(
        "--web-host",
        default=DEFAULT_WEB_HOST,
        help="interface the web UI listens on (default 127.0.0.1, this machine only; "
        "use 0.0.0.0 in a container or to reach it from elsewhere)",
    )
    add("-P", "--web-port", type=port_number, default=DEFAULT_WEB_PORT, help="web UI port (default 8089)")
    add(
        "--web-base-path",
        type=_base_path,
        default="",
        help="serve the UI and API under this path, e.g. /horde (behind a reverse proxy)",
    )
    add(
        "--autostart",
        action="store_true",
        default=None,
        help="start the test at once (-u/-r/-t) while keeping the web UI",
    )
    add(
        "--autoquit",
        type=int,
        default=-1,
        metavar="SECONDS",
        help="with --autostart: quit this many seconds after the test ends (default: keep the UI up)",
    )
    add(
        "--class-picker",
        action="store_true",
        default=None,
        help="choose user classes (and the shape) in the web UI's start form",
    )
    add("--tls-cert", default="", help="certificate file: serve the web UI over HTTPS (needs --tls-key)")
    add("--tls-key", default="", help="private key file for --tls-cert")
    add(
        "--web-login",
        default="",
        metavar="USER:PASSWORD",
        help="require this login (HTTP basic auth) on every page and API route; "
        "@FILE reads USER:PASSWORD from a file (also HORDE_WEB_LOGIN)",
    )


def port_number(text: str) -> int:
    """An argparse type: a TCP port 0-65535 (0: any free one), with a one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _base_path(text: str) -> str:
    value = text.strip()
    if not value:
        return ""
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} must start with / (e.g. /horde)")
    return value.rstrip("/")


@dataclass(frozen=True)
class Login:
    user: str
    password: str


def parse_login(value: str) -> Login | None:
    """``USER:PASSWORD`` or ``@FILE`` (whose first line is ``USER:PASSWORD``); empty means no login.

    Raises ValueError with one clear line when the value cannot be used.
    """
    text = value.strip()
    if not text:
        return None
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ValueError(f"--web-login: cannot read {path}: {e.strerror or e}") from None
        text = lines[0].strip() if lines else ""
        where = f" (in {path})"
    else:
        where = ""
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ValueError(f"--web-login must be USER:PASSWORD with both parts non-empty{where}")
    return Login(user, password)


def check_web_options(options: argparse.Namespace) -> str | None:
    """The first problem with the web flags as one line, or ``None``."""
    if getattr(options, "autoquit", -1) >= 0 and not getattr(options, "autostart", False):
        return "--autoquit is only meaningful together with --autostart"
    cert, key = getattr(options, "tls_cert", ""), getattr(options, "tls_key", "")
    if bool(cert) != bool(key):
        return "--tls-cert and --tls-key must be given together"
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path and not Path(path).is_file():
            return f"{flag}: {path} does not exist"
    try:
        parse_login(getattr(options, "web_login", "") or "")
    except ValueError as e:
        return str(e)
    return None

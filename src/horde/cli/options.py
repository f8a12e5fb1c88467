"""Command-line options, with the same values also read from env vars and config files.

Precedence, lowest first (as in Locust): ``pyproject.toml [tool.horde]`` < ``horde.conf`` (home, then the
current directory) < ``--config FILE`` < ``HORDE_<LONG_NAME>`` environment variables < flags. Config keys
are the long flag names with or without dashes (``run-time`` or ``run_time``).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from horde._version import __version__
from horde.load.arrival_options import add_arrival_arguments
from horde.thresholds.options import add_threshold_arguments
from horde.web.options import add_web_arguments, port_number

ENV_PREFIX = "HORDE_"
CONF_FILES = ("~/.horde.conf", "horde.conf")
#: Locust's own config sources, read as fallbacks below horde's (a Locust project works unchanged)
LOCUST_ENV_PREFIX = "LOCUST_"
LOCUST_CONF_FILES = ("~/.locust.conf", "locust.conf")
_TIMESPAN = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")


class ConfigError(Exception):
    """A config file or env var that cannot be used; the message is one clear line."""


def parse_timespan(text: str | int | float) -> int:
    """``90`` → 90, ``30s`` → 30, ``1h30m`` → 5400. Raises ValueError with the accepted forms."""
    if isinstance(text, (int, float)):
        return int(text)
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    match = _TIMESPAN.match(value)
    if not value or not match or not any(match.groupdict().values()):
        raise ValueError(f"invalid time span {text!r}: use seconds (90) or units like 30s, 5m, 1h30m")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def _timespan_arg(text: str) -> int:
    try:
        return parse_timespan(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _stop_timeout(text: str) -> float:
    """Seconds (``2.5``) or a time span (``5s``, ``1m``), as Locust accepts."""
    try:
        return _non_negative_float(text)
    except argparse.ArgumentTypeError as e:
        try:
            return float(parse_timespan(text))
        except ValueError:
            raise e from None


def _positive_timespan(text: str) -> int:
    value = _timespan_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds (leave it out for no limit)")
    return value


def _exit_code(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"{value} is not a process exit code (0-255)")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _csv_list(text: str | Sequence[str]) -> list[str]:
    if isinstance(text, (list, tuple)):
        return [str(t) for t in text]
    return [part.strip() for part in str(text).split(",") if part.strip()]


class HordeArgumentParser(argparse.ArgumentParser):
    """argparse, plus Locust's ``include_in_web_ui`` and ``is_secret`` keywords on ``add_argument``, so a
    locustfile's ``init_command_line_parser`` listener written for Locust works unchanged. The keywords are
    kept on the action (``action.include_in_web_ui``, ``action.is_secret``) for the web UI."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        include_in_web_ui = kwargs.pop("include_in_web_ui", True)
        is_secret = kwargs.pop("is_secret", False)
        action = super().add_argument(*args, **kwargs)
        action.include_in_web_ui = include_in_web_ui  # type: ignore[attr-defined]
        action.is_secret = is_secret  # type: ignore[attr-defined]
        return action


def build_parser(extend: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.ArgumentParser:
    """horde's options; ``extend`` adds a locustfile's own (the ``init_command_line_parser`` event)."""
    parser = HordeArgumentParser(
        prog="horde",
        description="Run a load test described by async User classes in a locustfile.",
        epilog="Every option can also come from HORDE_<OPTION> env vars, horde.conf, --config or "
        "pyproject.toml [tool.horde]. `horde demo` runs a built-in demonstration; `horde keys generate DIR` "
        "makes CurveZMQ keys for --keys.",
    )
    parser.add_argument("user_classes", nargs="*", metavar="UserClass", help="run only these user classes")
    add = parser.add_argument
    add(
        "-f",
        "--locustfile",
        default="locustfile.py",
        help="a .py file, a directory of them, or a comma list; on a worker, - (or no -f and no locustfile.py) "
        "gets the master's",
    )
    add("--config", help="read options from this config file (key = value lines, or TOML)")
    add("-H", "--host", help="base URL of the system under test, e.g. http://127.0.0.1:8080")
    add("-u", "--users", type=_non_negative_int, help="peak number of concurrent users (default 1)")
    add("-r", "--spawn-rate", type=_positive_float, help="users started (or stopped) per second (default 1)")
    add("-t", "--run-time", type=_positive_timespan, help="stop after this long, e.g. 90, 30s, 1h30m")
    add("--headless", action="store_true", default=None, help="run without the web UI and start at once")
    add(
        "-s",
        "--stop-timeout",
        type=_stop_timeout,
        default=0.0,
        help="seconds running tasks may take to finish when users stop (default 0: stop at once)",
    )
    add(
        "--exit-code-on-error",
        type=_exit_code,
        default=1,
        help="exit code when requests failed or users raised (default 1)",
    )
    add("-L", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    add("--logfile", help="also write the log to this file")
    add(
        "-l",
        "--list",
        dest="list_commands",
        action="store_true",
        default=None,
        help="list the user classes found and exit",
    )
    add("-T", "--tags", type=_csv_list, help="run only tasks with one of these tags (comma separated)")
    add("-E", "--exclude-tags", type=_csv_list, help="skip tasks with any of these tags (comma separated)")
    add(
        "--reset-stats", action="store_true", default=None, help="reset statistics once the ramp-up completes"
    )
    add(
        "--only-summary", action="store_true", default=None, help="print only the final tables, not every 2 s"
    )
    add(
        "--json",
        dest="json_file",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the final statistics as JSON: to stdout without FILE (the tables then go to stderr)",
    )
    add("--json-file", dest="json_file", metavar="FILE", help="write the final statistics as JSON to FILE")
    add(
        "-i",
        "--iterations",
        type=_positive_int,
        default=None,
        help="stop after this many task iterations in all (counted over every user of this process)",
    )
    add(
        "--print-stats",
        action="store_true",
        default=None,
        help="print the live statistics table in web UI runs too (headless runs always print it)",
    )
    add(
        "--show-task-ratio",
        action="store_true",
        default=None,
        help="print how often each task would run, per class and in total, and exit",
    )
    add("--show-task-ratio-json", action="store_true", default=None, help="the same as JSON, and exit")
    add("--skip-log-setup", action="store_true", default=None, help="leave logging as it is configured")
    add(
        "--max-entries",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="distinct request names kept before new ones are counted on one overflow row per method "
        "(default 1000; 0: no limit)",
    )
    reports = parser.add_argument_group("reports")
    reports.add_argument(
        "--csv",
        dest="csv_prefix",
        metavar="PREFIX",
        help="write PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX_exceptions.csv",
    )
    reports.add_argument(
        "--csv-full-history",
        action="store_true",
        default=None,
        help="also append every entry (not only Aggregated) to PREFIX_stats_history.csv each second",
    )
    reports.add_argument(
        "--html",
        dest="html_file",
        metavar="FILE",
        help="write a self-contained HTML report at the end ({u}, {r}, {t}: users, spawn rate, run time)",
    )
    reports.add_argument(
        "--prometheus-port",
        type=port_number,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT/metrics while the test runs (headless, master)",
    )
    reports.add_argument(
        "--prometheus-host",
        default="127.0.0.1",
        help="interface for --prometheus-port (default 127.0.0.1; 0.0.0.0 to let another machine scrape)",
    )
    add("--print-stats-interval", type=_positive_float, default=2.0, help=argparse.SUPPRESS)
    dist = parser.add_argument_group("distributed runs")
    dist.add_argument(
        "--master", action="store_true", default=None, help="coordinate workers; run no users here"
    )
    dist.add_argument("--worker", action="store_true", default=None, help="run users for a master")
    dist.add_argument(
        "--processes",
        type=int,
        help="run a master plus N worker processes here (-1: one per CPU core); with --worker, N workers",
    )
    dist.add_argument("--master-host", default="127.0.0.1", help="(worker) the master to connect to")
    dist.add_argument("--master-port", type=port_number, default=5557, help="(worker) the master's port")
    dist.add_argument("--master-bind-host", default="*", help="(master) interface to listen on (default all)")
    dist.add_argument("--master-bind-port", type=port_number, default=5557, help="(master) port to listen on")
    dist.add_argument(
        "--expect-workers",
        type=_positive_int,
        default=1,
        help="(master, headless) wait for this many workers",
    )
    dist.add_argument(
        "--expect-workers-max-wait",
        type=_non_negative_float,
        default=0.0,
        help="(master) give up after this many seconds without enough workers (0: wait forever)",
    )
    dist.add_argument(
        "--heartbeat-interval",
        type=_positive_float,
        default=1.0,
        help="seconds between heartbeats (workers send, the master checks)",
    )
    dist.add_argument(
        "--heartbeat-liveness",
        type=_positive_int,
        default=3,
        help="heartbeat intervals of silence after which a worker is marked missing",
    )
    dist.add_argument(
        "--stats-report-interval",
        type=_positive_float,
        default=3.0,
        help="(worker) seconds between stats reports to the master",
    )
    dist.add_argument("--protocol-version", type=int, default=None, help=argparse.SUPPRESS)  # tests only
    dist.add_argument(
        "--master-timeout",
        type=_positive_float,
        default=60.0,
        help="(worker) quit after the master has been unreachable this long",
    )
    add_security_arguments(parser)
    add_web_arguments(parser)
    add_threshold_arguments(parser)
    add_arrival_arguments(parser)
    add("-V", "--version", action="version", version=f"horde {__version__}")
    if extend is not None:
        extend(parser)
    return parser


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    """CurveZMQ keys for the master-worker links (``horde keys generate DIR``; see docs/security.md)."""
    sec = parser.add_argument_group("distributed security (CurveZMQ)")

    def add(*args: Any, **kwargs: Any) -> None:
        action = sec.add_argument(*args, **kwargs)
        action.include_in_web_ui = False  # type: ignore[attr-defined]  # paths of keys: not for the web form
        action.is_secret = False  # type: ignore[attr-defined]

    add(
        "--keys",
        metavar="DIR",
        help="authenticate and encrypt every master-worker link with the keys in DIR (from `horde keys "
        "generate DIR`); the same DIR can be given to the master and the workers",
    )
    add(
        "--master-key",
        metavar="FILE",
        help="(master) its secret key file (master.key_secret); (worker) the master's public key (master.key)",
    )
    add(
        "--worker-key",
        metavar="FILE",
        help="(worker) its own secret key file (worker.key_secret, worker-N.key_secret)",
    )
    add(
        "--authorized-workers",
        metavar="DIR",
        help="(master) let in only workers whose public key (*.key) is in DIR",
    )


# config keys that differ from their destination
_KEY_ALIASES = {
    "list": "list_commands",
    "json": "json_file",
    "locustfiles": "locustfile",
    "csv": "csv_prefix",
    "thresholds": "threshold",
    "json_file": "json_file",
    "html": "html_file",
}


def _bool_dests(parser: argparse.ArgumentParser) -> set[str]:
    """Destinations of store_true flags: config text like "true"/"false" must become bools."""
    return {a.dest for a in parser._actions if isinstance(a, argparse._StoreTrueAction)}


def _dest_map(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "version")}


def _normalise_key(key: str) -> str:
    k = key.strip().lstrip("-").replace("-", "_").lower()
    return _KEY_ALIASES.get(k, k)


def _to_bool(value: Any, key: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"must be true or false, got {value!r}")


def read_conf_file(path: Path) -> dict[str, Any]:
    """``key = value`` lines (a ``[horde]`` section header is allowed), or TOML when the file parses as it."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
        if isinstance(data.get("horde"), dict):
            data = data["horde"]
        return dict(data)
    except tomllib.TOMLDecodeError:
        pass
    values: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected `key = value`, got {raw.strip()!r}")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def read_pyproject(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    return dict(data.get("tool", {}).get("horde", {}))


def _is_file(path: Path) -> bool:
    """False for a file we cannot even look at (an unreadable home directory means no config there)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _source_name(source: str, key: str) -> str:
    """How an error names where a value came from: ``HORDE_RUN_TIME`` or ``horde.conf: run-time``."""
    if source == "environment":
        return ENV_PREFIX + key.upper().replace("-", "_")
    if source == "locust-environment":
        return LOCUST_ENV_PREFIX + key.upper().replace("-", "_")
    return f"{source}: {key}"


def collect_defaults(
    parser: argparse.ArgumentParser,
    config_file: str | None,
    environ: Mapping[str, str],
    cwd: Path,
    *,
    lenient: bool = False,
) -> dict[str, Any]:
    """Merge the non-flag sources, lowest precedence first, into parser defaults.

    Every value is checked here with its option's own type, so a bad one is reported with its source
    (``HORDE_SPAWN_RATE: 'nan' must be a finite number``), and every bad value at once.
    """
    dests = _dest_map(parser)
    bool_dests = _bool_dests(parser)
    layers: list[tuple[str, dict[str, Any]]] = []
    pyproject = cwd / "pyproject.toml"
    if _is_file(pyproject):
        layers.append((str(pyproject), read_pyproject(pyproject)))
    for name in LOCUST_CONF_FILES + CONF_FILES:
        try:
            path = Path(name).expanduser() if name.startswith("~") else cwd / name
        except RuntimeError:  # no home directory to expand ~ into
            continue
        if _is_file(path):
            layers.append((str(path), read_conf_file(path)))
    if config_file:
        path = Path(config_file)
        if not _is_file(path):
            raise ConfigError(f"config file {config_file} does not exist")
        layers.append((config_file, read_conf_file(path)))
    for prefix in (LOCUST_ENV_PREFIX, ENV_PREFIX):
        values = {k[len(prefix) :]: v for k, v in environ.items() if k.startswith(prefix)}
        layers.append(("environment" if prefix == ENV_PREFIX else "locust-environment", values))

    merged: dict[str, Any] = {}
    problems: list[str] = []
    from_locust: list[str] = []
    for source, values in layers:
        locust = source == "locust-environment" or Path(source).name in (".locust.conf", "locust.conf")
        for key, value in values.items():
            dest = _normalise_key(key)
            if dest not in dests or dest == "config":
                if source in ("environment", "locust-environment") or locust or lenient:
                    continue  # unrelated variables, Locust options horde has no use for, or not yet known
                problems.append(f"{source}: unknown option {key!r}")
                continue
            if locust:
                from_locust.append(
                    LOCUST_ENV_PREFIX + key
                    if source == "locust-environment"
                    else f"{Path(source).name}: {key}"
                )
            try:
                merged[dest] = _config_value(dests[dest], dest in bool_dests, value, key, source)
            except (ConfigError, argparse.ArgumentTypeError, ValueError) as e:
                problems.append(f"{_source_name(source, key)}: {e}")
    if problems:
        raise ConfigError("\n".join(problems))
    if from_locust:
        print(f"horde: note: read Locust settings as fallbacks: {', '.join(from_locust)}", file=sys.stderr)
    return merged


def _config_value(action: argparse.Action, is_bool: bool, value: Any, key: str, source: str) -> Any:
    if is_bool:
        return _to_bool(value, key, source)
    if action.dest == "user_classes":
        return _csv_list(value) if isinstance(value, str) else list(value)
    if isinstance(value, list):
        return [str(v) for v in value]
    text = value if isinstance(value, str) else str(value)
    if callable(action.type):
        action.type(text)  # validate now, naming the source; argparse converts the string default later
    return text


def parse_options(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    extend: Callable[[argparse.ArgumentParser], None] | None = None,
    partial: bool = False,
) -> argparse.Namespace:
    """Parse flags on top of every config source; exits with status 2 and one line on bad input.

    ``partial`` is the first pass, before the locustfile is imported: flags and config keys the locustfile
    may still add are left alone, and ``--help`` waits for the full pass (which lists them).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    parser = build_parser(extend)
    if partial:
        parser.add_help = False
        parser._actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
        parser._option_string_actions = {
            k: v for k, v in parser._option_string_actions.items() if k not in ("-h", "--help")
        }
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    config_file = known.config or environ.get(ENV_PREFIX + "CONFIG")
    try:
        defaults = collect_defaults(parser, config_file, environ, cwd, lenient=partial)
    except (ConfigError, OSError) as e:
        parser.error(str(e))
    # argparse converts string defaults with the option's type, so config values are validated too
    user_classes_default = defaults.pop("user_classes", None)
    parser.set_defaults(**defaults)
    if partial:
        options, _ = parser.parse_known_args(argv)
    else:
        options = parser.parse_args(argv)
    if not options.user_classes and user_classes_default:
        options.user_classes = user_classes_default
    for dest in _bool_dests(parser):
        if getattr(options, dest) is None:
            setattr(options, dest, False)
    return options

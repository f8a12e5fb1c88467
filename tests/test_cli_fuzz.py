"""Property-based fuzzing of the option parsers: whatever the flags, variables or config files say, the
answer is options or a clear error with a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from horde.cli.options import ConfigError, build_parser, collect_defaults, parse_options

FLAGS = [
    "-u", "-r", "-t", "-s", "-i", "-H", "-L", "-T", "-E", "-P", "--users", "--spawn-rate", "--run-time",
    "--stop-timeout", "--exit-code-on-error", "--heartbeat-interval", "--heartbeat-liveness", "--expect-workers",
    "--master-port", "--prometheus-port", "--web-port", "--threshold", "--arrival-rate", "--stages",
    "--max-entries", "--csv", "--json", "--headless", "--master", "--worker", "--processes", "--bogus",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(
        ["0", "-1", "nan", "inf", "-inf", "1e309", "", " ", "5s", "1h30m", "abc", "3", "256", "70000"]
    ),
    st.text(max_size=12),
    st.integers(-10, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
ARGV = st.lists(st.one_of(st.sampled_from(FLAGS), VALUES), max_size=8)
KEYS = st.sampled_from(
    ["users", "spawn-rate", "run-time", "stop-timeout", "exit-code-on-error", "headless", "tags", "host",
     "heartbeat-interval", "expect-workers", "bogus", "master-port", "threshold", "web-port", "iterations"]
)  # fmt: skip


def parse_quietly(
    argv: list[str], environ: dict[str, str], cwd: Path
) -> tuple[argparse.Namespace | None, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            return parse_options(argv, environ=environ, cwd=cwd), err.getvalue()
        except SystemExit as e:
            if e.code in (0, None):  # --help, --version, or an abbreviation argparse accepts (--hel)
                assert out.getvalue().startswith(("usage: horde", "horde ")), out.getvalue()[:200]
                return None, "error: (help shown)"
            return None, err.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=ARGV)
def test_any_command_line_parses_or_fails_with_a_message(argv: list[str], tmp_path: Path) -> None:
    options, err = parse_quietly(argv, {}, tmp_path)
    assert "Traceback" not in err
    if options is None:
        assert "error:" in err  # argparse's one error line (after its usage line)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(KEYS, VALUES, max_size=6))
def test_any_environment_parses_or_names_the_variable(values: dict[str, str], tmp_path: Path) -> None:
    environ = {"HORDE_" + k.upper().replace("-", "_"): v for k, v in values.items()}
    try:
        collect_defaults(build_parser(), None, environ, tmp_path)
    except ConfigError as e:
        for line in str(e).splitlines():
            assert line.startswith("HORDE_"), line


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(KEYS, VALUES, max_size=6), junk=st.text(max_size=40))
def test_any_config_file_parses_or_names_the_file(values: dict[str, str], junk: str, tmp_path: Path) -> None:
    conf = tmp_path / "horde.conf"
    lines = [f"{k} = {v}".replace("\n", " ").replace("\r", " ") for k, v in values.items()]
    conf.write_text("\n".join([*lines, junk.replace("\r", "")]), encoding="utf-8")
    try:
        collect_defaults(build_parser(), None, {}, tmp_path)
    except ConfigError as e:
        assert str(e).strip(), "an error must say something"
        for line in str(e).splitlines():
            assert str(conf) in line or "TOML" in line, line


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-u", "nan"], "-u/--users"),
        (["-t", "0"], "more than 0"),
        (["--exit-code-on-error", "256"], "0-255"),
        (["--heartbeat-interval", "nan"], "finite"),
    ],
)
def test_known_bad_values_name_the_flag(argv: list[str], needle: str, tmp_path: Path) -> None:
    options, err = parse_quietly(argv, {}, tmp_path)
    assert options is None and needle in err and "Traceback" not in err

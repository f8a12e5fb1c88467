"""The threshold flags on horde's real option parser: flags, config files, env vars, checks, outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from horde.cli.options import build_parser, collect_defaults
from horde.reports.output import OutputPathError, check_writable_file
from horde.thresholds import JUnitOutput, ThresholdOutput
from horde.thresholds.options import (
    build_threshold_outputs,
    check_threshold_options,
    parse_duration,
    threshold_texts,
)


def parse(argv: list[str], cwd: Path, environ: dict[str, str] | None = None) -> argparse.Namespace:
    """What horde.cli.options.parse_options does (the real parser carries the threshold flags)."""
    parser = build_parser()
    parser.set_defaults(**collect_defaults(parser, None, environ or {}, cwd))
    options = parser.parse_args(argv)
    if options.threshold_abort is None:
        options.threshold_abort = False
    return options


def test_flags(tmp_path: Path) -> None:
    options = parse(
        [
            "--threshold",
            "p95<300ms",
            "--threshold",
            "GET /items: p99<800ms",
            "--threshold-abort",
            "--threshold-abort-after",
            "1m30s",
            "--junit",
            "out.xml",
        ],
        tmp_path,
    )
    assert options.threshold == ["p95<300ms", "GET /items: p99<800ms"]
    assert options.threshold_abort is True and options.threshold_abort_after == 90.0
    assert options.junit == "out.xml"
    defaults = parse([], tmp_path)
    assert threshold_texts(defaults) == [] and defaults.threshold_abort is False
    assert defaults.threshold_abort_after == 0.0 and defaults.junit is None


def test_pyproject_list_and_flags_replace_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.horde]\nthreshold = ["p95<300ms", "fail_ratio<1%"]\n'
        'threshold-abort = true\nthreshold-abort-after = "30s"\njunit = "t.xml"\n'
    )
    options = parse([], tmp_path)
    assert threshold_texts(options) == ["p95<300ms", "fail_ratio<1%"]
    assert options.threshold_abort is True and options.threshold_abort_after == 30.0
    assert options.junit == "t.xml"
    overridden = parse(["--threshold", "avg<100", "--threshold", "max<1s"], tmp_path)
    assert threshold_texts(overridden) == ["avg<100", "max<1s"]


def test_conf_file_and_env_strings_split_on_semicolons(tmp_path: Path) -> None:
    (tmp_path / "horde.conf").write_text("threshold = p95<300ms; GET /items: p99<800ms\n")
    assert threshold_texts(parse([], tmp_path)) == ["p95<300ms", "GET /items: p99<800ms"]
    env = {"HORDE_THRESHOLD": "avg<200;fail_ratio<0.01", "HORDE_THRESHOLD_ABORT_AFTER": "2m"}
    options = parse([], tmp_path, env)
    assert threshold_texts(options) == ["avg<200", "fail_ratio<0.01"]
    assert options.threshold_abort_after == 120.0
    assert threshold_texts(parse(["--threshold", "rps>5"], tmp_path, env)) == ["rps>5"]


def test_a_bad_abort_after_in_a_config_file_names_its_source(tmp_path: Path) -> None:
    (tmp_path / "horde.conf").write_text("threshold-abort-after = soon\n")
    with pytest.raises(Exception, match="threshold-abort-after: invalid duration 'soon'"):
        parse([], tmp_path)


def test_check_reports_every_problem_at_once(tmp_path: Path) -> None:
    options = parse(["--threshold", "p95<300kb", "--threshold", "avg<200", "--threshold", "p0<1"], tmp_path)
    thresholds, problems = check_threshold_options(options)
    assert [t.expression for t in thresholds] == ["avg<200"]
    assert [p.split(":")[0] for p in problems] == ["threshold 'p95<300kb'", "threshold 'p0<1'"]
    options.threshold_abort_after = -1
    assert check_threshold_options(options)[1][-1].startswith("--threshold-abort-after: invalid duration")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("30s", 30.0), ("1.5s", 1.5), ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0), (0, 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5", "5x", float("inf"), -1.0])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)  # type: ignore[arg-type]


def test_build_outputs(tmp_path: Path) -> None:
    reasons: list[str] = []
    options = parse(
        [
            "--threshold",
            "avg<1",
            "--threshold-abort",
            "--threshold-abort-after",
            "5",
            "--junit",
            str(tmp_path / "j.xml"),
        ],
        tmp_path,
    )
    checker, outputs = build_threshold_outputs(options, on_abort=reasons.append)
    assert isinstance(checker, ThresholdOutput)
    assert checker.abort and checker.abort_after == 5.0 and checker.on_abort == reasons.append
    assert outputs[0] is checker
    assert isinstance(outputs[1], JUnitOutput) and outputs[1].checker is checker
    none, only_junit = build_threshold_outputs(
        parse(["--junit", str(tmp_path / "k.xml")], tmp_path), on_abort=None
    )
    assert none is None and [type(o) for o in only_junit] == [JUnitOutput]
    assert build_threshold_outputs(parse([], tmp_path), on_abort=None) == (None, [])


def test_build_outputs_checks_the_junit_path_and_the_expressions(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputPathError, match="it is a directory"):
        build_threshold_outputs(
            parse(["--junit", str(tmp_path / "dir")], tmp_path),
            on_abort=None,
            check_writable=check_writable_file,
        )
    with pytest.raises(ValueError, match="threshold 'p0<1'"):
        build_threshold_outputs(parse(["--threshold", "p0<1"], tmp_path), on_abort=None)

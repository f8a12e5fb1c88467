"""Option sources and their precedence: pyproject < horde.conf < --config < env < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from horde.cli.options import parse_options, parse_timespan


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1h2m3s", 3723), (45, 45)]
)
def test_parse_timespan(text: str, seconds: int) -> None:
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "1d", "10 s", "-5"])
def test_parse_timespan_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="time span"):
        parse_timespan(bad)


def test_defaults(tmp_path: Path) -> None:
    o = parse_options([], environ={}, cwd=tmp_path)
    assert o.locustfile == "locustfile.py" and o.users is None and o.stop_timeout == 0.0
    assert o.headless is False and o.exit_code_on_error == 1 and o.user_classes == []


def test_precedence_of_every_source(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.horde]\nusers = 1\nspawn-rate = 1\nrun-time = "1m"\nhost = "http://py"\nheadless = true\n'
    )
    (tmp_path / "horde.conf").write_text("users = 2\nspawn-rate = 2\nrun-time = 2m\n")
    extra = tmp_path / "extra.conf"
    extra.write_text("users = 3\nspawn_rate = 3\n")
    environ = {"HORDE_USERS": "4"}
    o = parse_options(["--config", str(extra)], environ=environ, cwd=tmp_path)
    assert (o.users, o.spawn_rate, o.run_time, o.host, o.headless) == (4, 3.0, 120, "http://py", True)
    o = parse_options(["--config", str(extra), "-u", "5"], environ=environ, cwd=tmp_path)
    assert o.users == 5


def test_env_vars_and_list_values(tmp_path: Path) -> None:
    environ = {"HORDE_TAGS": "a,b", "HORDE_HEADLESS": "true", "HORDE_RUN_TIME": "1h30m", "HORDE_OTHER": "x"}
    o = parse_options([], environ=environ, cwd=tmp_path)
    assert o.tags == ["a", "b"] and o.headless is True and o.run_time == 5400


def test_bad_config_values_exit_with_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "horde.conf").write_text("users = many\n")
    with pytest.raises(SystemExit) as exc:
        parse_options([], environ={}, cwd=tmp_path)
    assert exc.value.code == 2 and "many" in capsys.readouterr().err
    (tmp_path / "horde.conf").write_text("no-such-option = 1\n")
    with pytest.raises(SystemExit):
        parse_options([], environ={}, cwd=tmp_path)
    assert "unknown option 'no-such-option'" in capsys.readouterr().err


def test_unknown_flag_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_options(["--no-such-flag"], environ={}, cwd=tmp_path)
    assert exc.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_positional_user_classes_and_flags(tmp_path: Path) -> None:
    o = parse_options(
        [
            "A",
            "B",
            "-f",
            "x.py",
            "-H",
            "http://h",
            "-t",
            "30s",
            "-s",
            "2.5",
            "-T",
            "t1",
            "-E",
            "t2",
            "--reset-stats",
            "--only-summary",
            "--json",
            "out.json",
            "-L",
            "DEBUG",
            "--exit-code-on-error",
            "3",
        ],
        environ={},
        cwd=tmp_path,
    )
    assert o.user_classes == ["A", "B"] and o.locustfile == "x.py" and o.run_time == 30
    assert o.stop_timeout == 2.5 and o.tags == ["t1"] and o.exclude_tags == ["t2"]
    assert o.reset_stats and o.only_summary and o.json_file == "out.json" and o.exit_code_on_error == 3


def test_bad_values_are_rejected_naming_their_source_all_at_once(tmp_path: Path) -> None:
    (tmp_path / "horde.conf").write_text("spawn-rate = nan\nrun-time = 0\n")
    env = {"HORDE_EXIT_CODE_ON_ERROR": "256", "HORDE_HEARTBEAT_INTERVAL": "inf"}
    with pytest.raises(SystemExit) as e:
        parse_options([], environ=env, cwd=tmp_path)
    assert e.value.code == 2


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-r", "nan"], "finite"),
        (["-s", "inf"], "finite"),
        (["-t", "0"], "more than 0"),
        (["--exit-code-on-error", "256"], "0-255"),
        (["--heartbeat-interval", "nan"], "finite"),
        (["--master-port", "70000"], "port"),
        (["--expect-workers", "0"], "at least 1"),
    ],
)
def test_bad_flags_give_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_options(argv, environ={}, cwd=Path("/nonexistent"))
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


def test_config_errors_name_the_file_key_and_variable(tmp_path: Path) -> None:
    from horde.cli.options import ConfigError, build_parser, collect_defaults

    (tmp_path / "horde.conf").write_text("spawn-rate = nan\nbogus = 1\n")
    with pytest.raises(ConfigError) as e:
        collect_defaults(build_parser(), None, {"HORDE_RUN_TIME": "soon"}, tmp_path)
    lines = str(e.value).splitlines()
    assert any(line.startswith(f"{tmp_path / 'horde.conf'}: spawn-rate:") for line in lines)
    assert any("unknown option 'bogus'" in line for line in lines)
    assert any(line.startswith("HORDE_RUN_TIME:") for line in lines)

"""``horde convert`` on the command line: diff by default, -o, --in-place, the summary and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from horde.convert.cli import main

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text((CORPUS / "taskset_helpers.py").read_text())
    return path


def test_default_prints_a_unified_diff_and_changes_nothing(locustfile: Path, capsys) -> None:
    before = locustfile.read_text()
    assert main([str(locustfile)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--- {locustfile}\n+++ {locustfile}\n@@")
    assert "-from locust import" in out and "+from horde import" in out
    assert "+    async def on_start(self):" in out
    assert locustfile.read_text() == before


def test_output_file_and_in_place(locustfile: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "converted.py"
    assert main([str(locustfile), "-o", str(dest)]) == 0
    assert "await self.login()" in dest.read_text()
    assert main([str(locustfile), "--in-place"]) == 0
    assert locustfile.read_text() == dest.read_text()
    assert capsys.readouterr().out == ""
    # a second run has nothing to say
    assert main([str(locustfile)]) == 0
    assert capsys.readouterr().out == ""


def test_flagged_places_are_summarised_on_stderr_with_exit_1(tmp_path: Path, capsys) -> None:
    src = tmp_path / "blocking.py"
    src.write_text((CORPUS / "blocking_client.py").read_text())
    assert main([str(src), "-o", str(tmp_path / "out.py")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert (
        err[0]
        == f"{src}:5: gevent.monkey patches the standard library for gevent; horde runs on asyncio: remove it"
    )
    assert any(line.startswith(f"{src}:18: `requests.post` blocks the event loop") for line in err)
    assert err[-1].startswith("horde convert: 4 places need manual attention")


def test_notes_do_not_change_the_exit_code_and_quiet_hides_them(tmp_path: Path, capsys) -> None:
    src = tmp_path / "listeners.py"
    src.write_text((CORPUS / "listeners.py").read_text())
    assert main([str(src)]) == 0
    assert f"{src}:29: note: asyncio.create_task" in capsys.readouterr().err
    assert main([str(src), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing.py")]) == 2
    assert capsys.readouterr().err == f"{tmp_path / 'missing.py'}: no such file\n"
    bad = tmp_path / "bad.py"
    bad.write_text("from locust import task\n\ndef f(:\n    pass\n")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:3: syntax error") and err.count("\n") == 1


def test_output_and_in_place_exclude_each_other(locustfile: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(locustfile), "-o", "x.py", "--in-place"])
    assert info.value.code == 2


def test_format_runs_ruff_when_it_is_there(tmp_path: Path, capsys) -> None:
    from horde.convert.cli import find_ruff

    src = tmp_path / "ugly.py"
    src.write_text(
        "from locust import HttpUser,task\nclass U(HttpUser):\n  @task\n  def t(self): self.client.get('/')\n"
    )
    dest = tmp_path / "out.py"
    assert main([str(src), "-o", str(dest), "--format"]) == 0
    if find_ruff() is None:
        assert "ruff is not available" in capsys.readouterr().err
    else:
        assert dest.read_text() == (
            "from horde import HttpUser, task\n\n\nclass U(HttpUser):\n"
            '    @task\n    async def t(self):\n        await self.client.get("/")\n'
        )


@pytest.mark.slow
def test_python_dash_m_horde_convert(locustfile: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "horde.convert", str(locustfile)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "+from horde import" in proc.stdout


def test_horde_convert_through_the_horde_command(locustfile: Path, capsys) -> None:
    from horde.cli.main import run_cli

    assert run_cli(["convert", str(locustfile)]) == 0
    assert "+from horde import" in capsys.readouterr().out

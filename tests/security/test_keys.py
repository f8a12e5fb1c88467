"""`horde keys generate`, and what each end loads from --keys / --master-key / --worker-key /
--authorized-workers: bad files are one clear line and exit 1."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from horde.cli.main import run_cli
from horde.rpc import keys as keymod


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_a_master_and_a_worker_keypair_secrets_0600(tmp_path: Path) -> None:
    assert keymod.main(["generate", str(tmp_path / "k")]) == 0
    names = sorted(p.name for p in (tmp_path / "k").iterdir())
    assert names == ["master.key", "master.key_secret", "worker.key", "worker.key_secret"]
    assert mode(tmp_path / "k" / "master.key_secret") == 0o600
    assert mode(tmp_path / "k" / "worker.key_secret") == 0o600
    assert mode(tmp_path / "k" / "master.key") == 0o644
    # never overwritten by accident
    assert keymod.main(["generate", str(tmp_path / "k")]) == 1


def test_generate_one_keypair_per_worker_and_the_horde_command(tmp_path: Path) -> None:
    assert run_cli(["keys", "generate", str(tmp_path), "--workers", "3"]) == 0
    secrets = sorted(p.name for p in tmp_path.glob("worker-*.key_secret"))
    assert secrets == ["worker-1.key_secret", "worker-2.key_secret", "worker-3.key_secret"]
    server = keymod.server_keys(str(tmp_path), None, None)
    assert server is not None and len(server.authorized) == 3
    with pytest.raises(keymod.KeyFileError, match="pick this worker's with --worker-key"):
        keymod.client_keys(str(tmp_path), None, None)
    worker = keymod.client_keys(str(tmp_path), None, str(tmp_path / "worker-2.key_secret"))
    assert worker is not None and worker.public in server.authorized and worker.server_public == server.public


def test_the_fine_flags_keep_the_master_secret_off_the_workers(tmp_path: Path) -> None:
    keymod.generate(tmp_path / "all")
    public_only = tmp_path / "workers"
    public_only.mkdir()
    (public_only / "worker.key").write_bytes((tmp_path / "all" / "worker.key").read_bytes())
    server = keymod.server_keys(None, str(tmp_path / "all" / "master.key_secret"), str(public_only))
    client = keymod.client_keys(
        None, str(tmp_path / "all" / "master.key"), str(tmp_path / "all" / "worker.key_secret")
    )
    assert server is not None and client is not None and client.public in server.authorized
    assert keymod.server_keys(None, None, None) is None and keymod.client_keys(None, None, None) is None


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d / "master.key_secret").write_text("garbage\n"), "not a CurveZMQ key file"),
        (
            lambda d: (d / "master.key_secret").write_bytes((d / "master.key").read_bytes()),
            "holds no secret key",
        ),
    ],
)
def test_bad_key_files_are_one_line(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    keymod.generate(tmp_path)
    if message == "does not exist":
        (tmp_path / "master.key_secret").unlink()
    else:
        setup(tmp_path)
    with pytest.raises(keymod.KeyFileError, match=message) as info:
        keymod.server_keys(str(tmp_path), None, None)
    assert "\n" not in str(info.value) and "master.key_secret" in str(info.value)


def test_a_master_with_a_missing_key_dir_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "locustfile.py").write_text(
        "from horde import User, task\nclass U(User):\n    @task\n    async def t(self): pass\n"
    )
    code = run_cli(
        [
            "--master",
            "--headless",
            "--keys",
            str(tmp_path / "nope"),
            "--master-bind-port",
            "0",
            "--skip-log-setup",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("key directory" in line and "does not exist" in line for line in err), err


def test_a_worker_with_a_bad_key_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    keymod.generate(tmp_path / "k")
    (tmp_path / "k" / "worker.key_secret").write_text("not a key")
    code = run_cli(["--worker", "-f", "-", "--keys", str(tmp_path / "k"), "--skip-log-setup"])
    assert code == 1
    err = capsys.readouterr().err
    assert "worker.key_secret is not a CurveZMQ key file" in err

"""Locustfiles shipped by the master: the bundle's checks, and workers with no copy (``-f -`` or no
``-f``) running a single file and a package with a local import and a data file, with and without keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from horde.cli.worker import FetchError, fetch_locustfile
from horde.rpc import bundle as bundlemod
from horde.rpc import keys as keymod
from horde.rpc.protocol import Message
from horde.rpc.transport import Inbound
from horde.rpc.zmq import ZmqServer
from tests.demo_target import running_target, served
from tests.test_distributed_processes import free_port, wait_listening

PACKAGE_LOCUSTFILE = textwrap.dedent(
    """
    from pathlib import Path
    from horde import FastHttpUser, task, constant
    from helpers.paths import PATH          # a local module of the locustfile's folder

    ROWS = (Path(__file__).parent / "data" / "rows.csv").read_text().split()  # a data file next to it

    class Shipped(FastHttpUser):
        wait_time = constant(0.05)

        @task
        async def items(self):
            await self.client.get(PATH, name=PATH + "?" + ROWS[0])
    """
)


def make_package(root: Path) -> Path:
    (root / "helpers").mkdir(parents=True)
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "paths.py").write_text('PATH = "/items"\n')
    (root / "data").mkdir()
    (root / "data" / "rows.csv").write_text("row-a\nrow-b\n")
    (root / "locustfile.py").write_text(PACKAGE_LOCUSTFILE)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    (root / ".env").write_text("SECRET=1")
    return root / "locustfile.py"


# ---- the bundle -----------------------------------------------------------------------------------------
def test_a_bundle_holds_the_folder_modules_and_data_not_caches_or_hidden_files(tmp_path: Path) -> None:
    entry = make_package(tmp_path / "src")
    bundle = bundlemod.build(str(entry))
    assert sorted(bundle.files) == [
        "data/rows.csv",
        "helpers/__init__.py",
        "helpers/paths.py",
        "locustfile.py",
    ]
    assert bundle.entries == ("locustfile.py",)
    paths = bundlemod.unpack(bundle.to_wire(), tmp_path / "out")
    assert paths == [tmp_path / "out" / "locustfile.py"]
    assert (tmp_path / "out" / "data" / "rows.csv").read_text() == "row-a\nrow-b\n"


def test_a_tampered_or_escaping_bundle_is_refused_and_nothing_written(tmp_path: Path) -> None:
    entry = make_package(tmp_path / "src")
    wire = bundlemod.build(str(entry)).to_wire()
    tampered = dict(wire, files=dict(wire["files"], **{"helpers/paths.py": b'PATH = "/evil"\n'}))
    with pytest.raises(bundlemod.BundleError, match="tampered"):
        bundlemod.unpack(tampered, tmp_path / "t")
    assert not (tmp_path / "t").exists()
    for bad in ("../x.py", "/etc/x.py", "a/../../x.py", ""):
        files = {bad: b"x", "locustfile.py": b""}
        escaping = {"files": files, "entries": ["locustfile.py"], "sha256": bundlemod.digest(files)}
        with pytest.raises(bundlemod.BundleError):
            bundlemod.unpack(escaping, tmp_path / "e")
    with pytest.raises(bundlemod.BundleError):
        bundlemod.unpack({"files": {}, "entries": ["x.py"], "sha256": bundlemod.digest({})}, tmp_path / "n")


def test_a_folder_over_the_limit_ships_the_locustfile_and_its_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = make_package(tmp_path / "src")
    (tmp_path / "src" / "big.bin").write_bytes(b"x" * 5000)
    monkeypatch.setattr(bundlemod, "MAX_BUNDLE_BYTES", 4000)
    bundle = bundlemod.build(str(entry))
    assert "big.bin" not in bundle.files and "locustfile.py" in bundle.files and bundle.left_out


# ---- over ZeroMQ ------------------------------------------------------------------------------------------
def options(port: int, timeout: float = 5.0) -> argparse.Namespace:
    return argparse.Namespace(master_host="127.0.0.1", master_port=port, master_timeout=timeout)


async def test_a_worker_refuses_a_tampered_bundle_from_its_master(tmp_path: Path) -> None:
    entry = make_package(tmp_path / "src")
    wire = bundlemod.build(str(entry)).to_wire()
    wire["files"]["locustfile.py"] = b"import os; os.system('echo owned')\n"  # the hash no longer matches
    server = ZmqServer("127.0.0.1", 0)

    async def fake_master() -> None:
        item = await server.recv()
        assert isinstance(item, Inbound) and item.message.type == "fetch_locustfile"
        await server.send(item.link, Message("locustfile", wire))

    try:
        serving = asyncio.ensure_future(fake_master())
        with pytest.raises(FetchError, match="tampered"):
            await fetch_locustfile(options(server.port), None)
        await serving
    finally:
        server.close()


async def test_with_keys_only_an_authenticated_worker_gets_the_code(tmp_path: Path) -> None:
    keymod.generate(tmp_path / "k")
    keymod.generate(tmp_path / "other")
    server = ZmqServer("127.0.0.1", 0, keys=keymod.server_keys(str(tmp_path / "k"), None, None))
    stranger = keymod.client_keys(
        None, str(tmp_path / "k" / "master.key"), str(tmp_path / "other" / "worker.key_secret")
    )
    asked: list[str] = []

    async def fake_master() -> None:
        while True:
            item = await server.recv()
            asked.append(repr(item))

    serving = asyncio.ensure_future(fake_master())
    try:
        with pytest.raises(FetchError, match="no locustfile from the master"):
            await fetch_locustfile(options(server.port, 1.5), stranger)
        assert asked == []  # the request never reached the master's code
    finally:
        serving.cancel()
        server.close()


# ---- real processes: a master with the files, workers without ----------------------------------------------
@pytest.fixture
def target() -> Iterator[str]:
    with running_target() as url:
        yield url


def run_cluster(
    master_dir: Path, worker_dir: Path, url: str, master_args: list[str], worker_args: list[str]
) -> dict:
    port = free_port()
    fast = ["--heartbeat-interval", "0.2", "--heartbeat-liveness", "3"]
    master = subprocess.Popen(
        [sys.executable, "-m", "horde", *master_args, "--master", "--headless", "--master-bind-host", "127.0.0.1",
         "--master-bind-port", str(port), "--expect-workers", "2", "--expect-workers-max-wait", "30", "-H", url,
         "-u", "4", "-r", "100", "-t", "2", "-s", "1", "--json", str(master_dir / "out.json"), *fast],
        cwd=master_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_listening(port)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "horde",
                    "--worker",
                    "--master-port",
                    str(port),
                    "--stats-report-interval",
                    "0.5",
                    *fast,
                    *worker_args,
                ],
                cwd=worker_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        _out, err = master.communicate(timeout=90)
        assert master.returncode == 0, err
        for w in workers:
            _wout, werr = w.communicate(timeout=30)
            assert w.returncode == 0, werr
            assert "Received the locustfile from the master" in werr
        return json.loads((master_dir / "out.json").read_text())
    finally:
        for p in (master, *locals().get("workers", [])):
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_workers_without_a_copy_run_a_shipped_package_with_a_data_file(tmp_path: Path, target: str) -> None:
    entry = make_package(tmp_path / "master")
    (tmp_path / "worker").mkdir()
    keymod.generate(tmp_path / "keys")
    before = served(target)
    report = run_cluster(
        tmp_path / "master", tmp_path / "worker", target,
        ["-f", str(entry), "--keys", str(tmp_path / "keys")],
        ["-f", "-", "--keys", str(tmp_path / "keys")],
    )  # fmt: skip
    names = {s["name"]: s["num_requests"] for s in report["stats"]}
    assert set(names) == {"/items?row-a", "Aggregated"}
    assert names["Aggregated"] == served(target) - before > 20


@pytest.mark.slow
def test_workers_without_f_run_a_shipped_single_file(tmp_path: Path, target: str) -> None:
    (tmp_path / "master").mkdir()
    (tmp_path / "worker").mkdir()
    entry = tmp_path / "master" / "single.py"
    entry.write_text(
        textwrap.dedent(
            """
            from horde import FastHttpUser, task, constant

            class Single(FastHttpUser):
                wait_time = constant(0.05)

                @task
                async def items(self):
                    await self.client.get("/items")
            """
        )
    )
    before = served(target)
    report = run_cluster(tmp_path / "master", tmp_path / "worker", target, ["-f", str(entry)], [])
    total = next(s for s in report["stats"] if s["name"] == "Aggregated")["num_requests"]
    assert total == served(target) - before > 20


def test_a_configmap_style_folder_of_symlinks_ships_but_links_out_of_it_do_not(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    data = mount / "..2026_12_01"
    data.mkdir(parents=True)
    (data / "locustfile.py").write_text("from horde import User\n")
    (data / "rows.csv").write_text("a\n")
    (mount / "..data").symlink_to(data.name)
    for name in ("locustfile.py", "rows.csv"):
        (mount / name).symlink_to(f"..data/{name}")
    secret = tmp_path / "secret.txt"
    secret.write_text("nope")
    (mount / "leak.txt").symlink_to(secret)
    bundle = bundlemod.build(str(mount / "locustfile.py"))
    assert sorted(bundle.files) == ["locustfile.py", "rows.csv"] and bundle.entries == ("locustfile.py",)


@pytest.mark.parametrize(
    ("argv", "local_file", "ships"),
    [
        (["--worker", "-f", "-"], True, True),  # -f - always ships, a local locustfile.py is not imported
        (["--worker"], False, True),  # no -f and nothing to use here
        (["--worker"], True, False),  # no -f, but ./locustfile.py: as before
        (["--worker", "-f", "mine.py"], False, False),
        (["--worker", "--locustfile=mine.py"], False, False),
        (["--master"], False, False),
        (["--worker", "-f", "-", "--help"], False, False),
    ],
)
def test_when_a_worker_asks_for_the_locustfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], local_file: bool, ships: bool
) -> None:
    from horde.cli.main import _without_locustfile_flag, wants_shipped_locustfile
    from horde.cli.options import parse_options

    monkeypatch.chdir(tmp_path)
    if local_file:
        (tmp_path / "locustfile.py").write_text("")
    assert wants_shipped_locustfile(argv, parse_options(argv, environ={}, partial=True)) is ships
    assert _without_locustfile_flag(["--worker", "-f", "-", "-u", "3", "--locustfile=x"]) == [
        "--worker",
        "-u",
        "3",
    ]

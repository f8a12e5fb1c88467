"""Real ZeroMQ on 127.0.0.1 (port 0): a master, a worker, keys, and a recording TCP proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from horde.env import Environment
from horde.event import Events
from horde.rpc import keys as keymod
from horde.rpc.zmq import ZmqServer
from horde.runners.master import MasterRunner
from horde.runners.worker import WorkerRunner
from tests.runners.cluster import Fired, counting_users

HB = 0.2


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    keymod.generate(tmp_path / "keys")
    return tmp_path / "keys"


@dataclass
class RealCluster:
    fired: Fired = field(default_factory=Fired)
    master: MasterRunner | None = None
    workers: list[WorkerRunner] = field(default_factory=list)

    def new_master(self, server_keys: keymod.ServerKeys | None = None) -> MasterRunner:
        env = Environment(events=Events(), user_classes=counting_users(self.fired))
        self.master = env.create_master_runner(
            transport=ZmqServer("127.0.0.1", 0, keys=server_keys), heartbeat_interval=HB, heartbeat_liveness=5
        )
        self.master.start_background()
        return self.master

    def new_worker(
        self, client_keys: keymod.ClientKeys | None = None, port: int | None = None
    ) -> WorkerRunner:
        assert self.master is not None
        env = Environment(events=Events(), user_classes=counting_users(self.fired))
        worker = env.create_worker_runner(
            "127.0.0.1",
            port if port is not None else self.master.port,
            heartbeat_interval=HB,
            heartbeat_liveness=5,
            stats_report_interval=0.3,
            keys=client_keys,
        )
        self.workers.append(worker)
        return worker

    def merged(self) -> int:
        assert self.master is not None
        return self.master.environment.stats.total.num_requests

    async def close(self) -> None:
        for worker in self.workers:
            if worker._quit_task is None:
                await asyncio.wait_for(worker.quit(), 10)
        if self.master is not None and self.master._quit_task is None:
            await asyncio.wait_for(self.master.quit(), 10)


@pytest.fixture
async def real() -> AsyncIterator[RealCluster]:
    cluster = RealCluster()
    yield cluster
    await cluster.close()


class RecordingProxy:
    """A TCP proxy that keeps every byte the client sent (a captured session, to replay later)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sessions: list[bytearray] = []  # what the client sent, one entry per connection
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        captured = bytearray()
        self.sessions.append(captured)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
            try:
                while data := await src.read(65536):
                    if record:
                        captured.extend(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

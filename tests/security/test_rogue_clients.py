"""Rogue clients against a real master over ZeroMQ on 127.0.0.1: with CurveZMQ keys nobody without an
authorised key gets in (no key, a wrong key, replayed frames of a captured session); without keys the
hardening still refuses identity takeovers, foreign-link messages and oversized frames."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from horde._version import PROTOCOL_VERSION
from horde.rpc import keys as keymod
from horde.rpc.protocol import Message
from horde.rpc.zmq import MAX_MESSAGE_BYTES
from tests.security.conftest import RealCluster, RecordingProxy


def ready(node_id: str, session: str | None = None) -> bytes:
    data: dict[str, object] = {"version": "9", "protocol": PROTOCOL_VERSION, "user_classes_count": {}}
    if session is not None:
        data["session"] = session
    return Message("client_ready", data, node_id).serialize()


def fake_stats(node_id: str, seq: int = 1) -> bytes:
    stats = {"seq": seq, "stats": {}, "user_classes_count": {"Alpha": 500}, "exceptions": [], "logs": []}
    return Message("stats", stats, node_id).serialize()


def rogue(
    ctx: zmq.asyncio.Context, port: int, identity: bytes, curve: tuple[bytes, bytes, bytes] | None = None
):  # type: ignore[no-untyped-def]
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, identity)
    if curve is not None:
        server_public, public, secret = curve
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


async def nothing_arrives(sock: zmq.asyncio.Socket, seconds: float = 0.6) -> bool:
    try:
        await asyncio.wait_for(sock.recv(), seconds)
    except TimeoutError:
        return True
    return False


async def run_load(real: RealCluster, seconds: float = 1.2) -> None:
    master = real.master
    assert master is not None
    await asyncio.wait_for(master.start(4, 100), 5)
    await asyncio.sleep(seconds)


async def finish_and_check_exact(real: RealCluster) -> None:
    master = real.master
    assert master is not None
    await asyncio.wait_for(master.stop(), 10)
    await asyncio.sleep(0.3)
    assert real.merged() == real.fired.count > 0  # every request counted once, nothing injected


async def test_with_keys_no_key_wrong_key_and_replayed_frames_change_nothing(
    real: RealCluster, keydir: Path, tmp_path: Path
) -> None:
    server_keys = keymod.server_keys(str(keydir), None, None)
    client_keys = keymod.client_keys(str(keydir), None, None)
    master = real.new_master(server_keys)
    proxy = RecordingProxy(master.port)
    await proxy.start()
    worker = real.new_worker(client_keys, port=proxy.port)  # the real worker goes through the recorder
    await asyncio.wait_for(worker.connect(), 5)
    await run_load(real)
    assert [n.id for n in master.nodes] == [worker.client_id]

    ctx = zmq.asyncio.Context()
    wrong_public, wrong_secret = zmq.curve_keypair()
    try:
        no_key = rogue(ctx, master.port, worker.client_id.encode())
        wrong_key = rogue(ctx, master.port, b"rogue_b", (server_keys.public, wrong_public, wrong_secret))
        for sock in (no_key, wrong_key):
            await sock.send(ready("rogue"))
            await sock.send(fake_stats(worker.client_id))
            await sock.send(Message("quit", {"stats_seq": 0}, worker.client_id).serialize())
        # replay: every byte the real worker sent, on fresh connections (the CURVE handshake's
        # short-term keys and nonces make a captured session worthless)
        assert proxy.sessions and sum(len(s) for s in proxy.sessions) > 1000
        for captured in proxy.sessions:
            with socket.create_connection(("127.0.0.1", master.port), timeout=2) as raw:
                try:
                    raw.sendall(bytes(captured))
                except OSError:
                    pass  # the master hung up on the garbage: as it should
                await asyncio.sleep(0.2)
        assert await nothing_arrives(no_key) and await nothing_arrives(wrong_key)
        assert [n.id for n in master.nodes] == [worker.client_id]
        assert master.user_count == 4 and worker.user_count == 4
        assert master.transport.authorised is not None and master.transport.authorised.denied >= 1  # type: ignore[attr-defined]
        await finish_and_check_exact(real)
    finally:
        ctx.destroy(linger=0)
        proxy.close()


async def test_a_worker_with_the_wrong_key_cannot_register(
    real: RealCluster, keydir: Path, tmp_path: Path
) -> None:
    master = real.new_master(keymod.server_keys(str(keydir), None, None))
    other = tmp_path / "other"
    keymod.generate(other)
    # the right master key, but a worker key the master never authorised
    stranger = keymod.client_keys(None, str(keydir / "master.key"), str(other / "worker.key_secret"))
    worker = real.new_worker(stranger)
    with pytest.raises(TimeoutError):
        await worker.connect(timeout=1.5)
    assert not master.nodes


async def test_without_keys_an_identity_takeover_is_refused_and_logged(
    real: RealCluster, caplog: pytest.LogCaptureFixture
) -> None:
    master = real.new_master()
    worker = real.new_worker()
    await asyncio.wait_for(worker.connect(), 5)
    await run_load(real, 0.5)
    ctx = zmq.asyncio.Context()
    try:
        # the same routing identity while the real one is connected: ZeroMQ ignores the newcomer
        same = rogue(ctx, master.port, worker.client_id.encode())
        # a new link claiming the worker's id (as a reconnect would), without the worker's session secret
        claim = rogue(ctx, master.port, f"{worker.client_id}#7".encode())
        guess = rogue(ctx, master.port, f"{worker.client_id}#8".encode())
        with caplog.at_level(logging.WARNING, logger="horde.runners.master"):
            for sock in (same, claim):
                await sock.send(ready(worker.client_id))
                await sock.send(fake_stats(worker.client_id, seq=1000))
                await sock.send(Message("stop_test", {"reason": "rogue"}, worker.client_id).serialize())
                await sock.send(Message("quit", {"stats_seq": 0}, worker.client_id).serialize())
            await guess.send(ready(worker.client_id, session="0" * 32))
            await asyncio.sleep(0.8)
        refusals = [
            r for r in caplog.records if "Refused a connection claiming to be worker" in r.getMessage()
        ]
        assert len(refusals) == 2, [r.getMessage() for r in caplog.records]
        assert master.dropped_messages["identity takeover"] == 2
        assert master.dropped_messages["foreign connection"] >= 3
        assert await nothing_arrives(same, 0.3)
        assert [n.id for n in master.nodes] == [worker.client_id] and master.state == "running"
        # the real worker keeps its route: its users are still counted and told what to do
        await asyncio.wait_for(master.start(6, 100), 5)
        await asyncio.sleep(0.5)
        assert worker.user_count == 6
        await finish_and_check_exact(real)
    finally:
        ctx.destroy(linger=0)


async def test_a_real_reconnect_proves_its_session_and_keeps_its_slot(real: RealCluster) -> None:
    master = real.new_master()
    worker = real.new_worker()
    await asyncio.wait_for(worker.connect(), 5)
    await run_load(real, 0.3)
    worker.transport.reset()  # what the watchdog does when the master goes quiet
    worker.connected.clear()
    await asyncio.wait_for(worker._register(), 5)
    node = master.nodes.get(worker.client_id)
    assert node is not None and node.connection == f"{worker.client_id}#1"
    await asyncio.wait_for(master.start(2, 100), 5)
    await asyncio.sleep(0.5)
    assert worker.user_count == 2 and master.dropped_messages["identity takeover"] == 0
    await finish_and_check_exact(real)


async def test_an_oversized_frame_is_refused_by_the_socket(real: RealCluster) -> None:
    master = real.new_master()
    worker = real.new_worker()
    await asyncio.wait_for(worker.connect(), 5)
    ctx = zmq.asyncio.Context()
    try:
        big = rogue(ctx, master.port, b"flood")
        payload = msgpack.packb(["stats", {"blob": b"x" * (MAX_MESSAGE_BYTES + 1)}, "flood"])
        await big.send(payload)
        await asyncio.sleep(0.5)
        # the peer was cut off before the frame was buffered: the master saw nothing of it
        assert master.dropped_messages.total() == 0
        assert [n.id for n in master.nodes] == [worker.client_id]
    finally:
        ctx.destroy(linger=0)

"""``horde --worker``: connect to a master and run the users it assigns until it says quit.

A worker started with ``-f -`` (or without ``-f`` where there is no ``locustfile.py``) first asks the
master for its locustfile (:func:`fetch_locustfile`), checks and unpacks it into a private temporary
directory, and then runs as if started with ``-f`` pointing there (``horde.cli.main`` rewrites the
arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import random
import shutil
import socket
import tempfile
import uuid
from pathlib import Path

import horde
from horde._version import PROTOCOL_VERSION, __version__
from horde.cli.common import Shutdown, blocking_watch, fail, first_of, make_environment
from horde.rpc.bundle import BundleError, unpack
from horde.rpc.keys import ClientKeys, KeyFileError, client_keys
from horde.rpc.protocol import Message
from horde.rpc.transport import BadFrame
from horde.rpc.zmq import RPCError, ZmqClient
from horde.runners.worker import WorkerRefusedError

logger = logging.getLogger("horde.main")

FETCH_RETRY = 1.0  # seconds between asks while the master does not answer


class FetchError(Exception):
    """The locustfile could not be had from the master (the message says why, in one line)."""


def worker_keys(options: argparse.Namespace) -> ClientKeys | None:
    """This worker's CurveZMQ keys from its flags (None: no keys); KeyFileError names a bad file."""
    return client_keys(options.keys, options.master_key, options.worker_key)


async def fetch_locustfile(options: argparse.Namespace, keys: ClientKeys | None) -> list[Path]:
    """Ask the master for its locustfile bundle; the unpacked locustfile paths (in a private temp dir).

    Raises FetchError when the master refuses, does not answer within ``--master-timeout``, or sends a
    bundle that fails its checks (hash, size, paths).
    """
    identity = f"{socket.gethostname()}_{uuid.uuid4().hex}"
    client = ZmqClient(options.master_host, options.master_port, identity, keys=keys)
    ask = Message("fetch_locustfile", {"version": __version__, "protocol": PROTOCOL_VERSION}, identity)
    logger.info("Asking the master at %s:%s for its locustfile", options.master_host, options.master_port)
    try:
        async with asyncio.timeout(options.master_timeout):
            reply = await _ask(client, ask)
    except TimeoutError:
        raise FetchError(
            f"no locustfile from the master at {options.master_host}:{options.master_port} within "
            f"{options.master_timeout:g} s (is it up, and does it accept this worker's key?)"
        ) from None
    finally:
        client.close()
    if reply.type == "refuse":
        reason = reply.data.get("reason") if isinstance(reply.data, dict) else None
        raise FetchError(f"the master did not send its locustfile: {reason or 'refused'}")
    directory = Path(tempfile.mkdtemp(prefix="horde-locustfile-"))  # 0700: only this user reads it
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    try:
        paths = unpack(reply.data, directory)
    except BundleError as e:
        raise FetchError(f"refused the master's locustfile: {e}") from e
    sha = reply.data["sha256"]
    logger.info(
        "Received the locustfile from the master (%d files, sha256 %s…) into %s",
        len(reply.data["files"]),
        sha[:12],
        directory,
    )
    return paths


async def _ask(client: ZmqClient, ask: Message) -> Message:
    delay = FETCH_RETRY
    while True:
        try:
            await client.send(ask)
        except RPCError as e:
            logger.warning("%s", e)
        try:
            async with asyncio.timeout(delay):
                while True:
                    reply = await client.recv()
                    if isinstance(reply, BadFrame):
                        logger.warning("Ignored an undecodable message from the master: %s", reply.detail)
                    elif reply.type in ("locustfile", "refuse"):
                        return reply
        except TimeoutError:
            delay = min(delay * 2, 5.0) * random.uniform(0.8, 1.2)


async def run_worker(options: argparse.Namespace, user_classes: list[type[horde.User]]) -> int:
    env = make_environment(options, user_classes, None)
    try:
        keys = worker_keys(options)
    except KeyFileError as e:
        return fail(str(e))
    try:
        runner = env.create_worker_runner(
            options.master_host,
            options.master_port,
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_liveness=options.heartbeat_liveness,
            stats_report_interval=options.stats_report_interval,
            master_timeout=options.master_timeout,
            keys=keys,
            **(
                {"protocol_version": options.protocol_version} if options.protocol_version is not None else {}
            ),
        )
    except RPCError as e:
        return fail(str(e))
    shutdown = Shutdown(runner.hurry)
    shutdown.install()
    code = 0
    try:
        await env.events.init.fire_async(environment=env, runner=runner, web_ui=None)
        connecting = asyncio.ensure_future(runner.connect(timeout=options.master_timeout))
        done = await first_of(connecting, shutdown.requested.wait())
        if connecting in done:
            try:
                connecting.result()
            except TimeoutError:
                code = fail(
                    f"could not reach the master at {options.master_host}:{options.master_port} "
                    f"within {options.master_timeout:g} s"
                )
            except WorkerRefusedError as e:
                code = fail(f"the master refused this worker: {e}")
            else:
                with blocking_watch():  # findings go out as warnings, which reach the master's log
                    await first_of(runner.wait_quit(), shutdown.requested.wait())
        await runner.quit()
    finally:
        shutdown.uninstall()
        await env.events.quitting.fire_async(environment=env, reverse=True)
        if code == 0:
            code = runner.exit_code or (2 if env.events.unhandled_errors else 0)
        await env.events.quit.fire_async(exit_code=code)
        await env.events.drain()
    return code

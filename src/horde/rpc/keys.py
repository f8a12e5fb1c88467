"""CurveZMQ keys for master-worker links: generating them, and loading what each end needs.

``horde keys generate DIR`` writes, with :func:`zmq.auth.create_certificates`' file format::

    DIR/master.key            the master's public key        (workers need it)
    DIR/master.key_secret     the master's secret key, 0600  (only the master needs it)
    DIR/worker.key            a worker public key            (the master authorises every worker*.key)
    DIR/worker.key_secret     that worker's secret key, 0600 (workers need it)

With ``--workers N`` the worker pair is ``worker-1`` … ``worker-N`` instead (one per worker, so one can be
revoked by deleting its public file). ``--keys DIR`` on both ends uses that layout (one Kubernetes Secret
mounted on the master and the workers); the finer flags keep the master's secret off the workers:

- master: ``--master-key master.key_secret --authorized-workers DIR_OF_WORKER_PUBLIC_KEYS``;
- worker: ``--master-key master.key`` (the public file) ``--worker-key worker-3.key_secret``.

Everything here raises :class:`KeyFileError` (one line naming the file) for a missing, unreadable or
malformed key file, so the command line can print it and exit 1.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from horde.exceptions import HordeError

MASTER = "master"
WORKER = "worker"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"


class KeyFileError(HordeError):
    """A key file is missing, unreadable or not a CurveZMQ key file (the message names it)."""


@dataclass(frozen=True)
class ServerKeys:
    """What the master needs: its own keypair and the public keys of the workers it lets in."""

    public: bytes
    secret: bytes
    authorized: frozenset[bytes]  # z85-encoded worker public keys
    source: str  # where the authorised keys came from (for the log line)


@dataclass(frozen=True)
class ClientKeys:
    """What a worker needs: its own keypair and the master's public key."""

    public: bytes
    secret: bytes
    server_public: bytes


def _read_cert(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.exists():
        raise KeyFileError(f"key file {path} does not exist")
    if not path.is_file():
        raise KeyFileError(f"key file {path} is not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from e
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as e:
        raise KeyFileError(f"{path} is not a CurveZMQ key file: {e}") from e
    if public is None or len(public) != 40:
        raise KeyFileError(f"{path} is not a CurveZMQ key file: no valid public-key line")
    if secret and (secret_key is None or len(secret_key) != 40):
        raise KeyFileError(f"{path} holds no secret key (pass the .key_secret file)")
    return public, secret_key


def _authorized(directory: Path) -> frozenset[bytes]:
    if not directory.is_dir():
        raise KeyFileError(f"authorised worker keys: {directory} is not a directory")
    keys: set[bytes] = set()
    try:
        files = sorted(directory.iterdir())
    except OSError as e:
        raise KeyFileError(f"cannot read authorised worker keys in {directory}: {e.strerror}") from e
    for path in files:
        if path.suffix == PUBLIC_SUFFIX and path.name != MASTER + PUBLIC_SUFFIX:
            keys.add(_read_cert(path, secret=False)[0])
    if not keys:
        raise KeyFileError(f"no worker public keys (*.key) in {directory}")
    return frozenset(keys)


def _worker_public_keys_in(directory: Path) -> frozenset[bytes]:
    """With ``--keys DIR`` on the master: every ``worker*.key`` in DIR."""
    keys = {
        _read_cert(path, secret=False)[0]
        for path in sorted(directory.glob(f"{WORKER}*{PUBLIC_SUFFIX}"))
        if path.name.endswith(PUBLIC_SUFFIX)
    }
    if not keys:
        raise KeyFileError(f"no worker public keys (worker*.key) in {directory}")
    return frozenset(keys)


def _keys_dir(directory: str) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise KeyFileError(f"key directory {directory} does not exist (make one with `horde keys generate`)")
    return path


def server_keys(
    keys_dir: str | None, master_key: str | None, authorized_workers: str | None
) -> ServerKeys | None:
    """The master's keys from its flags, or None when none of them is given (no CURVE)."""
    if not (keys_dir or master_key or authorized_workers):
        return None
    base = _keys_dir(keys_dir) if keys_dir else None
    if master_key:
        secret_path = Path(master_key)
    elif base is not None:
        secret_path = base / (MASTER + SECRET_SUFFIX)
    else:
        raise KeyFileError("--authorized-workers needs the master's secret key too: add --master-key FILE")
    public, secret = _read_cert(secret_path, secret=True)
    assert secret is not None
    if authorized_workers:
        authorized = _authorized(Path(authorized_workers))
        source = authorized_workers
    elif base is not None:
        authorized = _worker_public_keys_in(base)
        source = str(base)
    else:
        raise KeyFileError(
            "--master-key needs the workers' public keys: add --authorized-workers DIR or --keys"
        )
    return ServerKeys(public, secret, authorized, source)


def client_keys(keys_dir: str | None, master_key: str | None, worker_key: str | None) -> ClientKeys | None:
    """A worker's keys from its flags, or None when none of them is given (no CURVE)."""
    if not (keys_dir or master_key or worker_key):
        return None
    base = _keys_dir(keys_dir) if keys_dir else None
    if master_key:
        server_path = Path(master_key)
    elif base is not None:
        server_path = base / (MASTER + PUBLIC_SUFFIX)
    else:
        raise KeyFileError("--worker-key needs the master's public key too: add --master-key FILE")
    server_public, _ = _read_cert(server_path, secret=False)
    if worker_key:
        own = Path(worker_key)
    elif base is not None:
        own = base / (WORKER + SECRET_SUFFIX)
        if not own.exists():
            several = sorted(base.glob(f"{WORKER}-*{SECRET_SUFFIX}"))
            if several:
                raise KeyFileError(
                    f"{base} holds {len(several)} worker keys: pick this worker's with --worker-key FILE"
                )
    else:
        raise KeyFileError("--master-key on a worker needs its own key too: add --worker-key FILE")
    public, secret = _read_cert(own, secret=True)
    assert secret is not None
    return ClientKeys(public, secret, server_public)


# ---- generating ------------------------------------------------------------------------------------
def generate(directory: str | os.PathLike[str], workers: int = 0, *, force: bool = False) -> list[Path]:
    """Write the master keypair and one worker keypair (``workers`` > 0: that many); the paths written.

    Secret files are made readable by their owner only (0600); an existing key is never overwritten
    unless ``force``.
    """
    import zmq.auth

    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    names = [MASTER] + ([f"{WORKER}-{i}" for i in range(1, workers + 1)] if workers else [WORKER])
    if not force:
        existing = [base / (n + s) for n in names for s in (PUBLIC_SUFFIX, SECRET_SUFFIX)]
        clash = [str(p) for p in existing if p.exists()]
        if clash:
            raise KeyFileError(f"{clash[0]} already exists (pass --force to replace the keys)")
    written: list[Path] = []
    old_umask = os.umask(0o077)  # the secret file is never readable by others, not even for an instant
    try:
        for name in names:
            public, secret = zmq.auth.create_certificates(str(base), name)
            os.chmod(secret, stat.S_IRUSR | stat.S_IWUSR)
            os.chmod(public, 0o644)
            written += [Path(public), Path(secret)]
    finally:
        os.umask(old_umask)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``horde keys generate DIR [--workers N] [--force]``."""
    parser = argparse.ArgumentParser(
        prog="horde keys", description="CurveZMQ keys for authenticated, encrypted master-worker links."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a master keypair and worker keypair(s) into DIR")
    gen.add_argument("directory", metavar="DIR")
    gen.add_argument("--workers", type=int, default=0, metavar="N", help="one keypair per worker (N of them)")
    gen.add_argument("--force", action="store_true", help="replace keys that already exist")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    try:
        written = generate(args.directory, args.workers, force=args.force)
    except (KeyFileError, OSError) as e:
        print(f"horde keys: error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    base = Path(args.directory)
    print(
        f"\nMaster: --keys {base}  (or --master-key {base / 'master.key_secret'} --authorized-workers DIR)\n"
        f"Worker: --keys {base}  (or --master-key {base / 'master.key'} --worker-key <its .key_secret>)",
        file=sys.stderr,
    )
    return 0

"""``horde demo``: start the embedded demo target on a free loopback port and load-test it; with
``--serve``, only start the target (so the README's own locustfile can be pointed at it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from horde.demo.target import start_target

DEMO_LOCUSTFILE = Path(__file__).resolve().parent.parent / "demo" / "locustfile.py"


def run_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="horde demo", description="Load-test horde's built-in demo shop.")
    parser.add_argument("-u", "--users", default="50")
    parser.add_argument("-r", "--spawn-rate", default="10")
    parser.add_argument("-t", "--run-time", default="30s")
    parser.add_argument("--json", dest="json_file")
    parser.add_argument(
        "--serve", action="store_true", help="only start the demo target and print its URL (Ctrl-C ends it)"
    )
    parser.add_argument("--port", type=int, default=0, help="with --serve: the port (default: a free one)")
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.port)
    from horde.cli.main import run_cli

    target, url = start_target()
    print(f"Demo target (an aiohttp shop) is listening on {url}", flush=True)
    try:
        cli = [
            "-f",
            str(DEMO_LOCUSTFILE),
            "--host",
            url,
            "--headless",
            "-u",
            args.users,
            "-r",
            args.spawn_rate,
            "-t",
            args.run_time,
            "--exit-code-on-error",
            "0",
        ]
        if args.json_file:
            cli += ["--json", args.json_file]
        code = run_cli(cli)
    finally:
        target.terminate()
        target.wait(timeout=10)
    print(
        "\nThat was horde against its built-in demo shop (5% of /flaky fail on purpose).\n"
        "Point it at your own system:\n"
        "  1. write a locustfile (see README.md, or src/horde/demo/locustfile.py),\n"
        "  2. run: .venv/bin/horde -f locustfile.py --host http://your-system:8080 -u 100 -r 10 -t 5m --headless\n"
        "  (or try it against this shop first: `.venv/bin/horde demo --serve` in one terminal)\n"
    )
    return code


def _serve(port: int) -> int:
    target, url = start_target(port)
    print(f"Demo target listening on {url} (Ctrl-C stops it)", flush=True)
    print(f"  try: .venv/bin/horde -f locustfile.py --host {url} --headless -u 10 -r 5 -t 30s", flush=True)
    try:
        return target.wait()
    except KeyboardInterrupt:
        target.terminate()
        target.wait(timeout=10)
        return 0
    finally:
        sys.stdout.flush()

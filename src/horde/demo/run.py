"""``horde demo``: start the demo target on a free loopback port and load-test it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DEMO_LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def start_target() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "horde.demo.target", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the demo target did not start (it said {line!r})")
    return proc, line.removeprefix("listening on ")


def run_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="horde demo", description="Load-test horde's built-in demo shop.")
    parser.add_argument("-u", "--users", default="50")
    parser.add_argument("-r", "--spawn-rate", default="10")
    parser.add_argument("-t", "--run-time", default="30s")
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args(argv)
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
        "  2. run: horde -f locustfile.py --host http://your-system:8080 -u 100 -r 10 -t 5m --headless\n"
    )
    return code

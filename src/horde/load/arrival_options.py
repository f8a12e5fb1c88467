"""The open-model flags (``--arrival-rate``, ``--stages``, ``--max-users``, ``--pre-allocated``,
``--poisson``); each also comes from ``HORDE_*`` variables and config files like every option. The models
themselves are built by :func:`horde.load.arrival.model_from_options`."""

from __future__ import annotations

import argparse


def add_arrival_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("open model (arrival rates; instead of -u/-r)")
    add = group.add_argument
    add(
        "--arrival-rate",
        metavar="RATE",
        help="start this many iterations per second whatever the response times (200, 200/s, 3000/m)",
    )
    add(
        "--stages",
        metavar="STAGES",
        help="ramping arrival rate, linear between targets: '30s:50/s,2m:500/s,30s:0/s'",
    )
    add("--max-users", type=int, metavar="N", help="the most users the arrival pool may grow to")
    add("--pre-allocated", type=int, metavar="N", help="users created at the start of an arrival-rate test")
    add(
        "--poisson",
        action="store_true",
        default=None,
        help="random (Poisson) arrivals around the rate instead of evenly spaced ones",
    )

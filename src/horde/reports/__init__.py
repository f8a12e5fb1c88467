"""Outputs over the per-tick stats snapshot: console tables, the JSON and CSV reports, run comparison.

Every output implements :class:`~horde.reports.output.Output` (``start``/``on_tick``/``stop``) and reads
the same :class:`~horde.stats.snapshot.StatsSnapshot` each tick; see :mod:`horde.reports.output`.
"""

from horde.reports.console import ConsoleOutput, error_table, percentile_table, stats_table, summary
from horde.reports.json import JsonOutput, stats_to_dict, write_json
from horde.reports.output import Output, OutputPathError, describe

__all__ = [
    "ConsoleOutput",
    "JsonOutput",
    "Output",
    "OutputPathError",
    "describe",
    "error_table",
    "percentile_table",
    "stats_table",
    "stats_to_dict",
    "summary",
    "write_json",
]

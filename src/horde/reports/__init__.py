"""Reports rendered from :class:`horde.stats.RequestStats`: console tables and the JSON report."""

from horde.reports.console import error_table, percentile_table, stats_table, summary
from horde.reports.json import stats_to_dict, write_json

__all__ = ["error_table", "percentile_table", "stats_table", "stats_to_dict", "summary", "write_json"]

"""Chart data for the page: the run's StatsHistory as compact points, and the session's markers.

The page draws every chart from these, so a reload shows the whole run at the history's resolution (one
point per tick), not only what one browser tab happened to collect.
"""

from __future__ import annotations

from typing import Any

from horde.web.payloads import CHART_PERCENTILES

_MARKER_LABELS = {"start": "Start", "edit": "Edit", "stop": "Stop", "reset": "Reset"}


def chart_points(history: Any, since: float | None = None) -> list[dict[str, Any]]:
    """``[{"t", "users", "rps", "fps", "avg", "p": {"0.95": ms | None, ...}}]`` from the Aggregated series.

    Only the percentiles the page offers (``CHART_PERCENTILES``) that the history keeps are sent.
    """
    if history is None:
        return []
    kept = list(getattr(history, "percentiles", ()) or ())
    index = [(str(p), kept.index(p)) for p in CHART_PERCENTILES if p in kept]
    out = []
    for row in history.total_rows(since):
        values = row.current_percentiles
        out.append(
            {
                "t": row.time,
                "users": row.user_count,
                "rps": row.current_rps,
                "fps": row.current_fail_per_sec,
                "avg": row.avg_response_time,
                "p": {key: values[i] for key, i in index},
            }
        )
    return out


def markers(run: Any) -> list[dict[str, Any]]:
    """The session's markers (start, edit, stop, reset) as ``{"t", "kind", "label"}``."""
    out = []
    for m in getattr(run, "markers", None) or ():
        kind = str(m.get("kind", ""))
        text = str(m.get("text", ""))
        label = _MARKER_LABELS.get(kind, kind.title())
        out.append({"t": m.get("time"), "kind": kind, "label": f"{label}: {text}" if text else label})
    return out

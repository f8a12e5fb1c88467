"""Prometheus metrics: ``/metrics`` on the web UI, and ``--prometheus-port`` for headless runs and masters.

A custom collector reads the live :class:`~horde.stats.RequestStats` when scraped (nothing is computed
per request or per tick) and registers in its own ``CollectorRegistry``, never the global one, so
importing horde adds no metrics to a host application's registry. Metric families (all ``horde_``):

=============================================  =========  ==============================================
``horde_requests_total{method,name}``           counter    requests per entry (failed ones included)
``horde_request_failures_total{method,name}``   counter    failures per entry
``horde_errors_total{method,name,error}``       counter    occurrences per error-table row
``horde_response_time_seconds{method,name}``    histogram  timed requests; buckets from horde's histogram
``horde_response_bytes_total{method,name}``     counter    response content length
``horde_stats_start_time_seconds``              gauge      epoch s the counters count from (moves on reset)
``horde_users{user_class}``                     gauge      running users per class
``horde_target_users``                          gauge      users the run is heading for
``horde_state{state}``                          gauge      1 for the run's state, 0 for the others
``horde_workers{state}``                        gauge      worker rows per state (a local run: one row)
``horde_worker_users{worker}``                  gauge      users per worker
``horde_worker_cpu_percent{worker}``            gauge      generator CPU, per worker process
``horde_worker_loop_lag_seconds{worker}``       gauge      worst event-loop lateness of the last interval
``horde_worker_memory_bytes{worker}``           gauge      resident memory per worker process
``horde_info{version}``                         gauge      always 1
=============================================  =========  ==============================================

The ``Aggregated`` row is not exported: it is ``sum without (method, name)`` of the entries, and
exporting it too would double every ``sum()``. Counters drop to 0 on a stats reset, which ``rate()``
handles as a counter reset.

The histogram. horde keeps each entry's response times in exact log-linear buckets (see
:mod:`horde.stats.histogram`: exact below 128 µs, then 64 buckets per power of two). Prometheus wants
cumulative ``le`` buckets on a fixed set of bounds: :data:`BUCKET_BOUNDS` (seconds, plus ``+Inf``). The
count for a bound ``B`` is the sum of every horde bucket whose representative value (its midpoint, the
value horde reports its samples at) is ``<= B``. So the counts are *exact* counts, just at an effective
bound that is the horde bucket edge nearest ``B``: a bound that falls inside a horde bucket takes that
whole bucket on the side of its midpoint, never a fraction of it. The effective bound is within half a
bucket width of ``B``, at most 1/128 (0.78 %) of it in general; for the default bounds it is within
0.49 % (100 µs is exact; 1 ms counts samples up to 999 µs; 10 ms up to 9.983 ms; 100 ms up to
100.351 ms; 1 s up to 999.423 ms). Only samples lying in the one horde bucket around a bound can be
counted on the wrong side of it. ``_count`` is the number of timed requests (``+Inf``), ``_sum`` their
total time; requests counted without a time (``response_time=None``) are in ``horde_requests_total``
only.

Queries that work on these series::

    sum(rate(horde_requests_total[1m]))                                   # requests per second
    sum(rate(horde_request_failures_total[1m])) / sum(rate(horde_requests_total[1m]))   # failure ratio
    histogram_quantile(0.95, sum by (le) (rate(horde_response_time_seconds_bucket[1m])))  # p95, s
    histogram_quantile(0.99, sum by (le, name) (rate(horde_response_time_seconds_bucket[5m])))
    max(horde_worker_cpu_percent) > 90                                   # a saturated generator

Cost: a scrape formats ~35 lines per entry; with 100 entries of ~300 horde buckets each it takes about
30 ms of CPU (``benchmarks/outputs.py costs``), i.e. 0.2 % of a core at Prometheus' default 15-s interval.

Scrapes of :class:`PrometheusOutput` are served by ``prometheus_client``'s HTTP server thread. That thread
reads the run status the event loop cached at the last tick (an immutable ``RunStatus``) and copies each
entry's histogram dict in one C call under the GIL, so a bucket set, its ``+Inf`` and ``_count`` always
agree; ``_sum`` and the counters are read just after and may include a few more requests.

>>> from horde.stats import RequestStats
>>> stats = RequestStats()
>>> stats.record("GET", "/", 12.5, 100)
>>> 'horde_requests_total{method="GET",name="/"} 1.0' in metrics_text(stats)
True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from horde._version import __version__
from horde.stats.histogram import bucket_index, bucket_value

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult
    from horde.stats import RequestStats
    from horde.stats.snapshot import StatsSnapshot

logger = logging.getLogger(__name__)

#: Upper bounds (seconds) of the response-time histogram's cumulative buckets; ``+Inf`` is added.
BUCKET_BOUNDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    2.5,
    3.0,
    4.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
    60.0,
)
#: The content type to serve :func:`metrics_text` with (Prometheus text format).
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Run and worker states always exported (0 when absent), so their series do not come and go.
RUN_STATES = ("ready", "spawning", "running", "cleanup", "stopping", "stopped")
WORKER_STATES = ("ready", "spawning", "running", "stopped", "missing")


def bucket_cut(bound_seconds: float) -> int:
    """The highest horde bucket index counted in the ``le=bound_seconds`` bucket (see the module docstring).

    >>> bucket_cut(0.0001), bucket_cut(0.001)   # 100 µs is exact; 1 ms ends just below bucket [1000, 1007]
    (100, 316)
    """
    bound_us = round(bound_seconds * 1_000_000)
    idx = bucket_index(bound_us)
    return idx if bucket_value(idx) <= bound_us else idx - 1


def cumulative_counts(counts: Mapping[int, int], cuts: Sequence[int]) -> list[int]:
    """Cumulative sample counts at each cut (ascending), then the total for ``+Inf``."""
    out: list[int] = []
    items = sorted(counts.items())
    seen = 0
    pos = 0
    for cut in cuts:
        while pos < len(items) and items[pos][0] <= cut:
            seen += items[pos][1]
            pos += 1
        out.append(seen)
    out.append(seen + sum(n for _, n in items[pos:]))
    return out


def _label(value: float) -> str:
    return repr(float(value))


class HordeCollector(Collector):
    """Collects horde's metrics at scrape time from ``stats()`` and (optionally) ``status()``.

    ``status()`` returns the session's ``RunStatus`` (or anything with ``state``, ``user_classes_count``,
    ``target_user_count`` and ``workers`` — ``WorkerStatus`` rows); ``None`` omits the run metrics.
    """

    def __init__(
        self,
        stats: Callable[[], RequestStats | None],
        status: Callable[[], Any] | None = None,
        *,
        bounds: Sequence[float] = BUCKET_BOUNDS,
    ) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram bounds must be distinct and ascending")
        self._stats = stats
        self._status = status
        self._bounds = tuple(float(b) for b in bounds)
        self._cuts = [bucket_cut(b) for b in self._bounds]

    def describe(self) -> list[Metric]:
        return []  # no fixed set: registering must not call collect() (it reads live stats)

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("horde_info", "horde version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        stats = self._stats()
        if stats is not None:
            yield from self._request_metrics(stats)
        status = self._status() if self._status is not None else None
        if status is not None:
            yield from self._run_metrics(status)

    def _request_metrics(self, stats: RequestStats) -> Iterator[Metric]:
        labels = ["method", "name"]
        requests = CounterMetricFamily("horde_requests", "Requests made, per entry.", labels=labels)
        failures = CounterMetricFamily("horde_request_failures", "Failed requests, per entry.", labels=labels)
        content = CounterMetricFamily(
            "horde_response_bytes", "Response content length, per entry.", labels=labels, unit="bytes"
        )
        times = HistogramMetricFamily(
            "horde_response_time_seconds",
            "Response times of timed requests, from horde's exact histogram (bounds: see the docs).",
            labels=labels,
        )
        bounds = [_label(b) for b in self._bounds] + ["+Inf"]
        entries = list(stats.entries.values())  # one C-level copy: safe against the loop adding entries
        entries.sort(key=lambda e: (e.name, e.method))
        for entry in entries:
            key = [entry.method, entry.name]
            counts = entry.histogram.counts.copy()  # atomic under the GIL: buckets, +Inf, _count agree
            cumulative = cumulative_counts(counts, self._cuts)
            requests.add_metric(key, entry.num_requests)
            failures.add_metric(key, entry.num_failures)
            content.add_metric(key, entry.total_content_length)
            times.add_metric(
                key,
                list(zip(bounds, (float(c) for c in cumulative), strict=True)),
                sum_value=entry.total_response_time / 1000,
            )
        yield requests
        yield failures
        yield content
        yield times
        errors = CounterMetricFamily(
            "horde_errors", "Occurrences per error-table row.", labels=["method", "name", "error"]
        )
        for row in sorted(list(stats.errors.values()), key=lambda r: (r.name, r.method, r.error)):
            errors.add_metric([row.method, row.name, row.error], row.occurrences)
        yield errors
        start = GaugeMetricFamily(
            "horde_stats_start_time_seconds", "When the counters started counting (epoch s; moves on reset)."
        )
        start.add_metric([], stats.total.start_time)
        yield start

    def _run_metrics(self, status: Any) -> Iterator[Metric]:
        users = GaugeMetricFamily("horde_users", "Running users per user class.", labels=["user_class"])
        for name, n in sorted(dict(_attr(status, "user_classes_count", {}) or {}).items()):
            users.add_metric([name], n)
        yield users
        target = GaugeMetricFamily("horde_target_users", "Users the run is heading for.")
        target.add_metric([], float(_attr(status, "target_user_count", 0) or 0))
        yield target
        state = str(_attr(status, "state", "") or "")
        states = GaugeMetricFamily("horde_state", "1 for the run's current state.", labels=["state"])
        for name in _with_extra(RUN_STATES, [state] if state else []):
            states.add_metric([name], 1.0 if name == state else 0.0)
        yield states
        workers = list(_attr(status, "workers", ()) or ())
        by_state: dict[str, int] = {}
        for w in workers:
            s = str(_attr(w, "state", ""))
            by_state[s] = by_state.get(s, 0) + 1
        count = GaugeMetricFamily("horde_workers", "Worker rows per state.", labels=["state"])
        for name in _with_extra(WORKER_STATES, list(by_state)):
            count.add_metric([name], by_state.get(name, 0))
        yield count
        per_worker = {
            "users": GaugeMetricFamily("horde_worker_users", "Users per worker.", labels=["worker"]),
            "cpu": GaugeMetricFamily("horde_worker_cpu_percent", "CPU use per worker.", labels=["worker"]),
            "lag": GaugeMetricFamily(
                "horde_worker_loop_lag_seconds", "Worst event-loop lag, last interval.", labels=["worker"]
            ),
            "rss": GaugeMetricFamily(
                "horde_worker_memory_bytes", "Resident memory per worker.", labels=["worker"]
            ),
        }
        for w in sorted(workers, key=lambda w: (_attr(w, "index", 0), str(_attr(w, "id", "")))):
            wid = [str(_attr(w, "id", ""))]
            per_worker["users"].add_metric(wid, float(_attr(w, "user_count", 0) or 0))
            per_worker["cpu"].add_metric(wid, float(_attr(w, "cpu_percent", 0.0) or 0.0))
            per_worker["lag"].add_metric(wid, float(_attr(w, "loop_lag", 0.0) or 0.0))
            per_worker["rss"].add_metric(wid, float(_attr(w, "memory_rss", 0) or 0))
        yield from per_worker.values()


def _attr(obj: Any, name: str, default: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _with_extra(known: Iterable[str], seen: Iterable[str]) -> list[str]:
    out = list(known)
    out += sorted({s for s in seen if s not in out})
    return out


def make_registry(
    stats: Callable[[], RequestStats | None], status: Callable[[], Any] | None = None
) -> CollectorRegistry:
    """A fresh registry (not prometheus_client's global one) holding only horde's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HordeCollector(stats, status))
    return registry


def metrics_text(stats: RequestStats, status: Any = None) -> str:
    """The exposition text for the web UI's ``/metrics`` (serve it with :data:`CONTENT_TYPE`).

    Call it on the event loop (the web handler does): it reads ``stats`` directly.
    """
    registry = make_registry(lambda: stats, (lambda: status) if status is not None else None)
    return generate_latest(registry).decode("utf-8")


class PrometheusOutput:
    """Serves ``/metrics`` on ``host:port`` (127.0.0.1 by default) for headless runs and masters.

    The server starts at :meth:`open` (the CLI may call it early, so a port in use fails before the test
    with an ``OSError``) or at :meth:`start`. The run's status is cached at every tick by the event loop;
    the HTTP thread reads only that cached immutable status and the live stats (see the module docstring).
    ``stop`` keeps serving the final figures, so a last scrape sees the end totals and a web-mode master
    keeps its endpoint between tests; :meth:`close` (or the process exiting: it is a daemon thread) ends it.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._run: RunInfo | None = None
        self._stats: RequestStats | None = None
        self._status: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.registry = make_registry(lambda: self._stats, lambda: self._status)

    def description(self) -> str:
        return f"Prometheus: http://{self.host}:{self.port}/metrics"

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (``port=0`` picks a free one)."""
        if self._server is None:
            return self.host, self.port
        return self.host, int(self._server.server_port)

    def open(self) -> None:
        """Bind and serve now (idempotent)."""
        if self._server is None:
            self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)
            self.port = int(self._server.server_port)

    def start(self, run: RunInfo) -> None:
        self._run = run
        self._stats = run.env.stats
        self._status = run.status()
        self.open()

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        if self._run is not None:
            self._status = self._run.status()

    def stop(self, result: RunResult) -> None:
        self._stats = result.stats
        if self._run is not None:
            try:
                self._status = self._run.status()
            except Exception:  # the final figures matter more than the final state
                logger.debug("run status unavailable at stop", exc_info=True)

    def close(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


__all__ = [
    "BUCKET_BOUNDS",
    "CONTENT_TYPE",
    "HordeCollector",
    "PrometheusOutput",
    "bucket_cut",
    "cumulative_counts",
    "make_registry",
    "metrics_text",
]

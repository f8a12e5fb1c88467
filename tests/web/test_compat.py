"""Locust compatibility: /stats/requests against spec §2.5's key lists, CSV headers byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from horde.stats import RequestStats
from horde.web import downloads, payloads
from tests.web.conftest import WebCtx, until

# spec §2.5, "Top-level keys (runner present; observed, local runner, running)" (workers/worker_count:
# master only; extended_stats: plugins only)
TOP_LEVEL = {
    "stats",
    "errors",
    "current_rps",
    "current_fail_per_sec",
    "total_rps",
    "total_fail_per_sec",
    "fail_ratio",
    "current_response_time_percentiles",
    "state",
    "user_count",
}
LEGACY = {"current_response_time_percentile_50", "current_response_time_percentile_95"}
# spec §2.5, "`stats[]` entry (`StatsEntry.to_dict`, 15 keys)"
ENTRY = {
    "method",
    "name",
    "num_requests",
    "num_failures",
    "avg_response_time",
    "median_response_time",
    "min_response_time",
    "max_response_time",
    "avg_content_length",
    "current_rps",
    "current_fail_per_sec",
    "total_rps",
    "total_fail_per_sec",
    "response_time_percentile_0.95",
    "response_time_percentile_0.99",
}
ERROR = {"method", "name", "error", "occurrences", "first_seen", "last_seen"}
WORKER = {"id", "state", "user_count", "cpu_usage", "memory_usage"}
# what ContainerSolutions/locust_exporter reads (spec §10)
EXPORTER_ENTRY = {
    "method",
    "name",
    "num_requests",
    "num_failures",
    "avg_response_time",
    "current_fail_per_sec",
    "min_response_time",
    "max_response_time",
    "current_rps",
    "median_response_time",
    "avg_content_length",
}

REQUESTS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%\r\n"
)
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
    "Total Min Response Time,Total Max Response Time,Total Average Content Size\r\n"
)
FAILURES_HEADER = "Method,Name,Error,Occurrences,First Seen,Last Seen\r\n"
EXCEPTIONS_HEADER = "Count,Message,Traceback,Nodes\r\n"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@pytest.mark.slow  # waits for the 1-s ticks / the ~10-s current window
async def test_stats_requests_has_every_key_of_the_spec_with_its_type(web: WebCtx) -> None:
    await web.client.post("/swarm", data={"user_count": "2", "spawn_rate": "20"})
    await until(lambda: web.env.stats.total.num_failures >= 3, what="failures")
    body: dict[str, Any] = {}

    async def rate_shown() -> bool:
        nonlocal body
        body = await (await web.client.get("/stats/requests")).json()
        return bool(body["current_rps"] > 0)

    await until(rate_shown, timeout=15, what="a current rate")
    assert set(body) == TOP_LEVEL | LEGACY
    assert body["state"] == "running" and isinstance(body["user_count"], int)
    for key in ("current_rps", "current_fail_per_sec", "total_rps", "total_fail_per_sec", "fail_ratio"):
        assert _is_number(body[key]), key
    assert 0 <= body["fail_ratio"] <= 1
    assert set(body["current_response_time_percentiles"]) == {
        "response_time_percentile_0.5",
        "response_time_percentile_0.95",
    }
    assert (
        body["current_response_time_percentile_50"]
        == (body["current_response_time_percentiles"]["response_time_percentile_0.5"])
    )
    for row in body["stats"]:
        assert set(row) == ENTRY, row
        assert EXPORTER_ENTRY <= set(row)
        assert isinstance(row["method"], str) and isinstance(row["name"], str)
        assert isinstance(row["num_requests"], int) and isinstance(row["num_failures"], int)
        assert all(_is_number(row[k]) for k in ENTRY - {"method", "name"})
    last = body["stats"][-1]
    assert (last["method"], last["name"]) == ("", "Aggregated")
    keys = [(r["name"], r["method"]) for r in body["stats"][:-1]]
    assert keys == sorted(keys)
    for row in body["errors"]:
        assert set(row) == ERROR
        assert isinstance(row["occurrences"], int) and _is_number(row["first_seen"])
    # total_* is the whole-run average, current_* the ~10-s window; both positive while requests flow
    assert body["total_rps"] > 0 and body["current_rps"] > 0


def test_rows_are_capped_at_500_plus_aggregated() -> None:
    stats = RequestStats()
    for i in range(600):
        stats.record("GET", f"/item/{i:04d}", 1.0, 10, error=None if i % 2 else "boom")
    body = payloads.stats_requests(stats, state="running", user_count=1)
    assert len(body["stats"]) == 501
    assert body["stats"][-1]["name"] == "Aggregated"
    assert body["stats"][-1]["num_requests"] == 600  # the total covers every entry, shown or not
    assert len(body["errors"]) == 300
    capped = RequestStats()
    for i in range(600):
        capped.record("GET", f"/e/{i}", 1.0, 0, error="boom")
    assert len(payloads.stats_requests(capped, state="running", user_count=1)["errors"]) == 500


def test_workers_rows_have_locusts_keys() -> None:
    from horde.runners.status import WorkerStatus

    stats = RequestStats()
    rows = [WorkerStatus(id="w1", state="running", user_count=3, cpu_percent=12.5, memory_rss=1 << 20)]
    body = payloads.stats_requests(stats, state="running", user_count=3, workers=rows)
    assert body["worker_count"] == 1
    assert WORKER <= set(body["workers"][0])
    assert body["workers"][0]["cpu_usage"] == 12.5 and body["workers"][0]["memory_usage"] == 1 << 20


@pytest.mark.slow  # waits for the 1-s ticks / the ~10-s current window
async def test_csv_downloads_have_locusts_headers_byte_for_byte(web: WebCtx) -> None:
    await web.client.post("/swarm", data={"user_count": "2", "spawn_rate": "20"})
    await until(lambda: len(web.run.history) >= 2 and web.env.stats.errors, what="history and errors")
    for path, header, kind in (
        ("/stats/requests/csv", REQUESTS_HEADER, "requests"),
        ("/stats/requests_full_history/csv", HISTORY_HEADER, "requests_full_history"),
        ("/stats/failures/csv", FAILURES_HEADER, "failures"),
        ("/exceptions/csv", EXCEPTIONS_HEADER, "exceptions"),
    ):
        r = await web.client.get(path)
        assert r.status == 200, path
        assert r.content_type == "text/csv"
        disposition = r.headers["Content-Disposition"]
        assert disposition.startswith('attachment;filename="horde_') and disposition.endswith(f'_{kind}.csv"')
        assert "/" not in disposition.split("filename=")[1] and ":" not in disposition.split("filename=")[1]
        raw = await r.read()
        assert raw.decode().startswith(header), path
        assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF everywhere
    text = (await (await web.client.get("/stats/requests/csv")).read()).decode()
    lines = text.split("\r\n")
    assert lines[-2].startswith(",Aggregated,")  # empty Type on the total, which comes last
    assert lines[1].startswith("GET,/fail,")


def test_csv_rows_for_an_entry_without_requests_say_na() -> None:
    stats = RequestStats()
    stats.log_error("GET", "/never", "refused")
    text = downloads.requests_csv(stats)
    row = text.split("\r\n")[1].split(",")
    assert row[:4] == ["GET", "/never", "0", "1"]
    assert row[11:] == ["N/A"] * 11
    failures = downloads.failures_csv(stats).split("\r\n")
    assert failures[1].startswith("GET,/never,refused,1,")
    assert failures[1].endswith("Z") and len(failures[1].split(",")[4]) == len("2026-12-01T05:54:41Z")


def test_readable_percentiles_match_locust() -> None:
    from horde.reports.csv import readable_percentiles

    assert readable_percentiles((0.5, 0.999, 0.9999, 1.0)) == ["50%", "99.9%", "99.99%", "100%"]


def test_the_snapshot_path_gives_the_same_body_as_the_live_path() -> None:
    from horde.stats.snapshot import take_snapshot

    stats = RequestStats()
    for i in range(30):
        stats.record("GET", f"/p/{i % 3}", 1.0 + i, 100, error="boom" if i % 7 == 0 else None)
    stats.record("POST", "/p/0", 3.0, 10)
    live = payloads.stats_requests(stats, state="running", user_count=2)
    snap = payloads.stats_requests_from_snapshot(
        take_snapshot(stats, user_count=2), state="running", user_count=2
    )
    assert snap.keys() == live.keys()
    assert [r.keys() for r in snap["stats"]] == [r.keys() for r in live["stats"]]
    assert snap["stats"] == live["stats"]
    assert sorted(map(str, snap["errors"])) == sorted(map(str, live["errors"]))

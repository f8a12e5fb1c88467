"""CsvOutput and the CSV renderers: Locust's files byte for byte, plus a final write at the end."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

import horde.stats
from horde.clock import FakeClock
from horde.reports import JsonOutput, Output, OutputPathError
from horde.reports.csv import (
    CsvOutput,
    check_writable,
    exceptions_csv,
    failures_csv,
    history_csv,
    history_rows,
    readable_percentiles,
    stats_csv,
)
from horde.stats import RequestStats, StatsHistory, take_snapshot

from .fakes import T0, drive, finish, make_run

# The headers of ../shared/locust-webui-spec.md §3.2 to §3.5, verbatim.
STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
    "Total Min Response Time,Total Max Response Time,Total Average Content Size"
)
FAILURES_HEADER = "Method,Name,Error,Occurrences,First Seen,Last Seen"
EXCEPTIONS_HEADER = "Count,Message,Traceback,Nodes"
EXC = {
    "count": 2,
    "msg": "task crashed",
    "traceback": '  File "/x/task.py", line 363, in run\n    self.execute_next_task()\n',
    "nodes": {"local"},
}


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def run_with_outputs(
    tmp_path: Path, *, full_history: bool, seconds: int = 12
) -> tuple[CsvOutput, dict, object]:
    prefix = tmp_path / "out" / "run"
    out = CsvOutput(prefix, full_history=full_history)
    js = JsonOutput(tmp_path / "run.json")
    run = make_run()
    for o in (out, js):
        o.start(run)  # type: ignore[arg-type]
    drive(run, [out, js], seconds)
    # Traffic after the last tick: only the final write can show it.
    run.env.stats.record("GET", "/late", 5.0, 0)
    result = finish(run, [out, js], exceptions=(EXC,))
    return out, json.loads((tmp_path / "run.json").read_text()), result


def test_headers_are_byte_exact_and_lines_end_in_crlf(tmp_path: Path) -> None:
    out, _, _ = run_with_outputs(tmp_path, full_history=False)
    for path, header in (
        (out.stats_path, STATS_HEADER),
        (out.history_path, HISTORY_HEADER),
        (out.failures_path, FAILURES_HEADER),
        (out.exceptions_path, EXCEPTIONS_HEADER),
    ):
        data = path.read_bytes()
        assert data.startswith(header.encode() + b"\r\n"), path
        assert not data.startswith(b"\xef\xbb\xbf")
        assert data.endswith(b"\r\n")
        # Every record ends in CRLF; a bare LF only occurs inside a quoted traceback cell.
        assert data.count(b"\r\n") == len(read_rows(path)), path
    assert sorted(p.name for p in out.stats_path.parent.iterdir()) == [
        "run_exceptions.csv",
        "run_failures.csv",
        "run_stats.csv",
        "run_stats_history.csv",
    ]


def test_final_csv_totals_equal_the_json_totals(tmp_path: Path) -> None:
    out, report, result = run_with_outputs(tmp_path, full_history=False)
    rows = read_rows(out.stats_path)
    header, body = rows[0], rows[1:]
    assert body[-1][:2] == ["", "Aggregated"]
    assert [(r[1], r[0]) for r in body[:-1]] == sorted((r[1], r[0]) for r in body[:-1])
    json_rows = {(e["method"], e["name"]): e for e in report["stats"]}
    assert len(json_rows) == len(body)
    for r in body:
        e = json_rows[(r[0], r[1])]
        cells = dict(zip(header, r, strict=True))
        assert int(cells["Request Count"]) == e["num_requests"]
        assert int(cells["Failure Count"]) == e["num_failures"]
        assert float(cells["Average Response Time"]) == e["avg_response_time"]
        assert float(cells["Min Response Time"]) == e["min_response_time"]
        assert float(cells["Max Response Time"]) == e["max_response_time"]
        assert float(cells["Requests/s"]) == e["total_rps"]
        assert float(cells["Failures/s"]) == e["total_fail_per_sec"]
        assert int(cells["99%"]) == round(e["percentiles"]["0.99"])
    assert int(body[-1][2]) == result.stats.total.num_requests == 241  # the late request is in
    assert ["GET", "/late"] in [r[:2] for r in body]
    history = read_rows(out.history_path)
    assert int(history[-1][history[0].index("Total Request Count")]) == 241
    failures = read_rows(out.failures_path)
    assert sum(int(r[3]) for r in failures[1:]) == report["stats"][-1]["num_failures"]
    assert [(r["error"], r["occurrences"]) for r in report["errors"]] == [
        (r[2], int(r[3])) for r in failures[1:]
    ]


def test_number_formats_na_and_quoting() -> None:
    clock = FakeClock(T0)
    stats = RequestStats(clock)
    for rt in (10.0, 20.0, 30.0):
        clock.advance(1)
        stats.record("GET", "/", rt, 100)
    stats.record("GET", 'a,"b"', 1.5, 0, error='bad "x", y')
    stats.get("/idle", "POST")
    snap = take_snapshot(stats, user_count=3)
    text = stats_csv(snap)
    lines = text.split("\r\n")
    assert lines[0] == STATS_HEADER and lines[-1] == ""
    assert lines[1] == "GET,/,3,0,20,20.0,10.0,30.0,100.0,1.0,0.0,20,20,30,30,30,30,30,30,30,30,30"
    assert lines[2] == "POST,/idle,0,0,0,0.0,0.0,0.0,0.0,0.0,0.0," + ",".join(["N/A"] * 11)
    assert lines[3].startswith('GET,"a,""b""",1,1,2,1.5,1.5,1.5,0.0,0.333')
    assert lines[4].startswith(",Aggregated,4,1,10,15.375,1.5,30.0,75.0,1.333")
    assert list(csv.reader(io.StringIO(text, newline="")))[3][1] == 'a,"b"'
    failures = failures_csv(snap).split("\r\n")
    assert failures[1] == 'GET,"a,""b""","bad ""x"", y",1,2023-11-14T22:13:23Z,2023-11-14T22:13:23Z'
    history = history_rows(snap, full_history=True)
    assert [r[3] for r in history] == ["/", "/idle", 'a,"b"', "Aggregated"]
    assert history[0][:6] == [int(T0 + 3), 3, "GET", "/", "0.000000", "0.000000"]
    assert all(re.fullmatch(r"\d+\.\d{6}", r[4]) for r in history)
    assert history[1][6:17] == ["N/A"] * 11
    assert history[0][6:17] == [20, 20, 30, 30, 30, 30, 30, 30, 30, 30, 30]  # current window, not cumulative
    assert history[-1][17:] == [4, 1, 10, 15.375, 1.5, 30.0, 75.0]
    assert [r[3] for r in history_rows(snap)] == ["Aggregated"]
    clock.advance(60)
    later = history_rows(take_snapshot(stats, user_count=0))[0]
    assert later[6:17] == [0] * 11  # an empty window reads 0, as in Locust
    assert (
        exceptions_csv([EXC])
        .split("\r\n")[1]
        .startswith('2,task crashed,"  File ""/x/task.py"", line 363, in run\n')
    )


def test_full_history_rows_share_the_tick_timestamp(tmp_path: Path) -> None:
    out, _, _ = run_with_outputs(tmp_path, full_history=True, seconds=5)
    rows = read_rows(out.history_path)[1:]
    by_time: dict[str, list[str]] = {}
    for r in rows:
        by_time.setdefault(r[0], []).append(r[3])
    ticks = ["/", "/api/items", '/q?x="a,b"', "Aggregated"]
    assert list(by_time.values())[:-1] == [ticks] * 4
    # The last tick, then the final write (same second, new totals) with the late entry.
    assert list(by_time.values())[-1] == [*ticks, "/", "/api/items", "/late", '/q?x="a,b"', "Aggregated"]


def test_the_final_write_is_not_duplicated_when_nothing_changed(tmp_path: Path) -> None:
    out = CsvOutput(tmp_path / "r")
    run = make_run()
    out.start(run)  # type: ignore[arg-type]
    drive(run, [out], 3)
    finish(run, [out])
    assert len(read_rows(out.history_path)) == 1 + 3
    run.env.stats.record("GET", "/", 1.0, 0)
    finish(run, [out])  # a second stop appends, it never truncates the history
    assert len(read_rows(out.history_path)) == 1 + 4


def test_renderers_equal_the_files_and_percentiles_follow_the_constant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _, result = run_with_outputs(tmp_path, full_history=False, seconds=3)
    with open(out.stats_path, newline="", encoding="utf-8") as f:
        assert f.read() == stats_csv(result.snapshot)  # type: ignore[attr-defined]
    with open(out.exceptions_path, newline="", encoding="utf-8") as f:
        assert f.read() == exceptions_csv([EXC])
    monkeypatch.setattr(horde.stats, "PERCENTILES_TO_REPORT", (0.5, 0.95, 0.999))
    snap = take_snapshot(result.stats, user_count=1)  # type: ignore[attr-defined]
    assert stats_csv(snap).split("\r\n")[0].endswith("Failures/s,50%,95%,99.9%")
    assert readable_percentiles([0.25, 0.9999, 1.0]) == ["25%", "99.99%", "100%"]


def test_history_csv_renders_a_stats_history() -> None:
    run = make_run()
    drive(run, [], 25)
    text = history_csv(run.history)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert ",".join(rows[0]) == HISTORY_HEADER
    assert len(rows) == 1 + 25 + 3 * 3  # every tick's Aggregated row, entries every 10 s
    totals = history_csv(run.history, full_history=False)
    assert len(list(csv.reader(io.StringIO(totals, newline="")))) == 26
    assert history_csv(StatsHistory()).split("\r\n")[0] == HISTORY_HEADER


def test_csv_output_protocol_description_and_bad_prefixes(tmp_path: Path) -> None:
    out = CsvOutput(tmp_path / "x", full_history=True)
    assert isinstance(out, Output)
    assert out.description().startswith("CSV: ") and "full history" in out.description()
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputPathError, match="is not a directory"):
        check_writable(tmp_path / "file" / "prefix")
    (tmp_path / "d_stats.csv").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        CsvOutput(tmp_path / "d").start(make_run())  # type: ignore[arg-type]
    check_writable(tmp_path / "new" / "dir" / "p")
    assert (tmp_path / "new" / "dir").is_dir()


def test_renderers_take_live_stats_too() -> None:
    run = make_run()
    drive(run, [], 3)
    stats = run.env.stats
    snap = take_snapshot(stats, user_count=0)
    from horde.reports.csv import requests_csv

    assert requests_csv(stats) == stats_csv(stats) == stats_csv(snap)
    assert failures_csv(stats) == failures_csv(snap)

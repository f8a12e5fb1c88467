"""Console tables and the JSON report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from horde.clock import FakeClock
from horde.reports import error_table, percentile_table, stats_table, stats_to_dict, summary, write_json
from horde.reports.console import _fit, _ms
from horde.stats import PERCENTILES_TO_REPORT, RequestStats

START = 1_000.0
LONG_NAME = "/api/v1/organisations/[org]/projects/[project]/environments/[env]/deployments/[id]/logs"


def sample_stats() -> tuple[FakeClock, RequestStats]:
    clock = FakeClock(START)
    stats = RequestStats(clock)
    for i in range(1, 101):  # 1 s of /fast at 1..100 ms, then /slow and a failing /login
        clock.advance(0.0625)
        stats.record("GET", "/fast", float(i), 200)
    for rt in (1000.0, 2000.0, 4000.0):
        clock.advance(0.0625)
        stats.record("POST", "/slow", rt, 10)
    for _ in range(4):
        clock.advance(0.0625)
        stats.record("POST", "/login", 5.0, 0, error=ConnectionRefusedError(111, "Connection refused"))
    stats.record("GET", LONG_NAME, 12.0, 0)
    stats.get("/never", "GET")  # an entry that exists but has no requests
    return clock, stats


def rows_by_name(table: str) -> dict[str, str]:
    rows = {}
    for line in table.splitlines()[2:]:
        if line.startswith("-"):
            continue
        name = line[9:].split("  ")[0].strip()
        rows[name] = line
    return rows


# -- console ------------------------------------------------------------------------------------------


def test_stats_table_lists_every_entry_then_aggregated() -> None:
    _, stats = sample_stats()
    table = stats_table(stats, current=False)
    lines = table.splitlines()
    for column in ("Type", "Name", "# reqs", "# fails", "Avg", "Min", "Max", "Med", "req/s", "failures/s"):
        assert column in lines[0]
    assert lines[1].startswith("---") and lines[-2].startswith("---")
    assert lines[-1].split()[0] == "Aggregated"
    names = [line.split()[1] for line in lines[2:-2]]
    assert names == sorted(names)
    rows = rows_by_name(table)
    fast = rows["/fast"].split()
    assert fast[:3] == ["GET", "/fast", "100"]
    assert fast[3] == "0(0.00%)"
    assert fast[5:9] == ["50", "1.0", "100", "50"]  # avg 50.5 → 50, min, max, median
    login = rows["/login"].split()
    assert login[2:4] == ["4", "4(100.00%)"]
    aggregated = lines[-1].split()
    assert aggregated[1] == str(stats.num_requests) == "108"
    assert aggregated[2] == "4(3.70%)"
    assert rows["/never"].split()[2] == "0"
    assert float(aggregated[-2]) == pytest.approx(stats.total.total_rps, abs=0.01)


def test_live_table_uses_current_rates() -> None:
    clock, stats = sample_stats()
    clock.advance(60)
    stats.record("GET", "/fast", 1.0, 0)
    live = stats_table(stats, current=True).splitlines()[-1].split()
    final = stats_table(stats, current=False).splitlines()[-1].split()
    assert float(live[-2]) == stats.total.current_rps == 0.0  # nothing in the last seconds' window
    assert float(final[-2]) == pytest.approx(stats.total.total_rps, abs=0.01)
    assert float(final[-2]) > 0


def test_long_names_are_shortened_in_the_middle() -> None:
    _, stats = sample_stats()
    table = stats_table(stats, max_name_width=40)
    row = next(line for line in table.splitlines() if line.startswith("GET") and "..." in line)
    shortened = _fit(LONG_NAME, 40)
    assert len(shortened) == 40
    assert shortened.startswith("/api/v1/") and shortened.endswith("/logs")
    assert shortened in row
    assert all(len(line) <= len(table.splitlines()[0]) + 20 for line in table.splitlines())


def test_percentile_table_values() -> None:
    _, stats = sample_stats()
    table = percentile_table(stats)
    header = table.splitlines()[0].split()
    assert header[:2] == ["Type", "Name"]
    assert header[2:13] == ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
    fast = rows_by_name(table)["/fast"].split()
    assert fast[2:13] == ["50", "66", "75", "80", "90", "95", "98", "99", "100", "100", "100"]
    assert fast[-1] == "100"
    slow = rows_by_name(table)["/slow"].split()
    assert slow[-2] == "4000" and slow[-1] == "3"  # p100 is the exact max
    assert int(slow[2]) == pytest.approx(2000, rel=0.01)
    never = rows_by_name(table)["/never"].split()
    assert never[2:13] == ["N/A"] * 11
    assert table.splitlines()[-1].split()[0] == "Aggregated"


def test_current_percentile_table_shows_na_for_an_empty_window() -> None:
    clock, stats = sample_stats()
    assert rows_by_name(percentile_table(stats, current=True))["/fast"].split()[2] == "50"
    clock.advance(30)
    stats.record("POST", "/slow", 3000.0, 0)
    rows = rows_by_name(percentile_table(stats, current=True))
    assert rows["/fast"].split()[2] == "N/A"
    assert int(rows["/slow"].split()[2]) == pytest.approx(3000, rel=0.01)


def test_error_table_and_summary() -> None:
    _, stats = sample_stats()
    stats.record("GET", "/fast", 1.0, 0, error="500 Server Error")
    table = error_table(stats)
    lines = table.splitlines()
    assert lines[0].startswith("# occurrences") and "Error" in lines[0]
    assert lines[2].split(maxsplit=1) == [
        "4",
        "POST /login: ConnectionRefusedError(111, 'Connection refused')",
    ]
    assert lines[3].split(maxsplit=1) == ["1", "GET /fast: 500 Server Error"]
    text = summary(stats)
    assert "Request statistics" in text and "Response time percentiles" in text and "Error report" in text
    assert stats_table(stats, current=False) in text
    assert percentile_table(stats) in text
    assert table in text


def test_summary_of_empty_stats_has_no_error_section() -> None:
    text = summary(RequestStats(FakeClock(START)))
    assert "Aggregated" in text and "Error report" not in text


def test_millisecond_formatting() -> None:
    assert [_ms(v) for v in (0.0, 0.347, 3.47, 34.7, 3470.2, None)] == [
        "0",
        "0.35",
        "3.5",
        "35",
        "3470",
        "N/A",
    ]


# -- JSON ---------------------------------------------------------------------------------------------

ENTRY_KEYS = {
    "method": str,
    "name": str,
    "num_requests": int,
    "num_failures": int,
    "min_response_time": float,
    "max_response_time": float,
    "avg_response_time": float,
    "median_response_time": float,
    "total_rps": float,
    "fail_ratio": float,
    "total_fail_per_sec": float,
    "avg_content_length": float,
}
REQUIRED_PERCENTILES = ("0.5", "0.9", "0.95", "0.99", "0.999", "1.0")


def check_contract(data: dict[str, Any]) -> None:
    assert isinstance(data["stats"], list) and data["stats"][-1]["name"] == "Aggregated"
    for entry in data["stats"]:
        for key, typ in ENTRY_KEYS.items():
            assert isinstance(entry[key], typ), (entry["name"], key, entry[key])
            if typ is float:
                assert math.isfinite(entry[key])
        for p in REQUIRED_PERCENTILES:
            assert isinstance(entry["percentiles"][p], float)
    for row in data["errors"]:
        assert {"method", "name", "error", "occurrences"} <= set(row)
    assert isinstance(data["user_count"], int)
    assert isinstance(data["start_time"], float) and isinstance(data["end_time"], float)


def test_json_report_contract(tmp_path: Path) -> None:
    _, stats = sample_stats()
    path = tmp_path / "report.json"
    write_json(path, stats, user_count=25, start_time=START, end_time=START + 60)
    data = json.loads(path.read_text())
    check_contract(data)
    assert data == json.loads(
        json.dumps(stats_to_dict(stats, user_count=25, start_time=START, end_time=START + 60))
    )
    by_name = {(e["method"], e["name"]): e for e in data["stats"]}
    fast = by_name[("GET", "/fast")]
    assert fast["num_requests"] == 100 and fast["max_response_time"] == 100.0
    assert fast["percentiles"]["0.5"] == pytest.approx(50.0, rel=1 / 128)
    assert fast["percentiles"]["1.0"] == 100.0
    assert set(fast["percentiles"]) == {str(p) for p in PERCENTILES_TO_REPORT}
    assert by_name[("", "Aggregated")]["num_requests"] == 108
    assert data["errors"] == [
        {
            "method": "POST",
            "name": "/login",
            "error": "ConnectionRefusedError(111, 'Connection refused')",
            "occurrences": 4,
            "first_seen": pytest.approx(START + 0.0625 * 104),
            "last_seen": pytest.approx(START + 0.0625 * 107),
        }
    ]
    assert (data["user_count"], data["start_time"], data["end_time"], data["duration"]) == (
        25,
        START,
        START + 60,
        60.0,
    )
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind


def test_json_report_of_zero_requests_is_finite() -> None:
    stats = RequestStats(FakeClock(START))
    stats.get("/idle", "GET")
    stats.log_error("GET", "/down", "refused")
    data = stats_to_dict(stats, user_count=0, start_time=START, end_time=START)
    check_contract(data)
    idle = data["stats"][1]
    assert idle["name"] == "/idle" and idle["num_requests"] == 0 and idle["percentiles"]["0.99"] == 0.0
    json.dumps(data, allow_nan=False)


def test_write_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    _, stats = sample_stats()
    write_json("-", stats, user_count=1, start_time=START, end_time=START + 1)
    check_contract(json.loads(capsys.readouterr().out))

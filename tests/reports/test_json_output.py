"""JsonOutput: the --json contract, plus schema_version and exact per-entry histograms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from horde.reports import JsonOutput, Output, OutputPathError
from horde.reports.json import SCHEMA_VERSION, check_writable
from horde.stats import HISTOGRAM_SCHEME, PERCENTILES_TO_REPORT, Histogram

from .fakes import drive, finish, make_run


def test_json_output_writes_the_result_with_histograms(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.json"
    check_writable(path)  # creates the missing directory
    out = JsonOutput(path)
    assert isinstance(out, Output) and str(path) in out.description()
    run = make_run()
    out.start(run)  # type: ignore[arg-type]
    drive(run, [out], 5)
    assert not path.exists()  # written once, at the end
    exc = {"count": 2, "msg": "boom", "traceback": "tb", "nodes": {"w2", "w1"}}
    result = finish(run, [out], exceptions=(exc,), warnings=("w",), stop_reason="run time", exit_code=1)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 2
    assert (data["user_count"], data["start_time"], data["end_time"]) == (
        5,
        result.start_time,
        result.end_time,
    )
    assert data["exceptions"] == [{"count": 2, "msg": "boom", "traceback": "tb", "nodes": ["w1", "w2"]}]
    assert (data["stop_reason"], data["exit_code"], data["warnings"]) == ("run time", 1, ["w"])
    assert data["locustfile"] == "locustfile.py" and data["user_classes_count"] == {"Web": 5}
    rows = data["stats"]
    assert [r["name"] for r in rows][-1] == "Aggregated"
    assert rows[-1]["num_requests"] == result.stats.total.num_requests == 100
    for row in rows:
        hist = row["histogram"]
        assert hist["scheme"] == HISTOGRAM_SCHEME
        assert hist["count"] == row["num_requests"] - row["num_none_requests"]
        h = Histogram.from_wire(hist["buckets"])
        assert h.count == hist["count"]
        # The percentiles of the report are exactly those of its histogram (clamped to the exact min/max).
        qs = list(PERCENTILES_TO_REPORT)
        expected = [us / 1000 for us in h.percentiles(qs, hist["min_us"], hist["max_us"])]
        assert [row["percentiles"][str(p)] for p in qs] == expected
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    out = JsonOutput("-")
    run = make_run()
    out.start(run)  # type: ignore[arg-type]
    drive(run, [out], 2)
    finish(run, [out])
    assert json.loads(capsys.readouterr().out)["stats"][-1]["name"] == "Aggregated"


def test_unwritable_json_paths_fail_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for bad, reason in ((tmp_path, "is a directory"), (tmp_path / "file" / "r.json", "is not a directory")):
        with pytest.raises(OutputPathError, match=reason) as info:
            check_writable(bad)
        assert "\n" not in str(info.value) and str(bad) in str(info.value)
        with pytest.raises(OutputPathError):
            JsonOutput(bad).start(make_run())  # type: ignore[arg-type]
    check_writable("-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the check leaves nothing behind

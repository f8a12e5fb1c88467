"""ConsoleOutput: the live table from the tick's snapshot, the final report at stop."""

from __future__ import annotations

import io

import pytest

from horde.reports import ConsoleOutput, Output, describe, summary
from horde.reports.console import exceptions_table, final_report, stats_table, workers_table
from horde.runners.status import WorkerStatus

from .fakes import drive, finish, make_run

EXC = {
    "count": 3,
    "msg": "KeyError('x')",
    "traceback": 'File "a.py", line 1\n  f()\nKeyError: x\n',
    "nodes": {"local"},
}


def test_console_output_is_an_output_and_describes_itself() -> None:
    out = ConsoleOutput(io.StringIO(), interval=2, only_summary=False)
    assert isinstance(out, Output)
    assert describe(out) == "console: live table every 2 s"
    assert describe(ConsoleOutput(only_summary=True)) == "console: final summary only"
    assert describe(object()) == "object"
    with pytest.raises(ValueError):
        ConsoleOutput(interval=0)


def test_live_tables_every_interval_then_the_final_report() -> None:
    run = make_run()
    stream = io.StringIO()
    out = ConsoleOutput(stream, interval=2.0)
    out.start(run)  # type: ignore[arg-type]
    drive(run, [out], 7)
    live = stream.getvalue()
    assert live.count("Type     Name") == 3  # ticks 2, 4, 6 of 7
    last_table = live.rstrip("\n").split("Type     Name")[-1]
    assert "Aggregated" in last_table
    stream.seek(0)
    stream.truncate()
    result = finish(run, [out], exceptions=(EXC,), warnings=("the CPU was at 95 %",))
    text = stream.getvalue()
    assert text == final_report(result) + "\n"  # type: ignore[arg-type]
    assert text.startswith(summary(result.snapshot))
    assert stats_table(result.snapshot, current=False) in text
    assert "User exceptions:" in text and "KeyError('x')" in text
    assert "Warnings:\n  - the CPU was at 95 %" in text
    assert "Workers:" not in text  # a local run has no workers table


def test_only_summary_prints_no_live_table_and_final_false_prints_nothing() -> None:
    run = make_run()
    stream = io.StringIO()
    quiet = ConsoleOutput(stream, interval=1, only_summary=True, final=False)
    quiet.start(run)  # type: ignore[arg-type]
    drive(run, [quiet], 5)
    finish(run, [quiet])
    assert stream.getvalue() == ""


def test_workers_table_is_printed_when_a_worker_changes_state() -> None:
    run = make_run()
    stream = io.StringIO()
    out = ConsoleOutput(stream, only_summary=True)
    out.start(run)  # type: ignore[arg-type]
    a = WorkerStatus(id="host_a", index=0, state="running", user_count=3, cpu_percent=12.4, loop_lag=0.0031)
    b = WorkerStatus(id="host_b", index=1, state="spawning", user_count=1)
    run.workers = (a, b)
    drive(run, [out], 3)
    assert stream.getvalue().count(" worker ") == 1
    run.workers = (a, WorkerStatus(id="host_b", index=1, state="running", user_count=2))
    drive(run, [out], 1)
    assert stream.getvalue().count(" worker ") == 2
    table = workers_table(run.workers)
    assert table.splitlines()[1].split() == ["host_a", "running", "3", "12", "3"]
    result = finish(run, [out], workers=run.workers)
    assert "Workers:\n" + table in final_report(result)  # type: ignore[arg-type]


def test_exceptions_table_accepts_the_runner_mapping_and_result_rows() -> None:
    rows = [EXC, {**EXC, "count": 9, "msg": "Other()"}]
    text = exceptions_table(rows)
    assert text.splitlines()[2].split() == ["9", "Other()"]
    assert exceptions_table({1: rows[0], 2: rows[1]}) == text
    assert "    f()" in text and "KeyError: x" not in text  # the end of the traceback, minus its last line

"""ThresholdOutput: live verdicts per tick, the console status line, abort after a grace period, the end."""

from __future__ import annotations

from typing import Any

import pytest

from horde.clock import FakeClock
from horde.reports.output import Output, describe
from horde.stats import RequestStats
from horde.thresholds import ThresholdOutput, parse_all, parse_threshold, summary_lines
from tests.thresholds.fakes import FakeEnv, FakeResult, FakeRun, new_stats, record, snap


def thresholds(*texts: str) -> list[Any]:
    parsed, problems = parse_all(texts)
    assert not problems
    return parsed


class Harness:
    """A run on a fake clock: one second of traffic, then one tick, as the session does."""

    def __init__(self, output: ThresholdOutput) -> None:
        self.clock, self.stats = new_stats()
        self.run = FakeRun(FakeEnv(self.stats))
        self.output = output
        output.start(self.run)

    def second(self, ms: float, n: int = 10, *, error: object = None) -> None:
        record(self.stats, self.clock, "GET", "/items", [ms] * n, every=1 / n, error=error)
        self.output.on_tick(snap(self.stats))


class Aborts:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


def test_it_is_an_output_and_describes_itself() -> None:
    output = ThresholdOutput(thresholds("p95<300ms", "fail_ratio<1%"), abort=True, abort_after=30)
    assert isinstance(output, Output)
    assert describe(output) == (
        "Thresholds: p95<300ms, fail_ratio<1% (the test stops at the first breach after a 30 s grace period)"
    )
    assert describe(ThresholdOutput(thresholds("avg<1"))) == "Thresholds: avg<1"
    assert describe(ThresholdOutput(thresholds("avg<1"), abort=True)) == (
        "Thresholds: avg<1 (the test stops at the first breach)"
    )


def test_verdicts_are_evaluated_on_every_tick_over_the_whole_run() -> None:
    h = Harness(ThresholdOutput(thresholds("avg<300", "requests>=30")))
    h.second(100)
    assert [v.ok for v in h.output.verdicts] == [True, False]
    h.second(700)  # the whole run's average is now 400 ms
    assert [v.ok for v in h.output.verdicts] == [False, False]
    assert h.output.verdicts[0].observed == pytest.approx(400.0, rel=0.01)
    h.second(100)  # cumulative: 300 ms, 30 requests
    assert [v.ok for v in h.output.verdicts] == [False, True]
    h.second(100)
    assert [v.ok for v in h.output.verdicts] == [True, True]


def test_abort_waits_for_the_grace_period_on_the_snapshots_clock() -> None:
    aborts = Aborts()
    h = Harness(ThresholdOutput(thresholds("p95<300ms"), abort=True, abort_after=30, on_abort=aborts))
    h.second(412)  # the first tick: the grace period starts here
    for _ in range(29):
        h.second(412)
    assert aborts.reasons == [] and h.output.aborted is None  # breached throughout, but in grace
    assert "abort on breach in 1 s" in h.output.status_line()
    h.second(412)  # 30 s after the first tick
    assert len(aborts.reasons) == 1
    reason = aborts.reasons[0]
    assert reason.startswith("threshold p95<300ms breached: observed ")
    assert reason == f"threshold p95<300ms breached: observed {h.output.verdicts[0].observed_text}"
    assert h.output.aborted == reason
    for _ in range(5):
        h.second(412)
    assert len(aborts.reasons) == 1  # once
    assert h.output.status_line().endswith("| test stopped at the breach")


def test_abort_without_grace_stops_at_the_first_breached_tick() -> None:
    aborts = Aborts()
    h = Harness(ThresholdOutput(thresholds("avg<300", "max<1s"), abort=True, on_abort=aborts))
    h.second(100)
    assert aborts.reasons == []
    h.second(2000)
    assert aborts.reasons == ["threshold avg<300 breached: observed 1050 ms (and 1 more)"]


def test_a_breach_that_heals_within_the_grace_period_does_not_abort() -> None:
    aborts = Aborts()
    h = Harness(ThresholdOutput(thresholds("avg<300"), abort=True, abort_after=5, on_abort=aborts))
    h.second(1000)  # early, slow warm-up
    h.second(100)
    assert h.output.verdicts[0].ok is False
    for _ in range(6):
        h.second(50)  # the cumulative average falls below 300 before the grace period ends
    assert h.output.verdicts[0].ok is True and aborts.reasons == []


def test_without_abort_a_breach_is_only_reported() -> None:
    aborts = Aborts()
    h = Harness(ThresholdOutput(thresholds("p95<300"), on_abort=aborts))
    for _ in range(3):
        h.second(500)
    assert aborts.reasons == [] and h.output.aborted is None
    line = h.output.status_line()
    assert line.startswith("thresholds: 0/1 ok, 1 BREACHED p95<300 (")
    assert "abort" not in line


def test_a_stats_reset_starts_a_new_grace_period_and_re_arms_the_abort() -> None:
    aborts = Aborts()
    h = Harness(ThresholdOutput(thresholds("avg<300"), abort=True, abort_after=3, on_abort=aborts))
    for _ in range(4):
        h.second(500)
    assert len(aborts.reasons) == 1
    h.clock.advance(5)
    h.stats.reset_all()  # a new test (or "reset stats" in the UI)
    for _ in range(3):
        h.second(500)
    assert len(aborts.reasons) == 1  # in the new test's grace period
    h.second(500)
    assert len(aborts.reasons) == 2


def test_no_abort_once_the_runner_is_stopping() -> None:
    aborts = Aborts()
    h = Harness(ThresholdOutput(thresholds("avg<300"), abort=True, on_abort=aborts))
    h.run.env.runner.state = "stopped"  # the session's final tick comes after the stop
    h.second(500)
    assert aborts.reasons == [] and h.output.aborted is None
    assert h.output.verdicts[0].ok is False
    h.run.env.runner.state = "running"
    h.second(500)
    assert len(aborts.reasons) == 1


def test_abort_works_without_a_run_too() -> None:
    aborts = Aborts()
    clock, stats = new_stats()
    output = ThresholdOutput(thresholds("max<10"), abort=True, on_abort=aborts)
    record(stats, clock, "GET", "/", [20.0])
    output.on_tick(snap(stats))  # no start(run): library use on a snapshot stream
    assert aborts.reasons == ["threshold max<10 breached: observed 20 ms"]


def test_a_failing_abort_callback_is_called_once_and_its_error_surfaces() -> None:
    calls: list[str] = []

    def broken(reason: str) -> None:
        calls.append(reason)
        raise RuntimeError("cannot stop")

    h = Harness(ThresholdOutput(thresholds("avg<1"), abort=True, on_abort=broken))
    with pytest.raises(RuntimeError):  # the session logs it and counts an unhandled error
        h.second(5)
    h.second(5)
    assert len(calls) == 1


def test_status_line_states() -> None:
    output = ThresholdOutput(thresholds("avg<300", "/none: p95<1", "requests>1"))
    assert output.status_line() == "thresholds: 3 waiting for the first tick"
    h = Harness(output)
    h.second(100)
    assert output.status_line() == "thresholds: 2/3 ok, 1 no data"
    many = Harness(ThresholdOutput(thresholds("avg<1", "max<1", "min<1", "p50<1000")))
    many.second(5)
    assert many.output.status_line() == ("thresholds: 1/4 ok, 3 BREACHED avg<1 (5 ms), max<1 (5 ms) +1")
    armed = Harness(ThresholdOutput(thresholds("avg<300"), abort=True, abort_after=2))
    armed.second(1)
    assert armed.output.status_line() == "thresholds: 1/1 ok | abort on breach in 2 s"
    armed.second(1)
    armed.second(1)
    assert armed.output.status_line() == "thresholds: 1/1 ok | abort on breach armed"


def test_extra_sources_are_read_only_when_a_threshold_uses_them() -> None:
    reads: list[int] = []

    def dropped() -> float:
        reads.append(1)
        return 3.0

    used = Harness(
        ThresholdOutput(thresholds("dropped_iterations==0"), sources={"dropped_iterations": dropped})
    )
    used.second(10)
    assert used.output.verdicts[0].observed == 3.0 and used.output.verdicts[0].ok is False
    assert len(reads) == 1
    unused = Harness(ThresholdOutput(thresholds("avg<10"), sources={"dropped_iterations": dropped}))
    unused.second(1)
    assert len(reads) == 1
    absent = Harness(ThresholdOutput(thresholds("dropped_iterations==0")))
    absent.second(1)
    assert absent.output.verdicts[0].ok is None


def final_result(stats: RequestStats, clock: FakeClock, **kw: Any) -> FakeResult:
    return FakeResult(stats=stats, snapshot=snap(stats), end_time=clock.time(), **kw)


def test_final_verdicts_come_from_the_result_snapshot_and_stats() -> None:
    h = Harness(ThresholdOutput(thresholds("avg<300", "p97<300")))
    h.second(100)
    assert h.output.final is None
    record(h.stats, h.clock, "GET", "/items", [5000.0] * 10)  # after the last tick
    h.output.stop(final_result(h.stats, h.clock))
    assert h.output.final is not None
    assert [v.ok for v in h.output.final] == [False, False]
    assert not h.output.final[1].approximate  # exact: the result's own stats
    assert h.output.verdicts == h.output.final


def test_final_verdicts_prefer_those_the_session_put_in_the_result() -> None:
    h = Harness(ThresholdOutput(thresholds("avg<300")))
    h.second(100)
    given = tuple(h.output.final_verdicts(snap(h.stats), h.stats))
    record(h.stats, h.clock, "GET", "/items", [5000.0] * 10)
    assert h.output.result_verdicts(final_result(h.stats, h.clock, thresholds=given)) == list(given)
    h.output.stop(final_result(h.stats, h.clock, thresholds=given))
    assert h.output.final == list(given) and given[0].ok is True


def test_summary_lines_and_warnings() -> None:
    h = Harness(ThresholdOutput(thresholds("p95<300ms", "fail_ratio<1%", "GET /x: p99<800ms")))
    h.second(400)
    assert h.output.warnings() == []  # no data is normal early in a run
    h.output.stop(final_result(h.stats, h.clock))
    lines = h.output.summary_lines()
    assert lines[0] == "Thresholds: 1 of 3 breached, 1 without data"
    assert lines[1].split() == ["FAIL", "p95<300ms", "observed", *lines[1].split()[3:]]
    assert lines[1].startswith("  FAIL     p95<300ms          observed ")
    assert lines[2] == "  pass     fail_ratio<1%      observed 0 %"
    assert lines[3] == "  no data  GET /x: p99<800ms  no request GET /x yet"
    assert h.output.warnings() == [
        "Threshold GET /x: p99<800ms had no data at the end (no request GET /x yet); check its scope and metric"
    ]
    ok = Harness(ThresholdOutput(thresholds("avg<300")))
    ok.second(1)
    assert summary_lines(ok.output.verdicts) == [
        "Thresholds: all 1 passed",
        "  pass     avg<300  observed 1 ms",
    ]
    assert summary_lines([]) == []


def test_the_output_keeps_its_own_list_of_thresholds() -> None:
    given = [parse_threshold("avg<300")]
    output = ThresholdOutput(given)
    given.append(parse_threshold("max<1"))
    assert [t.expression for t in output.thresholds] == ["avg<300"]

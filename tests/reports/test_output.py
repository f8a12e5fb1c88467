"""The Output protocol: any object with start/on_tick/stop is an output; describe() reads its one line."""

from __future__ import annotations

from typing import Any

from horde.reports import Output, describe
from horde.reports.csv import CsvOutput
from horde.reports.json import JsonOutput

from .fakes import drive, finish, make_run


class Recorder:
    """A test-only output: what a new output module looks like."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start(self, run: Any) -> None:
        self.calls.append(("start", run))

    def on_tick(self, snapshot: Any) -> None:
        self.calls.append(("tick", snapshot.total.num_requests))

    def stop(self, result: Any) -> None:
        self.calls.append(("stop", result.snapshot.total.num_requests))

    def description(self) -> str:
        return "recorder: keeps every call\nsecond line ignored"


class NoStop:
    def start(self, run: Any) -> None: ...
    def on_tick(self, snapshot: Any) -> None: ...


def test_structural_outputs() -> None:
    assert isinstance(Recorder(), Output)
    assert not isinstance(NoStop(), Output)
    assert isinstance(CsvOutput("x"), Output) and isinstance(JsonOutput("x.json"), Output)
    assert describe(Recorder()) == "recorder: keeps every call"
    assert describe(NoStop()) == "NoStop"


def test_every_output_sees_the_same_snapshots() -> None:
    run = make_run()
    a, b = Recorder(), Recorder()
    for out in (a, b):
        out.start(run)
    drive(run, [a, b], 3)
    finish(run, [a, b])
    assert a.calls == b.calls
    assert [c[0] for c in a.calls] == ["start", "tick", "tick", "tick", "stop"]
    assert a.calls[-1][1] == a.calls[-2][1] == 60

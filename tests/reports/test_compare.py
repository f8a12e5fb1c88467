"""horde compare: side by side from the exact histograms, a verdict, exit codes, bad input."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from horde.clock import FakeClock
from horde.reports.compare import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REGRESSED,
    CompareError,
    Rule,
    compare,
    main,
    render_text,
)
from horde.reports.json import report_dict
from horde.stats import RequestStats, take_snapshot

T0 = 1_700_000_000.0


def recorded_run(
    seed: int, *, slowdown: float = 1.0, fail_every: int = 50, rps: int = 100, names=("/", "/cart")
) -> dict[str, Any]:
    """A 30-s run on the fake clock, reported exactly as --json writes it."""
    clock = FakeClock(T0)
    stats = RequestStats(clock)
    rnd = random.Random(seed)
    for i in range(30 * rps):
        clock.advance(1 / rps)
        name = names[i % len(names)]
        base = 20.0 if name == "/" else 80.0
        error = "500" if i % fail_every == 0 else None
        stats.record("GET", name, rnd.lognormvariate(0, 0.3) * base * slowdown, 100, error=error)
    snap = take_snapshot(stats, user_count=10)
    return report_dict(snap, stats, user_count=10, start_time=T0, end_time=clock.time())


def write(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(path)


RULES = ["p95>+10%", "fail_ratio>+0.5pp", "rps<-5%"]


def test_a_known_regression_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path, "base.json", recorded_run(1))
    new = write(tmp_path, "new.json", recorded_run(2, slowdown=1.3, fail_every=20))
    argv = [base, new, *(f"--fail-on={r}" for r in RULES)]
    assert main(argv) == EXIT_REGRESSED
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("REGRESSED: ")
    assert "Aggregated: p95 +" in out and "fail_ratio +3.0pp > +0.5pp" in out
    assert "rps" not in out.splitlines()[-1]  # the rate did not fall
    c = compare(base, new, RULES)
    assert c.regressed and c.exit_code == 3
    failed = {(v.where, v.rule.metric) for v in c.violations}
    # Every 20th request fails, and those all land on "/" (even indices).
    assert failed == {(w, m) for w in ("Aggregated", "GET /") for m in ("p95", "fail_ratio")} | {
        ("GET /cart", "p95")
    }
    total = next(ck for ck in c.checks if ck.where == "Aggregated" and ck.rule.metric == "p95")
    assert 25 < total.rule.change(total.base, total.new) < 35  # about +30 %


def test_a_known_non_regression_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path, "base.json", recorded_run(1))
    new = write(tmp_path, "new.json", recorded_run(2))  # same load, other random draws
    assert main([base, new, *(f"--fail-on={r}" for r in RULES)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "OK: no rule failed (3 rule(s), 9 check(s))"
    header = out.splitlines()[1].split()
    assert header[:2] == ["Type", "Name"] and "p95" in header and "req/s" in header
    assert [line.split()[0] for line in out.splitlines()[3:6]] == ["GET", "GET", "Aggregated"]
    assert main([base, new]) == EXIT_OK  # no rules: a table and no verdict


def test_percentiles_come_exactly_from_the_histograms(tmp_path: Path) -> None:
    data = recorded_run(3)
    c = compare(data, data, ["p99.9>+0%", "p42>+0%"])
    assert not c.regressed and len(c.checks) == 2 * 3
    total = c.entries[-1]
    assert total.name == "Aggregated" and total.base is not None
    for key, listed in data["stats"][-1]["percentiles"].items():
        assert total.base.percentile(float(key)) == listed
    assert c.metrics[-2:] == ("p99.9", "p42")


def test_markdown_and_junit_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path, "base.json", recorded_run(1))
    new = write(tmp_path, "new.json", recorded_run(2, slowdown=1.3))
    assert main([base, new, "--fail-on", "p95>+10%", "--format", "markdown"]) == EXIT_REGRESSED
    md = capsys.readouterr().out
    assert md.splitlines()[2].startswith("| Type | Name | requests |") and "| --- |" in md
    assert md.rstrip().splitlines()[-1].startswith("❌ REGRESSED")
    junit = tmp_path / "junit.xml"
    assert (
        main([base, new, "--fail-on", "p95>+10%", "--fail-on", "rps<-5%", "--format=junit", "-o", str(junit)])
        == 3
    )
    assert capsys.readouterr().out.startswith("REGRESSED")
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "6" and suite.get("failures") == "3"
    cases = suite.findall("testcase")
    assert {c.get("name") for c in cases if c.find("failure") is not None} == {
        "Aggregated: p95>+10%",
        "GET /: p95>+10%",
        "GET /cart: p95>+10%",
    }


def test_entries_in_one_run_only_and_min_requests(tmp_path: Path) -> None:
    base = recorded_run(1, names=("/", "/cart", "/old"))
    new = recorded_run(2, names=("/", "/cart", "/new"))
    c = compare(base, new, ["p95>+1000%"], min_requests=5000)
    assert [(e.name, e.base is None, e.new is None) for e in c.entries] == [
        ("/", False, False),
        ("/cart", False, False),
        ("/new", True, False),
        ("/old", False, True),
        ("Aggregated", False, False),
    ]
    assert [ck.where for ck in c.checks] == ["Aggregated"]  # the entries have fewer than 5000 requests
    text = render_text(c)
    assert "(new)" in text and "(gone)" in text


def test_rules_parse_and_measure() -> None:
    r = Rule.parse("p95>+10%")
    assert (r.metric, r.op, r.limit, r.unit) == ("p95", ">", 10.0, "%")
    assert r.violated(100, 111) and not r.violated(100, 110)
    assert Rule.parse("fail_ratio>+0.5pp").violated(0.01, 0.016)
    assert Rule.parse("rps<-5%").violated(100, 94) and not Rule.parse("rps<-5%").violated(100, 96)
    assert Rule.parse("p99 > 20ms").violated(100, 121)
    assert Rule.parse("failures>0").violated(0, 1)
    assert Rule.parse("fail_ratio>+10%").violated(0.0, 0.001)  # from 0 to anything is +inf %
    for bad, why in (
        ("p95", "expected METRIC"),
        ("latency>+1%", "unknown metric"),
        ("rps>+1pp", "fail_ratio only"),
        ("rps>+1ms", "response times only"),
        ("fail_ratio>0.1", "pp or %"),
        ("p101>+1%", "within p0..p100"),
        ("p>+1%", "unknown metric"),
    ):
        with pytest.raises(CompareError, match=why):
            Rule.parse(bad)


def bad_inputs(tmp_path: Path) -> list[tuple[str, str]]:
    good = recorded_run(1)
    no_total = {**good, "stats": good["stats"][:-1]}
    bad_scheme = json.loads(json.dumps(good))
    bad_scheme["stats"][0]["histogram"]["scheme"] = "hdr-42"
    bad_entry = json.loads(json.dumps(good))
    del bad_entry["stats"][1]["num_requests"]
    return [
        (str(tmp_path / "missing.json"), "cannot read"),
        (write(tmp_path, "text.json", "{not json"), "not JSON"),
        (write(tmp_path, "locust.json", [{"name": "/", "method": "GET"}]), "a Locust --json file?"),
        (write(tmp_path, "other.json", {"hello": 1}), 'no "stats" list'),
        (write(tmp_path, "future.json", {**good, "schema_version": 99}), "newer than this horde reads"),
        (write(tmp_path, "nototal.json", no_total), "no Aggregated row"),
        (write(tmp_path, "scheme.json", bad_scheme), "scheme 'hdr-42' is unknown"),
        (write(tmp_path, "entry.json", bad_entry), "stats[1] lacks a number 'num_requests'"),
    ]


def test_bad_files_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", recorded_run(1))
    for path, why in bad_inputs(tmp_path):
        for argv in ([path, good], [good, path]):
            assert main(argv) == EXIT_BAD_INPUT, path
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and err.startswith("horde compare: ") and why in err, err
            assert path in err
    other = write(tmp_path, "other.json", recorded_run(1, names=("/a", "/b")))
    assert main([good, other]) == EXIT_BAD_INPUT
    assert "no request name in common" in capsys.readouterr().err
    assert main([good, good, "--fail-on", "p95>>1"]) == EXIT_BAD_INPUT
    assert "bad --fail-on rule" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main([good])
    assert exit_info.value.code == 2


def test_schema_1_reports_compare_on_their_listed_percentiles(tmp_path: Path) -> None:
    old = recorded_run(1)
    old.pop("schema_version")
    for e in old["stats"]:
        e.pop("histogram")
    c = compare(old, recorded_run(2), ["p95>+10%"])
    assert not c.regressed and len(c.checks) == 3
    with pytest.raises(CompareError, match="needs the histograms"):
        compare(old, recorded_run(2), ["p97>+10%"])

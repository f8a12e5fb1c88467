"""JUnit XML: one test case per threshold, checked against the JUnit schema CI servers read.

The rules below are those of Jenkins' ``junit-10.xsd`` (the schema GitLab, Jenkins and most reporters
accept): which attributes each element must and may carry, which children it may hold, and the time
format. ``xmlschema`` is not a dependency; when it happens to be installed, the same rules are also
checked as a real XSD.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from horde.thresholds import JUnitOutput, ThresholdOutput, Verdict, evaluate_all, junit_xml, parse_all
from horde.thresholds.junit import FAILURE_TYPE, classname
from tests.thresholds.fakes import T0, FakeEnv, FakeResult, FakeRun, new_stats, record, snap

# element: (required attributes, optional attributes, allowed children)
SCHEMA: dict[str, tuple[set[str], set[str], set[str]]] = {
    "testsuites": (set(), {"name", "time", "tests", "failures", "errors"}, {"testsuite"}),
    "testsuite": (
        {"name", "tests", "failures", "errors"},
        {"group", "time", "skipped", "timestamp", "hostname", "id", "package", "file", "log", "url"},
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
    ),
    "properties": (set(), set(), {"property"}),
    "property": ({"name", "value"}, set(), set()),
    "testcase": (
        {"name"},
        {"time", "classname", "group"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "failure": (set(), {"type", "message"}, set()),
    "error": (set(), {"type", "message"}, set()),
    "skipped": (set(), {"type", "message"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def schema_problems(element: ET.Element) -> list[str]:
    """Every way ``element`` and its descendants break the schema's rules (empty when valid)."""
    problems: list[str] = []
    rule = SCHEMA.get(element.tag)
    if rule is None:
        return [f"unknown element <{element.tag}>"]
    required, optional, children = rule
    attrs = set(element.attrib)
    problems += [f"<{element.tag}> lacks {a!r}" for a in sorted(required - attrs)]
    problems += [f"<{element.tag}> may not carry {a!r}" for a in sorted(attrs - required - optional)]
    if "time" in element.attrib and element.tag in ("testsuites", "testsuite"):
        if not SUREFIRE_TIME.fullmatch(element.attrib["time"]):
            problems.append(f"<{element.tag}> time {element.attrib['time']!r} is not a SUREFIRE_TIME")
    for child in element:
        if child.tag not in children:
            problems.append(f"<{child.tag}> may not be inside <{element.tag}>")
        problems += schema_problems(child)
    return problems


def verdicts() -> list[Verdict]:
    clock, stats = new_stats()
    record(stats, clock, "GET", "/items", [400.0] * 50)
    record(stats, clock, "POST", '/q?a=<b>&c="d"', [10.0] * 5, error="HTTP 500")
    parsed, problems = parse_all(
        [
            "p95<300ms",  # breached
            "fail_ratio<50%",  # met
            "GET /items: avg<1s",  # met
            'POST /q?a=<b>&c="d": requests>10',  # breached, awkward characters
            "GET /missing: p99<800ms",  # no data
        ]
    )
    assert not problems
    return evaluate_all(parsed, snap(stats), stats=stats)


def test_the_document_follows_the_junit_schema() -> None:
    text = junit_xml(verdicts(), time=61.5, timestamp=T0, hostname="ci-1", properties={"host": "http://x"})
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert schema_problems(root) == []


def test_counts_cases_failures_and_skips() -> None:
    root = ET.fromstring(junit_xml(verdicts(), time=61.5, timestamp=T0, hostname="ci-1"))
    assert root.attrib == {
        "name": "horde thresholds",
        "tests": "5",
        "failures": "2",
        "errors": "0",
        "time": "61.500",
    }
    (suite,) = root.findall("testsuite")
    assert suite.attrib == {
        "name": "horde thresholds",
        "tests": "5",
        "failures": "2",
        "errors": "0",
        "skipped": "1",
        "time": "61.500",
        "timestamp": "2023-11-14T22:13:20",
        "hostname": "ci-1",
    }
    cases = suite.findall("testcase")
    assert [c.attrib["name"] for c in cases] == [
        "p95<300ms",
        "fail_ratio<50%",
        "GET /items: avg<1s",
        'POST /q?a=<b>&c="d": requests>10',
        "GET /missing: p99<800ms",
    ]
    assert [c.attrib["classname"] for c in cases] == [
        "horde.thresholds.Aggregated",
        "horde.thresholds.Aggregated",
        "horde.thresholds.GET /items",
        'horde.thresholds.POST /q?a=<b>&c="d"',
        "horde.thresholds.GET /missing",
    ]
    outcome = [(len(c.findall("failure")), len(c.findall("skipped"))) for c in cases]
    assert outcome == [(1, 0), (0, 0), (0, 0), (1, 0), (0, 1)]


def test_a_breach_is_a_failure_with_the_observed_value() -> None:
    v = verdicts()[0]
    case = ET.fromstring(junit_xml([v])).find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib == {"type": FAILURE_TYPE, "message": v.text}
    assert v.text.startswith("p95 of all requests < 300 ms: observed ")
    assert failure.text is not None
    assert f"observed:  {v.observed_text}" in failure.text and "threshold: p95<300ms" in failure.text


def test_no_data_is_a_skipped_case() -> None:
    v = verdicts()[-1]
    skipped = ET.fromstring(junit_xml([v])).find("testsuite/testcase/skipped")
    assert skipped is not None and skipped.attrib == {"message": "no data: no request GET /missing yet"}


def test_properties_name_the_version_and_leave_out_unknowns() -> None:
    root = ET.fromstring(junit_xml([], properties={"host": "http://x", "locustfile": None}))
    props = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert set(props) == {"horde.version", "host"} and props["host"] == "http://x"
    assert schema_problems(root) == []


def test_an_empty_suite_is_valid() -> None:
    root = ET.fromstring(junit_xml([]))
    assert root.attrib["tests"] == "0" and schema_problems(root) == []
    assert root.find("testsuite/testcase") is None


def test_classname_per_scope() -> None:
    by_expr = {v.expression: v for v in verdicts()}
    assert classname(by_expr["p95<300ms"]) == "horde.thresholds.Aggregated"
    assert classname(by_expr["GET /items: avg<1s"], prefix="x") == "x.GET /items"


XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:complexType name="result" mixed="true">
    <xs:attribute name="type" type="xs:string"/>
    <xs:attribute name="message" type="xs:string"/>
  </xs:complexType>
  <xs:element name="testsuites">
    <xs:complexType>
      <xs:sequence><xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
      <xs:attribute name="name" type="xs:string"/>
      <xs:attribute name="time" type="xs:string"/>
      <xs:attribute name="tests" type="xs:string"/>
      <xs:attribute name="failures" type="xs:string"/>
      <xs:attribute name="errors" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuite">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element name="properties">
          <xs:complexType><xs:sequence>
            <xs:element name="property" minOccurs="0" maxOccurs="unbounded">
              <xs:complexType>
                <xs:attribute name="name" type="xs:string" use="required"/>
                <xs:attribute name="value" type="xs:string" use="required"/>
              </xs:complexType>
            </xs:element>
          </xs:sequence></xs:complexType>
        </xs:element>
        <xs:element name="testcase">
          <xs:complexType>
            <xs:choice minOccurs="0" maxOccurs="unbounded">
              <xs:element name="skipped" type="result"/>
              <xs:element name="error" type="result"/>
              <xs:element name="failure" type="result"/>
            </xs:choice>
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="time" type="xs:string"/>
            <xs:attribute name="classname" type="xs:string"/>
          </xs:complexType>
        </xs:element>
      </xs:choice>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="tests" type="xs:string" use="required"/>
      <xs:attribute name="failures" type="xs:string" use="required"/>
      <xs:attribute name="errors" type="xs:string" use="required"/>
      <xs:attribute name="time" type="xs:string"/>
      <xs:attribute name="skipped" type="xs:string"/>
      <xs:attribute name="timestamp" type="xs:string"/>
      <xs:attribute name="hostname" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def test_xsd_validation_when_xmlschema_is_installed() -> None:
    xmlschema = pytest.importorskip("xmlschema")  # not a dependency: the structural test above always runs
    xmlschema.XMLSchema(XSD).validate(junit_xml(verdicts(), time=1.0, timestamp=T0))


def test_junit_output_writes_the_file_at_stop_from_the_result(tmp_path: Path) -> None:
    clock, stats = new_stats()
    record(stats, clock, "GET", "/", [500.0] * 3)
    parsed, _ = parse_all(["p95<300", "requests>=3"])
    given = tuple(evaluate_all(parsed, snap(stats), stats=stats))
    path = tmp_path / "reports" / "thresholds.xml"
    output = JUnitOutput(path)
    assert output.description() == f"JUnit XML: {path} at the end (one test case per threshold)"
    output.start(FakeRun(FakeEnv(stats)))  # type: ignore[arg-type]
    output.on_tick(snap(stats))
    assert not path.exists()
    output.stop(FakeResult(stats=stats, snapshot=snap(stats), thresholds=given, exit_code=3))  # type: ignore[arg-type]
    root = ET.fromstring(path.read_text(encoding="utf-8"))
    assert schema_problems(root) == []
    assert root.attrib["tests"] == "2" and root.attrib["failures"] == "1"
    assert root.attrib["time"] == "60.000"
    props = {p.attrib["name"]: p.attrib["value"] for p in root.iter("property")}
    assert props["exit_code"] == "3" and props["locustfile"] == "locustfile.py"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["thresholds.xml"]  # no temporary file left


def test_junit_output_asks_the_checker_when_the_result_has_no_verdicts(tmp_path: Path) -> None:
    clock, stats = new_stats()
    record(stats, clock, "GET", "/", [500.0] * 3)
    parsed, _ = parse_all(["p95<300"])
    checker = ThresholdOutput(parsed)
    path = tmp_path / "t.xml"
    result = FakeResult(stats=stats, snapshot=snap(stats))
    JUnitOutput(path, checker).stop(result)  # type: ignore[arg-type]
    checker.stop(result)  # type: ignore[arg-type]  # stopped after the JUnit output: same verdicts
    root = ET.fromstring(path.read_text(encoding="utf-8"))
    assert root.attrib["failures"] == "1"
    assert checker.final is not None and checker.final[0].ok is False

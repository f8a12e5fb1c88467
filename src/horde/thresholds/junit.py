"""JUnit XML for CI (``--junit FILE``): one ``<testcase>`` per threshold.

The shape follows the JUnit schema CI servers read (Jenkins' ``junit-10.xsd``, which GitLab, GitHub
reporters and Azure accept too)::

    <testsuites name= tests= failures= errors= time=>
      <testsuite name= tests= failures= errors= skipped= time= timestamp= hostname=>
        <properties><property name= value=/>…</properties>
        <testcase classname="horde.thresholds.GET /items" name="GET /items: p99&lt;800ms" time="0">
          <failure type="ThresholdBreached" message="p99 of GET /items &lt; 800 ms: observed 912 ms">…</failure>
        </testcase>
        <testcase …><skipped message="no data: no request GET /x yet"/></testcase>
      </testsuite>
    </testsuites>

A breached threshold is a ``<failure>``, one without data is ``<skipped>`` (it neither passed nor
failed); ``errors`` is always 0, since a threshold that could not be evaluated is a configuration error
reported before the run starts. ``classname`` is ``horde.thresholds`` plus the scope (``Aggregated``
for all requests), so reports group the thresholds of one entry; ``name`` is the expression as written.
The schema allows ``skipped`` as an attribute of ``<testsuite>`` only, not of ``<testsuites>``.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from horde._version import __version__
from horde.thresholds.evaluate import Verdict

if TYPE_CHECKING:
    from horde.reports.output import RunInfo, RunResult
    from horde.stats.snapshot import StatsSnapshot
    from horde.thresholds.output import ThresholdOutput

#: The ``type`` of a breach's ``<failure>``.
FAILURE_TYPE = "ThresholdBreached"


def classname(verdict: Verdict, prefix: str = "horde.thresholds") -> str:
    """``horde.thresholds.Aggregated``, ``horde.thresholds.GET /items``, ``horde.thresholds./items``."""
    scope = verdict.threshold.scope
    return f"{prefix}.{scope.text or 'Aggregated'}"


def junit_xml(
    verdicts: Sequence[Verdict],
    *,
    suite_name: str = "horde thresholds",
    time: float = 0.0,
    timestamp: float | None = None,
    hostname: str | None = None,
    properties: Mapping[str, object] | None = None,
) -> str:
    """The JUnit XML document (UTF-8 text with its declaration) for ``verdicts``.

    ``time`` is the run's duration in seconds, ``timestamp`` its start (epoch s; written as ISO 8601 UTC),
    ``properties`` extra ``<property>`` rows (``None`` values are left out).

    >>> print(junit_xml([]).splitlines()[1])
    <testsuites name="horde thresholds" tests="0" failures="0" errors="0" time="0.000">
    """
    failures = sum(v.ok is False for v in verdicts)
    skipped = sum(v.ok is None for v in verdicts)
    counts = {"tests": str(len(verdicts)), "failures": str(failures), "errors": "0"}
    seconds = f"{max(0.0, time):.3f}"
    root = ET.Element("testsuites", {"name": suite_name, **counts, "time": seconds})
    suite_attrs = {"name": suite_name, **counts, "skipped": str(skipped), "time": seconds}
    if timestamp is not None:
        suite_attrs["timestamp"] = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    suite_attrs["hostname"] = hostname or socket.gethostname()
    suite = ET.SubElement(root, "testsuite", suite_attrs)
    props = ET.SubElement(suite, "properties")
    for name, value in {"horde.version": __version__, **(properties or {})}.items():
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": str(value)})
    for verdict in verdicts:
        case = ET.SubElement(
            suite, "testcase", {"classname": classname(verdict), "name": verdict.expression, "time": "0"}
        )
        if verdict.ok is False:
            failure = ET.SubElement(case, "failure", {"type": FAILURE_TYPE, "message": verdict.text})
            failure.text = _detail(verdict)
        elif verdict.ok is None:
            ET.SubElement(case, "skipped", {"message": f"no data: {verdict.why or 'nothing measured'}"})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _detail(verdict: Verdict) -> str:
    t = verdict.threshold
    lines = [
        f"threshold: {t.expression}",
        f"meaning:   {t.describe()}",
        f"observed:  {verdict.observed_text}",
    ]
    if verdict.approximate:
        lines.append("note:      approximate (interpolated from reported percentiles)")
    return "\n".join(lines)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` atomically (beside the target, then renamed); ``"-"`` writes to stdout.

    The same approach as the JSON report's writer: a CI step reading the file never sees half of it.
    """
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JUnitOutput:
    """``--junit FILE``: the thresholds' final verdicts as JUnit XML, written once at ``stop``.

    The verdicts come from ``result.thresholds`` (the session puts them there) or, when that is empty,
    from ``checker`` (the run's :class:`~horde.thresholds.output.ThresholdOutput`), so the order in which
    the outputs are stopped does not matter. With neither, the file holds an empty suite.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        checker: ThresholdOutput | None = None,
        *,
        suite_name: str = "horde thresholds",
    ) -> None:
        self.path = path
        self.checker = checker
        self.suite_name = suite_name

    def description(self) -> str:
        return f"JUnit XML: {self.path} at the end (one test case per threshold)"

    def start(self, run: RunInfo) -> None:
        pass

    def on_tick(self, snapshot: StatsSnapshot) -> None:
        pass

    def stop(self, result: RunResult) -> None:
        verdicts: list[Verdict] = [
            v for v in getattr(result, "thresholds", ()) or () if isinstance(v, Verdict)
        ]
        if not verdicts and self.checker is not None:
            verdicts = self.checker.result_verdicts(result)
        properties: dict[str, Any] = {
            "host": result.host,
            "locustfile": result.locustfile,
            "stop_reason": result.stop_reason,
            "exit_code": result.exit_code,
        }
        write_text(
            self.path,
            junit_xml(
                verdicts,
                suite_name=self.suite_name,
                time=result.duration,
                timestamp=result.start_time,
                properties=properties,
            ),
        )


__all__ = ["FAILURE_TYPE", "JUnitOutput", "classname", "junit_xml", "write_text"]

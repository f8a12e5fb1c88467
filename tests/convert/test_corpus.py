"""Every corpus locustfile: converted output equals the reviewed expected file, compiles, converts to
itself a second time, and flags exactly what it should."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from horde.convert import ConvertResult
from horde.convert import convert_source as _convert_source

HERE = Path(__file__).parent
CORPUS = sorted((HERE / "corpus").glob("*.py"))
NAMES = [p.stem for p in CORPUS]

# what each file must flag for a person (substrings of the messages, in line order); notes are not listed
MANUAL: dict[str, list[str]] = {
    "blocking_client": ["gevent.monkey", "re-entrant lock", "`requests.post` blocks", "`session.get` blocks"],
    "missing_names": ["print_task_ratio", "parse_timespan"],
}


@cache
def convert_source(source: str) -> ConvertResult:
    """Each distinct text is converted once per test session (the results are not mutated)."""
    return _convert_source(source)


def convert(name: str) -> str:
    return convert_source((HERE / "corpus" / f"{name}.py").read_text()).code


@pytest.mark.parametrize("name", NAMES)
def test_output_matches_the_expected_file(name: str) -> None:
    assert convert(name) == (HERE / "expected" / f"{name}.py").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_output_compiles(name: str) -> None:
    compile(convert(name), f"{name}.py", "exec")


@pytest.mark.parametrize("name", NAMES)
def test_converting_twice_changes_nothing(name: str) -> None:
    once = convert(name)
    twice = convert_source(once)
    assert twice.code == once
    # what needed a person still does, and nothing new appears
    assert [f.message for f in twice.findings if f.manual] == [
        f.message for f in convert_source((HERE / "corpus" / f"{name}.py").read_text()).findings if f.manual
    ]


@pytest.mark.parametrize("name", NAMES)
def test_flags_exactly_what_cannot_be_converted(name: str) -> None:
    result = convert_source((HERE / "corpus" / f"{name}.py").read_text())
    manual = [f.message for f in result.findings if f.manual]
    expected = MANUAL.get(name, [])
    assert len(manual) == len(expected), manual
    for message, wanted in zip(manual, expected, strict=True):
        assert wanted in message
    # every flagged place carries its comment in the output
    for message in manual:
        assert f"# horde convert: {message}" in result.code


def test_every_corpus_file_has_an_expected_file() -> None:
    assert NAMES == sorted(p.stem for p in (HERE / "expected").glob("*.py"))


def test_no_locust_or_gevent_left_where_everything_converts() -> None:
    for name in NAMES:
        if name in MANUAL:
            continue
        code = convert(name).split('"""', 2)[-1]  # past the docstring
        assert "locust" not in code.replace("LocustError", ""), name
        assert "gevent" not in code, name
        assert "time.sleep" not in code, name

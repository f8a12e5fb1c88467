"""``horde convert``: a libcst codemod that rewrites a Locust locustfile into a horde one.

    >>> from horde.convert import convert_source
    >>> convert_source("from locust import HttpUser\\n").code
    'from horde import HttpUser\\n'

The command line lives in :mod:`horde.convert.cli` (``main(argv) -> int``).
"""

from horde.convert.transform import ConvertError, ConvertResult, Finding, convert_source

__all__ = ["ConvertError", "ConvertResult", "Finding", "convert_source"]

"""``python -m horde.convert SRC ...``: the same as ``horde convert SRC ...``."""

import sys

from horde.convert.cli import main

sys.exit(main(sys.argv[1:]))

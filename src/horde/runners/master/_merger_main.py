"""``python -m horde.runners.master._merger_main ENDPOINT INTERVAL``: the stats merger child process.

A module of its own so that running it does not re-run :mod:`horde.runners.master.merger`, which the
package has already imported (see that module for what the child does).
"""

import signal
import sys

from horde.runners.master.merger import serve

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the master's to handle
    serve(sys.argv[1], float(sys.argv[2]))

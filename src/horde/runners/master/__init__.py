"""The master runner, split by job.

- :mod:`.runner` — :class:`MasterRunner`: the public runner API, the reader, worker status rows;
- :mod:`.controller` — the controller loop, ramps and every timer on the environment's clock;
- :mod:`.handlers` — what each worker message does; workers joining, going missing, coming back;
- :mod:`.liveness` — the pure liveness sweep (nodes + now → lost, forgotten, next due time);
- :mod:`.stopping` — the stop/quit handshake;
- :mod:`.core` — the state they share and the policy constants.
"""

from horde.runners.master.core import MISSING_FORGET_AFTER, RAMP_ACK_TIMEOUT, STOP_MARGIN
from horde.runners.master.liveness import Sweep, sweep
from horde.runners.master.runner import MasterRunner

__all__ = [
    "MISSING_FORGET_AFTER",
    "RAMP_ACK_TIMEOUT",
    "STOP_MARGIN",
    "MasterRunner",
    "Sweep",
    "sweep",
]

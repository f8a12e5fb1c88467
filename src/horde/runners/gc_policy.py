"""Keep CPython's cyclic garbage collector from walking every running user again and again.

Why: a user is long-lived. What it allocates when it starts (the user, its task set, its client, pool
and connection, its coroutine) lives as long as it runs, and every one of those objects is tracked by
the cyclic collector. A full collection walks all of them, and CPython runs one each time the objects
that survived the young generations grow by a quarter, so a ramp to N users pauses the event loop for a
time proportional to N, over and over. Measured with ``benchmarks/scale.py`` (19,500 FastHttpUsers, one
process): 12 full collections during the ramp, the longest 305 ms, 1.75 s of the ramp's 3.14 s of CPU.
Those pauses are loop lag, and loop lag is added to the response time of every request in flight.

What: :func:`settle` (called after each chunk of users is created) moves everything tracked so far into
the permanent generation with :func:`gc.freeze`, which collections skip; it is O(1). Objects made per
request are young and are collected as before. The cost of freezing is that a reference cycle which is
frozen is not freed until it is unfrozen, and a stopped user holds cycles (user and task set point at each
other). So :func:`release` (called as each user ends) unfreezes once the users ended since the last
unfreeze reach a quarter of those still running, or none is left running; the next full collection frees
their cycles, and the next spawn freezes again. Unfreezing at every end would be wrong under churn (an
open model, users that stop themselves): each unfreeze lets the next full collection walk everything, so
users replaced one by one would bring back a full walk per few thousand requests. With the quarter, what
stays frozen for ended users is at most a quarter of the population's, and churn costs one full walk per
quarter of the users replaced: CPython's own rule for full collections.

Per request, the young generation is the cost: at CPython's default threshold (a collection every 700
net allocations) HttpUser ran a young collection about every 30 requests, about 6 µs of its ~52 µs per
request. :func:`settle` also raises that threshold to :data:`YOUNG_THRESHOLD` (once; a higher one set by
the locustfile is kept): young collections become ten times rarer, and what one holds at most (the
objects allocated since the last) stays a few megabytes.

``HORDE_GC_FREEZE=0`` in the environment turns all of this off (for a locustfile that manages ``gc``
itself).
"""

from __future__ import annotations

import gc
import os

ENABLED = os.environ.get("HORDE_GC_FREEZE", "1") != "0"
#: net allocations between young collections while users run (CPython's default is 700)
YOUNG_THRESHOLD = 7000

# whether settle() froze since the last unfreeze (kept here: gc.get_freeze_count() walks every frozen
# object, which per ended user would make stopping 20,000 users take minutes)
_frozen = False
_ended = 0  # users ended since the last unfreeze (their reference cycles may be frozen)


def settle() -> None:
    """The users created so far are long-lived: keep full collections from walking them."""
    global _frozen
    if not ENABLED:
        return
    gc.freeze()
    _frozen = True
    young, *older = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:  # 0: the collector is disabled, leave it so
        gc.set_threshold(YOUNG_THRESHOLD, *older)


def release(running: int) -> None:
    """A user ended (``running`` still run): once enough have, make everything collectable again."""
    global _ended, _frozen
    if not _frozen:
        return
    _ended += 1
    if _ended * 4 >= running:
        _ended = 0
        _frozen = False
        gc.unfreeze()

"""The users dispatcher: which worker runs how many users of which class, at every step of a ramp.

The dispatcher is pure planning. It never sleeps, reads a clock or does I/O: each step carries the absolute
map ``{worker_id: {class_name: count}}`` and the delay the consumer should wait (start-to-start) before
applying it. The runners own time; this module owns arithmetic.

Three rules decide every map (``docs/dispatch.md`` explains them with a worked example):

* **Class totals** are a pure function of the total user count: the first *N* symbols of the deterministic
  divergence-minimising sequence Locust uses (fixed_count classes first, then weighted classes), so a ramp to
  *N* gives the same totals whatever the path (Locust drifts after down-then-up ramps). Because each class's
  marginal score decreases with its count, the first *N* symbols are the *N* best-scoring (class, index)
  pairs, which a bisection on the score finds in a few dozen passes over the classes instead of generating
  *N* symbols.
* **Placement** is doubly balanced: per-worker totals differ by at most one and so do each class's per-worker
  counts. Ties go to workers in host-aware order (spread over hosts before doubling up on one).
* **Minimal moves**: a ramp only starts (up) or only stops (down) users; a lost worker's users are re-placed
  on the others; a joining worker receives just enough users to restore balance. When a ramp can only keep
  both balance rules by stopping a user on one worker and starting it on another, the step says so in
  :attr:`DispatchStep.moves` (about one user in 300 at rate 1, far fewer at higher rates). A rebalance never
  moves more users than worker totals require, even if a class then stays spread over two for a while.

Ramps are planned one "round" at a time (every worker one user up or down): the whole round is solved at
once, knowing which classes the sequence brings, and each step takes part of it in arrival order.
"""

from __future__ import annotations

import gc
import math
import operator
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

__all__ = ["DispatchStep", "UsersDispatcher", "canonical_class_counts", "worker_order"]

UsersMap = dict[str, dict[str, int]]

_LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------------------
# Class totals: the divergence-minimising sequence, counted without generating it
# ---------------------------------------------------------------------------------------------------------


def _score(weight: float, emitted: int) -> float:
    """How much emitting one more user of this class changes the divergence (more negative = better).

    This is Locust's expression, evaluated the same way, so ties and near-ties resolve as they do there.
    """
    x = weight + emitted
    return weight * math.log2(x / (x + 1.0))


def _key(weight: float, emitted: int, name: str) -> tuple[float, float, float, str]:
    """Total order of the sequence: score, then fewer ``weight + emitted``, then lighter, then name."""
    return (_score(weight, emitted), weight + emitted, weight, name)


def _approx_count(weight: float, t: float, cap: int) -> int:
    """Roughly how many emissions of a class score below ``-t`` (inverting the score in closed form)."""
    e = math.expm1(t * _LN2 / weight)
    if e <= 0.0:
        return cap
    bound = 1.0 / e - weight  # emissions k with weight + k < 1 / (2**(t / weight) - 1)
    if bound <= 0.0:
        return 0
    if bound >= cap:
        return cap
    return math.ceil(bound)


def _prefix_counts(weights: Sequence[float], names: Sequence[str], n: int) -> list[int]:
    """Per-class counts among the first ``n`` symbols of the sequence for these weights (all > 0).

    Each class's keys increase with its count, so the first ``n`` symbols are the ``n`` smallest keys over
    all classes. A bisection on the score finds a threshold whose down-set is within a few symbols of ``n``;
    exact key comparisons then add or remove the boundary symbols one by one.
    """
    size = len(weights)
    if n <= 0 or size == 0:
        return [0] * size
    if size == 1:
        return [n]
    cap = n + 1
    hi = 2.0 * max(w * math.log2(1.0 + 1.0 / w) for w in weights)  # no emission scores below -hi
    lo = hi
    while sum(_approx_count(w, lo, cap) for w in weights) < n:
        lo /= 2.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if not lo < mid < hi:
            break
        if sum(_approx_count(w, mid, cap) for w in weights) >= n:
            lo = mid
        else:
            hi = mid
    threshold = -lo
    counts = []
    for w in weights:
        c = _approx_count(w, lo, cap)
        while c > 0 and _score(w, c - 1) >= threshold:
            c -= 1
        while _score(w, c) < threshold:
            c += 1
        counts.append(c)
    # `counts` is now exactly the set of symbols scoring below the threshold: a prefix of the sequence.
    total = sum(counts)
    while total < n:
        i = min(range(size), key=lambda j: _key(weights[j], counts[j], names[j]))
        counts[i] += 1
        total += 1
    while total > n:
        i = max(
            (j for j in range(size) if counts[j]), key=lambda j: _key(weights[j], counts[j] - 1, names[j])
        )
        counts[i] -= 1
        total -= 1
    return counts


def _normalise(weights: Sequence[float]) -> list[float]:
    """Scale weights so the lightest is 1: the sequence then depends only on their ratios.

    Locust feeds raw weights to the score, which makes the sequence change when every weight is multiplied
    by the same factor (5:1 and 5/23:1/23 differ). Dividing by the lightest weight keeps Locust's sequence
    whenever the lightest weight is 1 (the default) and makes it scale-invariant otherwise. Ratios within
    1e-9 of an integer are snapped so that e.g. 0.3:0.9 behaves exactly like 1:3.
    """
    low = min(weights)
    out = []
    for w in weights:
        ratio = w / low
        nearest = round(ratio)
        out.append(float(nearest) if abs(ratio - nearest) <= 1e-9 * ratio else ratio)
    return out


@dataclass(frozen=True)
class _Segment:
    """A stretch of the class-total book that adds users from one class subset.

    Without subsets there is one segment from zero. A shape that switches to a subset starts a new segment at
    the current total (as Locust restarts its sequence there); ramping below a segment's start drops it.
    """

    start: int
    base: tuple[int, ...]
    fixed_idx: tuple[int, ...]
    fixed_missing: tuple[float, ...]
    fixed_sum: int
    weighted_idx: tuple[int, ...]
    weighted_w: tuple[float, ...]
    subset: tuple[int, ...]

    @property
    def capacity(self) -> int | None:
        """How many users this segment can add (None: unbounded, some weighted class is in the subset)."""
        return None if self.weighted_idx else self.fixed_sum

    def arrival_order(self, book: Sequence[int], names: Sequence[str], up: bool) -> list[int]:
        """Classes in the order their next users arrive (``up``) or their last users leave (down)."""
        added = sum(book) - sum(self.base)
        fixed = list(zip(self.fixed_idx, self.fixed_missing, strict=True))
        weighted = list(zip(self.weighted_idx, self.weighted_w, strict=True))
        if up:
            groups = [fixed, weighted] if added < self.fixed_sum else [weighted]
            order: list[int] = []
            for group in groups:
                keyed = sorted((_key(w, book[i] - self.base[i], names[i]), i) for i, w in group)
                order += [i for _, i in keyed]
            return order
        groups = [weighted, fixed] if added > self.fixed_sum else [fixed]
        order = []
        for group in groups:
            keyed = sorted(
                (
                    (_key(w, book[i] - self.base[i] - 1, names[i]), i)
                    for i, w in group
                    if book[i] > self.base[i]
                ),
                reverse=True,
            )
            order += [i for _, i in keyed]
        return order

    def symbols(self, low: Sequence[int], high: Sequence[int], names: Sequence[str]) -> list[int]:
        """The classes of the users between class totals ``low`` and ``high``, in arrival order."""
        out = []
        for idx, weights in ((self.fixed_idx, self.fixed_missing), (self.weighted_idx, self.weighted_w)):
            keyed = [
                (_key(w, k, names[i]), i)
                for i, w in zip(idx, weights, strict=True)
                for k in range(low[i] - self.base[i], high[i] - self.base[i])
            ]
            out += [i for _, i in sorted(keyed)]
        return out

    def counts(self, added: int, names: Sequence[str]) -> list[int]:
        out = list(self.base)
        fixed_names = [names[i] for i in self.fixed_idx]
        take = _prefix_counts(self.fixed_missing, fixed_names, min(added, self.fixed_sum))
        for i, c in zip(self.fixed_idx, take, strict=True):
            out[i] += c
        rest = added - self.fixed_sum
        if rest > 0:
            weighted_names = [names[i] for i in self.weighted_idx]
            for i, c in zip(
                self.weighted_idx, _prefix_counts(self.weighted_w, weighted_names, rest), strict=True
            ):
                out[i] += c
        return out


# ---------------------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------------------


def worker_order(worker_ids: Iterable[str]) -> list[str]:
    """Host-aware order: each host's first worker (by id), then each host's second worker, and so on.

    The host is the id up to the first ``_`` (worker ids are ``<hostname>_<hex>``). Extra users go to the
    earliest workers in this order, so load spreads across machines before doubling up on one.
    """
    per_host: dict[str, int] = {}
    keyed = []
    for wid in sorted(worker_ids):
        host = _host(wid)
        index = per_host.get(host, 0)
        per_host[host] = index + 1
        keyed.append((index, wid))
    keyed.sort()
    return [wid for _, wid in keyed]


class _WorkerOrder:
    """:func:`worker_order`, kept up to date as workers join and leave instead of sorted again each time.

    A worker joining or leaving only moves the later workers of its own host by one round, so a change is
    a few list operations on the ordered keys ``(round, id)`` instead of a sort of every id (0.4 ms of an
    8 ms worker removal at 1,000 workers on 50 hosts). When a host has many workers (every simulated
    worker of one machine shares a host), a change would move thousands of keys one by one, each an O(N)
    list insert and delete (at 5,000 workers that was a fifth of the master's CPU while it re-placed a
    lost tenth); past ``_INCREMENTAL_MOVES`` the order is instead marked stale and sorted again once, when
    :attr:`ids` is next read, so a sweep that removes hundreds of workers pays one sort.
    """

    _INCREMENTAL_MOVES = 32

    def __init__(self, worker_ids: Iterable[str]) -> None:
        self._hosts: dict[str, list[str]] = {}  # host -> its worker ids, sorted
        for wid in sorted(worker_ids):
            self._hosts.setdefault(_host(wid), []).append(wid)
        self._rebuild()

    def _rebuild(self) -> None:
        self._keys = sorted((i, wid) for ids in self._hosts.values() for i, wid in enumerate(ids))
        self._ids = [wid for _, wid in self._keys]
        self._stale = False

    @property
    def ids(self) -> list[str]:
        """The workers in :func:`worker_order`."""
        if self._stale:
            self._rebuild()
        return self._ids

    def add(self, wid: str) -> None:
        """Place a new worker (its id must not be known yet)."""
        ids = self._hosts.setdefault(_host(wid), [])
        k = bisect_left(ids, wid)
        ids.insert(k, wid)
        if self._stale or len(ids) - 1 - k > self._INCREMENTAL_MOVES:
            self._stale = True
            return
        for i in range(len(ids) - 1, k, -1):
            self._move(ids[i], i - 1, i)
        self._insert((k, wid))

    def remove(self, wid: str) -> None:
        """Take a known worker out."""
        host = _host(wid)
        ids = self._hosts[host]
        k = bisect_left(ids, wid)
        del ids[k]
        if not ids:
            del self._hosts[host]
        if self._stale or len(ids) - k > self._INCREMENTAL_MOVES:
            self._stale = True
            return
        self._delete((k, wid))
        for i in range(k, len(ids)):
            self._move(ids[i], i + 1, i)

    def _move(self, wid: str, old: int, new: int) -> None:
        self._delete((old, wid))
        self._insert((new, wid))

    def _delete(self, key: tuple[int, str]) -> None:
        pos = bisect_left(self._keys, key)
        del self._keys[pos]
        del self._ids[pos]

    def _insert(self, key: tuple[int, str]) -> None:
        pos = bisect_left(self._keys, key)
        self._keys.insert(pos, key)
        self._ids.insert(pos, key[1])


def _host(wid: str) -> str:
    return wid.split("_", 1)[0]


# ---------------------------------------------------------------------------------------------------------
# Placement: doubly balanced matrices with as few changes as possible
# ---------------------------------------------------------------------------------------------------------


_BINARY_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


class _Extras:
    """Which workers hold the "+1" user of each class in a doubly balanced matrix.

    A balanced column with total ``t`` over ``W`` workers has every worker at ``t // W`` and ``t % W`` of them
    one higher. Choosing those extra cells so that every worker has ``E`` or ``E + 1`` extras in all balances
    the rows too. Cells whose current count is above the new level want to stay extras ("forced": dropping
    one stops a running user); cells of a shrinking column at or below the new level must not become extras
    ("banned": that would start a user while the column is being stopped). A greedy fill does nearly all the
    work; augmenting paths repair the rest, first without and then, only if unavoidable, with a forced or
    banned cell (each such use is one stop-one-start-one move).
    """

    def __init__(
        self,
        rows: list[list[int]],
        targets: list[int],
        priority: Sequence[int] = (),
        arrivals: Sequence[int] = (),
    ) -> None:
        n_rows = len(rows)
        self.priority = list(priority)
        self.arrivals = list(arrivals)
        n_cols = len(targets)
        self.n_rows = n_rows
        self.n_cols = n_cols
        self.levels = [t // n_rows for t in targets]
        self.extras = [t % n_rows for t in targets]
        self._cols = cols = list(zip(*rows, strict=True))
        self.held = list(map(sum, cols))  # users per class now
        self._grows = [t >= h for t, h in zip(targets, self.held, strict=True)]
        # Stops every doubly balanced answer makes in columns that do not shrink (there each stop is a move,
        # as the column starts at least as many users as it stops). Known before solving, so a caller that
        # has a plan with fewer moves need not solve at all.
        self.min_moves = sum(self._column_stops(c) for c in range(n_cols) if self._grows[c])
        self.ones: list[set[int]] = []
        self.forced: list[set[int]] = []
        self.banned: list[set[int]] = []
        self.base, self.n_high = divmod(sum(self.extras), n_rows)
        self._bits: tuple[list[int], list[int], int, int] | None = None  # see _bitsets

    def _column_stops(self, c: int) -> int:
        """Users a growing column stops in any doubly balanced answer: a cell above the new level stops
        what it holds above level + 1, and one more user unless it gets one of the column's extras."""
        col, level = self._cols[c], self.levels[c]
        top = max(col)
        if top <= level:
            return 0
        if top - level <= 3:  # the usual spread: count the few values above the level at C speed
            counts = [(col.count(v), v) for v in range(level + 1, top + 1)]
            high = sum(k for k, _ in counts)
            above = sum(k * (v - level - 1) for k, v in counts)
        else:
            values = [v for v in col if v > level]
            high = len(values)
            above = sum(values) - (level + 1) * high
        return above + max(0, high - self.extras[c])

    def _place_forced(self) -> None:
        """The cells that start as extras (forced) and the banned cells, before the fill."""
        n_rows, cols = self.n_rows, self._cols
        self.ones, self.banned = [], []
        crowded = []
        for c in range(self.n_cols):
            col, level = cols[c], self.levels[c]
            if self._grows[c]:
                high = {w for w, v in enumerate(col) if v > level}
                if len(high) > self.extras[c]:
                    crowded.append(c)
                self.ones.append(high)
                self.banned.append(set())
            else:
                self.ones.append(set())
                self.banned.append({w for w, v in enumerate(col) if v <= level})
        if crowded:
            # More workers are above a column's new level than it has extras (a worker joined): keep the
            # fullest cells, and among equals drop the extra from the workers holding the most extras.
            load = _row_counts(self.ones, n_rows)
            for c in crowded:
                col = cols[c]
                keep = sorted(self.ones[c], key=lambda w: (-col[w], load[w], w))
                for w in keep[self.extras[c] :]:
                    load[w] -= 1
                self.ones[c] = set(keep[: self.extras[c]])
        self.forced = [set(ones) for ones in self.ones]

    def _row_columns(self, w: int) -> list[int]:
        return [c for c in range(self.n_cols) if w in self.ones[c]]

    def _release(self, w: int, c: int) -> None:
        self.ones[c].discard(w)
        self.forced[c].discard(w)
        if self._bits is not None:  # ones and banned are disjoint: the cell is free to take again
            self._bits[0][c] &= ~(1 << w)
            self._bits[1][c] &= ~(1 << w)

    def solve(self, quick: bool = False) -> list[list[int]] | None:
        """The doubly balanced matrix.

        With ``quick``, give up (None) instead of searching paths through forced or banned cells: the caller
        has a cheaper fallback and compares move counts anyway.
        """
        self._place_forced()
        n_rows, n_cols, base = self.n_rows, self.n_cols, self.base
        load = _row_counts(self.ones, n_rows)
        # A worker may end with at most base + 1 extras, and only n_high workers with base + 1.
        for w in range(n_rows):
            while load[w] > base + 1:
                self._release(w, self._row_columns(w)[-1])
                load[w] -= 1
        full = [w for w in range(n_rows) if load[w] == base + 1]
        for w in reversed(full[self.n_high :]):
            self._release(w, self._row_columns(w)[-1])
            load[w] -= 1
        high = [False] * n_rows
        for w in full[: self.n_high]:
            high[w] = True
        # The remaining E + 1 slots are handed out during the fill, to workers that can use them.
        slots = self.n_high - min(len(full), self.n_high)
        spare = [base + h - k for h, k in zip(high, load, strict=True)]  # never below 0
        self.high, self.spare = high, spare
        need = [self.extras[c] - len(self.ones[c]) for c in range(n_cols)]
        if self.arrivals:
            # Users of a round, one at a time in arrival order, each on the first worker (in preference
            # order) that can take it: a ramp that takes the round in several steps then fills workers in
            # order. Skipped workers stay skipped for that class, so one pointer per class suffices.
            pointer = [0] * n_cols
            for c in self.arrivals:
                if need[c] <= 0:
                    continue
                ones, banned = self.ones[c], self.banned[c]
                w = pointer[c]
                while w < n_rows and (w in ones or w in banned or (spare[w] <= 0 and (high[w] or not slots))):
                    w += 1
                pointer[c] = w + 1
                if w >= n_rows:
                    continue
                if spare[w] <= 0:
                    high[w] = True
                    spare[w] += 1
                    slots -= 1
                ones.add(w)
                spare[w] -= 1
                need[c] -= 1
        # Classes that arrive (or leave) first pick first, so they land on the preferred workers; the rest
        # go most constrained first.
        rest = sorted(
            (c for c in range(n_cols) if c not in self.priority),
            key=lambda c: n_rows - len(self.banned[c]) - len(self.ones[c]),
        )
        # How many classes still needing extras could use each row: among rows with equal room, the ones
        # fewer classes can use go first, which leaves the flexible rows for the classes that follow.
        needy = [c for c in range(n_cols) if need[c] > 0]
        unusable = _row_counts(chain.from_iterable((self.ones[c], self.banned[c]) for c in needy), n_rows)
        options = [len(needy) - k for k in unusable]
        width = n_cols + 1  # options never exceed the number of columns
        everyone = set(range(n_rows))
        for c in self.priority + rest:
            if need[c] <= 0:
                continue
            ones, banned = self.ones[c], self.banned[c]
            eligible = sorted(everyone.difference(ones, banned))
            if len(needy) > 1:
                for w in eligible:
                    options[w] -= 1
            # Effective room: a worker at E may still take an E + 1 slot while slots remain. Candidates go by
            # most room, then fewest options, then row, encoded as one integer per row: sorting plain
            # integers is several times faster than calling a key function per row.
            bonus = slots > 0
            keyed = [
                (options[w] - width * (spare[w] + (bonus and not high[w]))) * n_rows + w
                for w in eligible
                if spare[w] > 0 or (bonus and not high[w])  # spare is never negative
            ]
            keyed.sort()
            cand = [k % n_rows for k in keyed]
            taken = 0
            for w in cand:
                if taken == need[c]:
                    break
                if spare[w] <= 0:
                    if not slots:
                        continue
                    high[w] = True
                    spare[w] += 1
                    slots -= 1
                ones.add(w)
                spare[w] -= 1
                taken += 1
            need[c] -= taken
        for w in range(n_rows):  # slots nobody could use yet: give them to preferred workers with room
            if slots and not high[w]:
                high[w] = True
                spare[w] += 1
                slots -= 1
        for c in range(n_cols):
            for _ in range(need[c]):
                if not self._augment(c, allow_cost=False):
                    if quick:
                        return None
                    if not self._augment(c, allow_cost=True):  # pragma: no cover - a complete graph
                        raise RuntimeError("dispatcher could not balance the users map (please report)")
        columns = []
        for level, ones in zip(self.levels, self.ones, strict=True):
            column = [level] * n_rows
            for w in ones:
                column[w] = level + 1
            columns.append(column)
        return list(map(list, zip(*columns, strict=True)))

    def _augment(self, c0: int, allow_cost: bool) -> bool:
        """Give column ``c0`` one more extra by shifting others along a cheapest path.

        Nodes: a column that needs one more row; a row that must absorb one more extra; ``hub``, reached by a
        row that wants to become one of the ``E + 1`` rows, which takes that status from a row that has it.
        Without costs this is a breadth-first search that stops at the first row with room; with costs it is
        a 0-1 BFS where using a forced or banned cell costs one move.
        """
        if not allow_cost:
            return self._augment_free(c0)
        n_rows, n_cols = self.n_rows, self.n_cols
        hub = n_rows + n_cols
        unseen = hub + 2
        dist = [unseen] * (hub + 1)
        parent = [-1] * (hub + 1)
        col0 = n_rows + c0
        dist[col0] = 0
        queue: deque[int] = deque([col0])
        spare, high, ones, forced, banned = self.spare, self.high, self.ones, self.forced, self.banned
        end = -1
        while queue and end < 0:
            node = queue.popleft()
            d0 = dist[node]
            if d0 < 0:
                continue  # already expanded through a cheaper entry
            dist[node] = -1 - d0  # mark expanded, keep the cost recoverable
            if node == hub:
                edges = [(v, 0) for v in range(n_rows) if high[v]]
            elif node >= n_rows:
                c = node - n_rows
                col_ones, col_banned = ones[c], banned[c]
                edges = []
                for w in range(n_rows):
                    if w in col_ones or dist[w] < 0:
                        continue
                    if w in col_banned:
                        if allow_cost:
                            edges.append((w, 1))
                    elif not allow_cost and spare[w] > 0:
                        parent[w] = node
                        end = w
                        break
                    else:
                        edges.append((w, 0))
                if end >= 0:
                    break
            else:
                if spare[node] > 0:
                    end = node
                    break
                edges = []
                for c in range(n_cols):
                    if node in ones[c]:
                        if node in forced[c]:
                            if allow_cost:
                                edges.append((n_rows + c, 1))
                        else:
                            edges.append((n_rows + c, 0))
                if not high[node]:
                    edges.append((hub, 0))
            for nxt, cost in edges:
                d = d0 + cost
                if 0 <= d < dist[nxt]:
                    dist[nxt] = d
                    parent[nxt] = node
                    if cost:
                        queue.append(nxt)
                    else:
                        queue.appendleft(nxt) if allow_cost else queue.append(nxt)
                    if not allow_cost and nxt < n_rows and spare[nxt] > 0:
                        end = nxt
                        break
        if end < 0:
            return False
        self._apply_path(col0, end, parent.__getitem__)
        return True

    def _augment_free(self, c0: int) -> bool:
        """:meth:`_augment` without costs: the same breadth-first search and the same path, on bitsets.

        Rows with room are never queued (reaching one ends the search), so a column's first row with room
        is the lowest row outside its extras and banned cells. A column or the hub reaches its rows all at
        once (a run, in row order), and a row only leads to columns or the hub not reached yet, so a whole
        run is expanded at once: each such node is reached from the run's lowest row that leads to it.
        With the row sets as integers (bit ``w`` = row ``w``) a search is a few integer operations per
        column, however many rows there are; the pass over every row per column and per row this
        replaces made the slow worker removals at 1,000 workers (dozens of searches each).
        """
        n_rows, n_cols = self.n_rows, self.n_cols
        hub = n_rows + n_cols
        free, blocked, room, highs = self._bitsets()
        col0 = n_rows + c0
        reached_by: dict[int, int] = {}  # column node or hub -> the row that reached it
        runs: list[tuple[int, int]] = []  # (rows, the column node or hub that reached them)
        unreached = (1 << n_rows) - 1
        pending = [c for c in range(n_cols) if c != c0]  # columns not reached yet, in order
        hub_pending = True
        queue: deque[int | tuple[int]] = deque([col0])  # nodes, and runs of rows as 1-tuples
        end = end_parent = -1
        while queue:
            item = queue.popleft()
            if isinstance(item, tuple):
                if not pending and not hub_pending:
                    continue
                run = item[0]
                found: list[tuple[int, int, int]] = []  # (lowest row leading there, order, node)
                for c in pending:
                    hits = free[c] & run
                    if hits:
                        found.append(((hits & -hits).bit_length() - 1, c, n_rows + c))
                if hub_pending:
                    lows = run & ~highs
                    if lows:
                        found.append(((lows & -lows).bit_length() - 1, n_cols, hub))
                        hub_pending = False
                found.sort()
                for w, _, node in found:
                    reached_by[node] = w
                    queue.append(node)
                pending = [c for c in pending if n_rows + c not in reached_by]
                continue
            if item == hub:
                ends = highs & unreached & room
                rows = highs & unreached
            else:
                ends = room & ~blocked[item - n_rows]
                rows = unreached & ~blocked[item - n_rows]
            if ends:
                end, end_parent = (ends & -ends).bit_length() - 1, item
                break
            if rows:
                unreached &= ~rows
                runs.append((rows, item))
                queue.append((rows,))
        if end < 0:
            return False

        def parent(node: int) -> int:
            if node == end:
                return end_parent
            if node >= n_rows:
                return reached_by[node]
            return next(by for rows, by in runs if rows >> node & 1)

        self._apply_path(col0, end, parent)
        return True

    def _bitsets(self) -> tuple[list[int], list[int], int, int]:
        """Per column the rows whose extra may move (not forced) and the rows it cannot take (an extra
        already, or banned); the rows with room; the ``E + 1`` rows. Bit ``w`` is row ``w``; built for
        the first search of a solve, then kept up to date by :meth:`_apply_path`."""
        if self._bits is None:

            def mask(rows: Iterable[int]) -> int:
                bits = bytearray(self.n_rows)  # byte w is bit w, highest row first once reversed
                for w in rows:
                    bits[w] = 1
                return int(bits[::-1].translate(_BINARY_DIGITS), 2)

            self._bits = (
                [mask(ones - forced) for ones, forced in zip(self.ones, self.forced, strict=True)],
                [mask(ones | banned) for ones, banned in zip(self.ones, self.banned, strict=True)],
                mask(w for w in range(self.n_rows) if self.spare[w] > 0),
                mask(w for w in range(self.n_rows) if self.high[w]),
            )
        free, blocked, room, highs = self._bits
        return free, blocked, room, highs

    def _apply_path(self, col0: int, end: int, parent: Callable[[int], int]) -> None:
        """Shift the extras along the path found from column ``col0`` to row ``end`` (which has room)."""
        n_rows = self.n_rows
        hub = n_rows + self.n_cols
        spare, high, ones, banned = self.spare, self.high, self.ones, self.banned
        bits = self._bits
        spare[end] -= 1
        if bits is not None and spare[end] <= 0:
            bits = self._bits = (bits[0], bits[1], bits[2] & ~(1 << end), bits[3])
        node = end
        while node != col0:
            prev = parent(node)
            if node < n_rows:
                if prev == hub:  # `node` hands its E + 1 status to the row that reached the hub
                    other = parent(hub)
                    high[node] = False
                    high[other] = True
                    if bits is not None:
                        highs = (bits[3] & ~(1 << node)) | (1 << other)
                        bits = self._bits = (bits[0], bits[1], bits[2], highs)
                    node = other
                    continue
                c = prev - n_rows
                ones[c].add(node)
                banned[c].discard(node)
                if bits is not None:  # a new extra is not forced
                    bits[0][c] |= 1 << node
                    bits[1][c] |= 1 << node
            else:  # column `node` gives up its extra on row `prev`
                self._release(prev, node - n_rows)
            node = prev


def _row_counts(cells: Iterable[Iterable[int]], n_rows: int) -> list[int]:
    """How many of these row sets hold each row."""
    counts = [0] * n_rows
    for rows in cells:
        for w in rows:
            counts[w] += 1
    return counts


def _balance(
    rows: list[list[int]], targets: list[int], priority: Sequence[int] = (), arrivals: Sequence[int] = ()
) -> list[list[int]]:
    """A doubly balanced matrix with column sums ``targets``, reached from ``rows`` with minimal changes.

    Row order is preference order: earlier rows get the extra user when totals do not divide evenly.
    ``priority`` lists classes to place first (those arriving soonest), so they get the preferred rows;
    ``arrivals`` lists the new users' classes in arrival order (see :meth:`_Extras.solve`).
    """
    if not rows:
        return []
    result = _Extras(rows, targets, priority, arrivals).solve()
    assert result is not None
    return result


def _apportion(amount: int, pending: Sequence[int]) -> list[int]:
    """Split ``amount`` over classes in proportion to ``pending`` (largest remainder, exact integers)."""
    total = sum(pending)
    if amount >= total:
        return list(pending)
    shares = [amount * p // total for p in pending]
    left = amount - sum(shares)
    by_remainder = sorted(range(len(pending)), key=lambda i: -(amount * pending[i] % total))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def _water(
    amount: int, rows: list[int], totals: list[int], caps: list[int], fill: bool
) -> list[tuple[int, int]]:
    """Spread ``amount`` units over ``rows`` (with these totals), at most ``caps`` units per row (all > 0).

    Filling raises the emptiest rows first; draining lowers the fullest rows first. Rows come in preference
    order: when a level cannot be completed, earlier rows get the last units and later rows lose first.
    Returns ``(row, units)`` pairs. The rows come as parallel lists, not as a tuple each: this runs once
    per class over every worker when a worker leaves.
    """
    if caps.count(1) == len(caps):  # the common case: nobody takes more than one unit
        if fill:
            ranked = sorted(range(len(totals)), key=totals.__getitem__)
        else:  # fullest first, then later rows first
            ranked = sorted(range(len(totals) - 1, -1, -1), key=totals.__getitem__, reverse=True)
        return [(rows[i], 1) for i in ranked[:amount]]
    # Rows with the same (total, cap) take the same units at any level: count them once per pair, so the
    # bisection costs a pass over a handful of pairs instead of over every row.
    keys = list(zip(totals, caps, strict=True))
    groups = Counter(keys)
    sign = 1 if fill else -1

    def take(level: int, tot: int, cap: int) -> int:
        return min(cap, max(0, sign * (level - tot)))

    def used(level: int) -> int:
        return sum(n * take(level, tot, cap) for (tot, cap), n in groups.items())

    if fill:
        lo, hi = min(t for t, _ in groups), max(t + c for t, c in groups)
        while lo < hi:  # the highest level whose filling fits in `amount`
            mid = (lo + hi + 1) // 2
            if used(mid) <= amount:
                lo = mid
            else:
                hi = mid - 1
    else:
        lo, hi = min(t - c for t, c in groups), max(t for t, _ in groups)
        while lo < hi:  # the lowest level whose draining fits in `amount`
            mid = (lo + hi) // 2
            if used(mid) <= amount:
                hi = mid
            else:
                lo = mid + 1
    per_group = {g: take(lo, *g) for g in groups}
    units = list(map(per_group.__getitem__, keys))
    # rows that stop one short of a level that cannot be completed: earlier rows get the last units when
    # filling, later rows lose first when draining
    short = {g for g, u in per_group.items() if u < g[1] and g[0] + sign * u == lo}
    left = amount - sum(units)
    if left > 0:  # only as many of those rows as there are units left: stop looking once found
        scan = range(len(keys)) if fill else range(len(keys) - 1, -1, -1)
        for i in islice((i for i in scan if keys[i] in short), left):
            units[i] += 1
    return [(w, u) for w, u in zip(rows, units, strict=True) if u]


def _advance(cur: list[list[int]], plan: list[list[int]], budget: int | None) -> list[list[int]]:
    """Move from ``cur`` toward ``plan`` with at most ``budget`` starts and ``budget`` stops.

    Classes get a share of the budget in proportion to what they still need; within a class, starts go to
    the emptiest workers and stops come from the fullest, so workers stay close to each other meanwhile.
    """
    if budget is None or budget >= max(sum(map(sum, plan)), sum(map(sum, cur))):
        return [row[:] for row in plan]  # nobody starts more users than the plan holds, nor stops more
    n_cols = len(plan[0]) if plan else 0
    starts = [0] * n_cols
    stops = [0] * n_cols
    for rc, rp in zip(cur, plan, strict=True):
        for c in range(n_cols):
            d = rp[c] - rc[c]
            if d > 0:
                starts[c] += d
            elif d < 0:
                stops[c] -= d
    if sum(starts) <= budget and sum(stops) <= budget:
        return [row[:] for row in plan]
    new = [row[:] for row in cur]
    totals = [sum(row) for row in cur]
    for fill, pending in ((False, stops), (True, starts)):
        share = _apportion(min(budget, sum(pending)), pending)
        for c in range(n_cols):
            if not share[c]:
                continue
            rows, caps = [], []
            for w, (rc, rp) in enumerate(zip(new, plan, strict=True)):
                d = rp[c] - rc[c] if fill else rc[c] - rp[c]
                if d > 0:
                    rows.append(w)
                    caps.append(d)
            for w, units in _water(share[c], rows, [totals[w] for w in rows], caps, fill):
                delta = units if fill else -units
                new[w][c] += delta
                totals[w] += delta
    return new


def _count_moves(old: list[list[int]], new: list[list[int]]) -> int:
    """Users stopped on one row and started on another, class by class."""
    # One pass over every cell at C speed: unchanged cells pass both tests.
    if all(map(operator.le, chain.from_iterable(old), chain.from_iterable(new))):
        return 0  # only starts
    if all(map(operator.ge, chain.from_iterable(old), chain.from_iterable(new))):
        return 0  # only stops
    changed = [(ro, rn) for ro, rn in zip(old, new, strict=True) if ro != rn]
    starts = [0] * len(new[0])
    stops = [0] * len(new[0])
    for ro, rn in changed:
        for c, (a, b) in enumerate(zip(ro, rn, strict=True)):
            if b > a:
                starts[c] += b - a
            elif a > b:
                stops[c] += a - b
    return sum(map(min, starts, stops))


def _fewest_moves(
    rows: list[list[int]], targets: list[int], held: Sequence[int] | None = None
) -> tuple[list[list[int]], int] | None:
    """Balanced worker totals with the fewest possible moves, classes spread as evenly as that allows.

    Used for rebalancing when the doubly balanced answer would move users between healthy workers: rows
    that must grow only start users, rows that must shrink only stop them, and users move between rows
    only as often as the row totals require. Shrinking rows give up the classes they hold most of (relative
    to the class's even share); growing rows receive the classes they hold least of. Returns the matrix and
    its number of moves, or None when this shape does not apply (classes must change while worker totals
    do not, or the shrinking rows lack the classes that must shrink). ``held`` is the rows' column sums
    when the caller has them.
    """
    n_rows, n_cols = len(rows), len(targets)
    level, n_high = divmod(sum(targets), n_rows)
    totals = list(map(sum, rows))
    # stable (reverse keeps ties in order): fuller rows, then preference
    ranked = sorted(range(n_rows), key=totals.__getitem__, reverse=True)
    goal = [level] * n_rows
    for w in ranked[:n_high]:
        goal[w] += 1
    gain = [g - t if g > t else 0 for g, t in zip(goal, totals, strict=True)]
    loss = [t - g if t > g else 0 for g, t in zip(goal, totals, strict=True)]
    if held is None:  # users per class now
        held = list(map(sum, zip(*rows, strict=True)))
    change = [t - h for t, h in zip(targets, held, strict=True)]
    extra = sum(gain) - sum(max(0, d) for d in change)  # users that must move between rows
    if extra < 0:
        return None
    levels = [t // n_rows for t in targets]
    new = [r[:] for r in rows]

    def spread(amount: int, c: int, cap: list[int], live: list[int], fill: bool) -> bool:
        """Fill (drain) class ``c`` by ``amount`` on rows with ``cap`` left; ``live`` holds them (or more)."""
        live[:] = [w for w in live if cap[w]]  # rows whose cap ran out stay out for the next classes
        if fill:
            cells, caps = live, [cap[w] for w in live]
        else:
            cells = [w for w in live if new[w][c]]
            caps = [min(cap[w], new[w][c]) for w in cells]
        if sum(caps) < amount:
            return False
        level = levels[c]
        for w, units in _water(amount, cells, [new[w][c] - level for w in cells], caps, fill):
            new[w][c] += units if fill else -units
            cap[w] -= units
        return True

    # 1. stops: first the classes that shrink, then whatever the shrinking rows hold most of
    shrinking = list(range(n_rows))
    for c in sorted(range(n_cols), key=lambda c: change[c]):
        if change[c] < 0 and not spread(-change[c], c, loss, shrinking, fill=False):
            return None
    starts = [max(0, d) for d in change]
    quota = _apportion(extra, targets)  # moved users should mirror the class mix
    for w in range(n_rows):
        while loss[w]:
            held = [c for c in range(n_cols) if new[w][c]]
            if not held:
                return None
            c = max(held, key=lambda c: (new[w][c] - levels[c], quota[c], -c))
            new[w][c] -= 1
            loss[w] -= 1
            starts[c] += 1
            quota[c] -= 1
    # 2. starts: every stopped user starts again on a growing row, with the classes that grew
    growing = list(range(n_rows))
    for c in sorted(range(n_cols), key=lambda c: -starts[c]):
        if starts[c] and not spread(starts[c], c, gain, growing, fill=True):
            return None
    return new, extra


def _rebalanced(rows: list[list[int]], targets: list[int]) -> list[list[int]]:
    """Where users should be after a worker change: rows ``rows`` re-placed to column sums ``targets``.

    A worker change must not reshuffle healthy workers: the doubly balanced plan is used when it moves no
    more users than the worker totals require (the fewest-moves plan); otherwise classes may end spread over
    two. Only what decides between them is worked out, which at 1,000 workers is most of a removal: a
    doubly balanced plan without moves cannot be beaten, and one that must move more users than the
    fewest-moves plan (:attr:`_Extras.min_moves`, known before solving) need not be solved. The quick solve
    returns the same plan as the full one whenever it returns one.
    """
    balanced = _Extras(rows, targets)
    plan: list[list[int]] | None = None
    moves = 0
    if not balanced.min_moves:
        plan = balanced.solve(quick=True)
        if plan is not None:
            moves = _count_moves(rows, plan)
            if not moves:
                return plan
    fewest = _fewest_moves(rows, targets, balanced.held)
    if fewest is None:  # only a doubly balanced plan applies: solve it with paths through any cell
        if plan is None:
            plan = (balanced if balanced.min_moves else _Extras(rows, targets)).solve()
        assert plan is not None
        return plan
    if balanced.min_moves > fewest[1]:
        return fewest[0]
    if balanced.min_moves:
        plan = balanced.solve(quick=True)
        if plan is not None:
            moves = _count_moves(rows, plan)
    return fewest[0] if plan is None or moves > fewest[1] else plan


def _substep(
    rows: list[list[int]], plan: list[list[int]], targets: list[int], up: bool
) -> list[list[int]] | None:
    """Part of a one-round ``plan``: the matrix between ``rows`` and ``plan`` with column sums ``targets``.

    Going up, each class's new users go to the workers that hold the fewest of it (then preference order);
    going down, they leave the workers that hold the most (later workers first). Returns None when the plan
    is not a pure one-round change of ``rows`` (it needed moves), so the caller solves the step directly.
    """
    sign = 1 if up else -1
    for rc, rp in zip(rows, plan, strict=True):
        diff = [sign * (p - x) for x, p in zip(rc, rp, strict=True)]
        if min(diff) < 0 or sum(diff) > 1:
            return None
    new = [row[:] for row in rows]
    for c, target in enumerate(targets):
        need = sign * (target - sum(row[c] for row in rows))
        if need <= 0:
            continue
        cand = [w for w in range(len(rows)) if plan[w][c] != rows[w][c]]
        if len(cand) < need:
            return None
        if up:
            cand.sort(key=lambda w: rows[w][c])
        else:
            cand.sort(key=lambda w: (-rows[w][c], -w))
        for w in cand[:need]:
            new[w][c] += sign
    return new


# ---------------------------------------------------------------------------------------------------------
# The dispatcher
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchStep:
    """One step of a dispatch: the absolute map to apply and when to apply it.

    ``users`` is a fresh ``{worker_id: {class_name: count}}`` covering every known worker and every class;
    consumers diff it against what runs and may keep it. ``delay`` is how long after applying the previous
    step (start to start) this one should be applied; 0 for the first step of a dispatch. ``user_count`` is
    the map's total. ``moves`` counts users stopped on one worker and started on another by this step (a
    worker that just joined counts as a worker; users of a worker that left are simply started again and
    are not moves). ``rebalance`` is true for steps that re-place users after workers joined or left.
    """

    users: UsersMap
    delay: float
    user_count: int
    moves: int = 0
    rebalance: bool = False


def _check_rate(name: str, rate: float) -> float:
    try:
        value = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of users per second, got {rate!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of users per second above 0, got {rate!r}")
    return value


class UsersDispatcher(Iterator[DispatchStep]):
    """Plans, step by step, which worker runs how many users of each class.

    Usage (the runners do exactly this)::

        d = UsersDispatcher(worker_nodes, user_classes)
        d.new_dispatch(target_user_count, spawn_rate)
        for step in d:
            await sleep(step.delay - time_since_previous_step)
            apply(step.users)

    Worker nodes are any objects with a string ``id``; user classes any classes with ``__name__`` and
    optionally ``weight`` (default 1) and ``fixed_count`` (default 0). Workers may join
    (:meth:`add_worker`) and leave (:meth:`remove_worker`) at any time; the following steps re-place users.

    ``rebalance_rate`` decides how re-placing after a worker change is paced. ``None`` (default): at the
    current spawn rate, folded into a ramp that is under way, so a worker joining during a ramp-up mostly
    receives new users instead of moved ones. ``0``: all at once in one immediate step (Locust's behaviour),
    then the ramp resumes. A positive number: that many users per second, then the ramp resumes.
    """

    def __init__(
        self,
        worker_nodes: Iterable[Any],
        user_classes: Sequence[Any],
        *,
        rebalance_rate: float | None = None,
    ) -> None:
        classes = list(user_classes)
        if not classes:
            raise ValueError("UsersDispatcher needs at least one user class")
        names = [getattr(cls, "__name__", None) for cls in classes]
        for cls, name in zip(classes, names, strict=True):
            if not isinstance(name, str):
                raise ValueError(f"user class {cls!r} has no __name__")
        dupes = sorted({n for n in names if names.count(n) > 1 and n is not None})
        if dupes:
            raise ValueError(f"user class names must be unique; duplicated: {', '.join(dupes)}")
        order = sorted(range(len(classes)), key=lambda i: names[i] or "")
        self._names: list[str] = [names[i] or "" for i in order]
        self._weights: list[float] = []
        self._fixed: list[int] = []
        for i in order:
            cls, name = classes[i], names[i]
            weight = getattr(cls, "weight", 1)
            fixed = getattr(cls, "fixed_count", 0)
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not math.isfinite(weight)
                or weight < 0
            ):
                raise ValueError(f"{name}.weight must be a finite number >= 0, got {weight!r}")
            if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 0:
                raise ValueError(f"{name}.fixed_count must be an integer >= 0, got {fixed!r}")
            self._weights.append(float(weight))
            self._fixed.append(fixed)
        self._index = {name: i for i, name in enumerate(self._names)}
        if not any(w > 0 or f > 0 for w, f in zip(self._weights, self._fixed, strict=True)):
            raise ValueError(
                "no user class can be spawned: every class has weight 0 and no fixed_count "
                f"({', '.join(self._names)})"
            )
        if rebalance_rate is not None and rebalance_rate != 0:
            rebalance_rate = _check_rate("rebalance_rate", rebalance_rate)
        self.rebalance_rate: float | None = rebalance_rate

        self._rows: dict[str, list[int]] = {}
        for node in worker_nodes:
            wid = self._node_id(node)
            if wid in self._rows:
                raise ValueError(f"worker id {wid!r} is given twice")
            self._rows[wid] = [0] * len(self._names)
        self._workers = _WorkerOrder(self._rows)
        self._total = 0  # users in the last map produced

        self._subset: tuple[int, ...] = tuple(range(len(self._names)))
        self._segments: list[_Segment] = []
        self._nominal = 0  # the total whose canonical class totals are the book
        self._book = [0] * len(self._names)
        self._target = 0
        self._rate: float | None = None
        self._plan: dict[str, list[int]] | None = None
        self._plan_total = 0  # users in the plan (its class totals are the book)
        self._dirty = False  # the worker set changed since the last plan
        self._active = False
        self._implicit = False  # the current dispatch only finishes a rebalance (no new_dispatch)
        self._emitted = False  # a step has been produced in the current dispatch
        self._owed = 0.0  # pause owed by the previous paced step
        self._in_progress = False

    # ---- public state ----------------------------------------------------------------------------------
    @property
    def dispatch_in_progress(self) -> bool:
        """True from the first step of a dispatch until iterating it raises StopIteration."""
        return self._in_progress

    @property
    def user_count(self) -> int:
        """Users in the last map produced (what the workers are being told to run)."""
        return self._total

    @property
    def target_user_count(self) -> int:
        """The target of the current (or last) dispatch."""
        return self._target

    @property
    def spawn_rate(self) -> float | None:
        """The spawn rate of the current (or last) dispatch; None before the first."""
        return self._rate

    @property
    def worker_ids(self) -> list[str]:
        """Known workers, in the host-aware order that decides ties."""
        return list(self._order)

    @property
    def current_users(self) -> UsersMap:
        """A fresh copy of the last map produced (all zeros before the first step)."""
        return self._users_map()

    def class_totals(self) -> dict[str, int]:
        """Users per class in the last map produced, summed over workers."""
        totals = [0] * len(self._names)
        for row in self._rows.values():
            for c, v in enumerate(row):
                totals[c] += v
        return dict(zip(self._names, totals, strict=True))

    # ---- commands -----------------------------------------------------------------------------------------
    def new_dispatch(
        self, target_user_count: int, spawn_rate: float, user_classes: Sequence[Any] | None = None
    ) -> None:
        """Start a dispatch from the current map toward ``target_user_count`` at ``spawn_rate`` users/s.

        Each step starts (or, going down, stops) ``max(1, floor(spawn_rate))`` users and is paced
        ``that / spawn_rate`` seconds after the previous one; the first step is immediate. If the map is
        already at the target, one step repeats it (so every worker gets its target again). A target the
        classes cannot reach (only fixed_count classes left, all satisfied) ends the ramp where it stops.
        ``user_classes`` restricts which classes new users come from (load shapes); ``None`` keeps the
        previous selection (initially all classes).
        """
        try:
            target = operator.index(target_user_count)
        except TypeError:
            raise ValueError(f"target_user_count must be an integer, got {target_user_count!r}") from None
        if target < 0:
            raise ValueError(f"target_user_count must be >= 0, got {target}")
        rate = _check_rate("spawn_rate", spawn_rate)
        if user_classes is not None:
            subset = []
            for cls in user_classes:
                name = cls if isinstance(cls, str) else getattr(cls, "__name__", None)
                if name not in self._index:
                    raise ValueError(f"user class {name!r} is not one of the dispatcher's classes")
                subset.append(self._index[name])
            if len(set(subset)) != len(subset):
                raise ValueError("user_classes lists a class twice")
            self._subset = tuple(sorted(subset))
        self._target = target
        self._rate = rate
        self._active = True
        self._implicit = False
        self._emitted = False
        self._owed = 0.0
        if self._plan is not None and self.rebalance_rate is None:
            self._dirty = True  # a folded plan aimed at the old target

    def add_worker(self, worker_node: Any) -> None:
        """A worker joined: the next steps move users to it until workers are balanced again.

        Adding a worker id that is already known does nothing.
        """
        wid = self._node_id(worker_node)
        if wid in self._rows:
            return
        self._rows[wid] = [0] * len(self._names)
        self._workers.add(wid)
        self._dirty = True

    def remove_worker(self, worker_node: Any) -> None:
        """A worker left (takes the node or its id): the next steps re-place its users on the others.

        Unknown ids are ignored. Without any worker left nothing is placed; the class totals are kept and
        re-placed when workers join again.
        """
        wid = worker_node if isinstance(worker_node, str) else self._node_id(worker_node)
        row = self._rows.pop(wid, None)
        if row is None:
            return
        self._total -= sum(row)
        self._workers.remove(wid)
        if self._plan is not None:
            self._plan.pop(wid, None)
        self._dirty = True

    # ---- iteration ----------------------------------------------------------------------------------------
    def __iter__(self) -> UsersDispatcher:
        return self

    def __next__(self) -> DispatchStep:
        if not self._active and (self._dirty or self._plan is not None) and self._rate is not None:
            self._active = True  # finish a rebalance requested after the dispatch ended
            self._implicit = True
            self._emitted = False
            self._owed = 0.0
        step = self._step_without_gc() if self._active else None
        if step is None:
            self._active = False
            self._in_progress = False
            raise StopIteration
        self._in_progress = True
        self._emitted = True
        return step

    def _step_without_gc(self) -> DispatchStep | None:
        """:meth:`_step` with the cyclic garbage collector paused (when it was running).

        A step at 1,000 workers allocates thousands of short-lived lists (matrices, candidate lists):
        with the collector on, they trip several young-generation collections per step, survive them
        while the step is still using them, and get promoted; every few steps that promotion triggers a
        full collection of the whole heap (about 20 ms in the benchmark, more in a busy master), which
        made the slowest worker removals. Every temporary is freed by reference counting before the step
        returns, so with the collector paused they never count toward a collection: this removes the
        collections, it does not postpone them. Nothing here creates reference cycles.
        """
        if not gc.isenabled():
            return self._step()
        gc.disable()
        try:
            return self._step()
        finally:
            gc.enable()

    def _step(self) -> DispatchStep | None:
        if not self._rows:
            self._move_book(self._target)
            self._plan = None
            self._dirty = False
            return None
        if self._dirty:
            self._make_plan()
        if self._plan is not None:
            return self._plan_step()
        current = self._nominal
        if current == self._target:
            if not self._emitted and not self._implicit:
                return self._emit(self._current_rows(), 0.0, rebalance=False)
            return None
        k = self._users_per_step()
        goal = min(current + k, self._target) if self._target > current else max(current - k, self._target)
        rows = self._ramp_rows(goal)
        if rows is None:  # nothing left to add from the selected classes
            return None if self._emitted else self._emit(self._current_rows(), 0.0, rebalance=False)
        delay = self._owed if self._emitted else 0.0
        self._owed = k / self._rate_or_one()
        return self._emit(rows, delay, rebalance=False)

    def _ramp_rows(self, goal: int) -> list[list[int]] | None:
        """The map for a ramp step to ``goal`` users, planned one round ahead (None: no progress possible).

        A round runs from all workers holding the same total to all holding one more (or one less): in it
        each worker gains (loses) at most one user. The whole round is planned at once, so the solver sees
        every class that will arrive in it; each step then takes a subset of that plan, preferring the
        workers with the fewest (most) users of the class. Such subsets are always doubly balanced, so moves
        only happen when no move-free plan exists for the round, which is rarer than step by step.
        """
        rows = [self._rows[w] for w in self._order]
        n = len(rows)
        start = self._nominal
        up = goal > start
        boundary = (goal // n) * n if up else -(-goal // n) * n
        if boundary > start if up else boundary < start:
            priority = self._arrival_order(up)
            reached = self._move_book(boundary)
            if reached == start:
                return None
            rows = _balance(rows, self._book, priority)
            if reached != boundary:
                return rows
        if self._nominal == goal:
            return rows
        end = min(-(-goal // n) * n, self._target) if up else max((goal // n) * n, self._target)
        end_total, end_book = self._book_at(end)
        priority = self._arrival_order(up)
        start_book = self._book
        before = self._nominal
        reached = self._move_book(goal)
        if reached == before:
            return rows if reached != start else None
        if end_total != reached:
            arrivals = self._arrivals(start_book, end_book) if up else []
            plan = _balance(rows, end_book, priority, arrivals)
            sub = _substep(rows, plan, self._book, up)
            if sub is not None:
                return sub
        return _balance(rows, self._book, priority)

    def _make_plan(self) -> None:
        """Plan the rebalance after a worker change: where every user should be once it is done.

        With the default pacing the plan goes as far into a ramp-up as it takes to balance joiners with new
        users (and straight to the target of a ramp-down); with an explicit ``rebalance_rate`` it restores
        the current total and the ramp resumes afterwards.
        """
        self._dirty = False
        rows = [self._rows[w] for w in self._order]
        if self.rebalance_rate is None:
            goal = self._target
            if goal > self._nominal:
                # Fold into the ramp only as far as needed to balance joiners with new users.
                totals = [sum(r) for r in rows]
                top = max(totals)
                fits = len(rows) * (top - 1) + totals.count(top) if top else 0
                goal = max(self._nominal, min(goal, fits))
            self._move_book(goal)
        plan = _rebalanced(rows, self._book)
        self._plan = dict(zip(self._order, plan, strict=True)) if plan != rows else None
        self._plan_total = sum(self._book)

    def _plan_step(self) -> DispatchStep:
        assert self._plan is not None
        plan = [self._plan[w] for w in self._order]
        if self.rebalance_rate == 0:
            budget, delay = None, 0.0
        else:
            rate = self.rebalance_rate or self._rate_or_one()
            budget = max(1, math.floor(rate))
            delay = self._owed if self._emitted else 0.0
            self._owed = budget / rate
        if budget is None or budget >= max(self._plan_total, self._total):
            # nobody starts more users than the plan holds, nor stops more: the plan is the step
            self._plan = None
            return self._emit(plan, delay, rebalance=True, total=self._plan_total)
        new = _advance(self._current_rows(), plan, budget)
        if new == plan:
            self._plan = None
        return self._emit(new, delay, rebalance=True)

    # ---- helpers -----------------------------------------------------------------------------------------
    @property
    def _order(self) -> list[str]:
        """Worker ids in host-aware order (the order of every matrix's rows)."""
        return self._workers.ids

    @staticmethod
    def _node_id(node: Any) -> str:
        wid = getattr(node, "id", None)
        if not isinstance(wid, str):
            raise ValueError(f"worker node {node!r} has no string `id`")
        return wid

    def _rate_or_one(self) -> float:
        return self._rate if self._rate is not None else 1.0

    def _users_per_step(self) -> int:
        return max(1, math.floor(self._rate_or_one()))

    def _users_map(self) -> UsersMap:
        # Every row has one count per class by construction; zip(strict=True) would add a third to the
        # cost of this map, which every step builds for every worker.
        names, rows = self._names, self._rows
        return {wid: dict(zip(names, rows[wid])) for wid in self._order}  # noqa: B905

    def _current_rows(self) -> list[list[int]]:
        return [self._rows[w] for w in self._order]

    def _emit(
        self, rows: list[list[int]], delay: float, rebalance: bool, total: int | None = None
    ) -> DispatchStep:
        """Make ``rows`` (one per worker, in :attr:`_order`; ``total`` users if known) the current map."""
        old = self._current_rows()
        changed = [i for i, (a, b) in enumerate(zip(old, rows, strict=True)) if a is not b and a != b]
        moves = _count_moves([old[i] for i in changed], [rows[i] for i in changed]) if changed else 0
        # Every worker keeps its row list, updated in place: the step's new lists are then freed at once
        # instead of replacing a thousand long-lived objects (which the garbage collector would promote,
        # and every few steps pay a full collection for).
        for i in changed:
            old[i][:] = rows[i]
        self._total = sum(map(sum, old)) if total is None else total
        return DispatchStep(
            users=self._users_map(),
            delay=delay,
            user_count=self._total,
            moves=moves,
            rebalance=rebalance,
        )

    def _arrivals(self, low: list[int], high: list[int]) -> list[int]:
        """Classes of the users added between two books of the top segment, in arrival order."""
        return self._segments[-1].symbols(low, high, self._names) if self._segments else []

    def _arrival_order(self, up: bool) -> list[int]:
        """Classes in the order the sequence adds (or removes) them next, from the current book."""
        segment = self._segments[-1] if self._segments else None
        if up and (segment is None or segment.subset != self._subset):
            segment = self._new_segment()
        if segment is None:
            return []
        return segment.arrival_order(self._book, self._names, up)

    def _book_at(self, total: int) -> tuple[int, list[int]]:
        """The total reachable toward ``total`` and its class totals, without changing anything."""
        reached, book, _ = self._book_path(total)
        return reached, book

    def _move_book(self, total: int) -> int:
        """Set the canonical class totals (the book) to ``total`` users; returns the total reached."""
        reached, book, segments = self._book_path(total)
        self._nominal, self._book, self._segments = reached, book, segments
        return reached

    def _book_path(self, total: int) -> tuple[int, list[int], list[_Segment]]:
        segments = self._segments
        if total == self._nominal:
            return total, list(self._book), segments
        if total < self._nominal:
            keep = len(segments)
            while keep and segments[keep - 1].start >= total:
                keep -= 1
            segments = segments[:keep]
            if not segments:
                return total, [0] * len(self._names), segments
            return total, segments[-1].counts(total - segments[-1].start, self._names), segments
        top = segments[-1] if segments else None
        if top is None or top.subset != self._subset:
            top = self._new_segment()
            if top.capacity == 0:
                return self._nominal, list(self._book), segments
            segments = [*segments, top]
        capacity = top.capacity
        if capacity is not None:
            total = min(total, top.start + capacity)
            if total <= self._nominal:
                return self._nominal, list(self._book), self._segments
        return total, top.counts(total - top.start, self._names), segments

    def _new_segment(self) -> _Segment:
        base = tuple(self._book)
        fixed = [i for i in self._subset if self._fixed[i] > 0 and self._fixed[i] > base[i]]
        weighted = [i for i in self._subset if self._fixed[i] == 0 and self._weights[i] > 0]
        missing = [self._fixed[i] - base[i] for i in fixed]
        return _Segment(
            start=self._nominal,
            base=base,
            fixed_idx=tuple(fixed),
            fixed_missing=tuple(float(m) for m in missing),
            fixed_sum=sum(missing),
            weighted_idx=tuple(weighted),
            weighted_w=tuple(_normalise([self._weights[i] for i in weighted])) if weighted else (),
            subset=self._subset,
        )


def canonical_class_counts(user_classes: Sequence[Any], user_count: int) -> dict[str, int]:
    """Users per class after ramping from zero to ``user_count`` (what every path ends at).

    Handy for shapes, the web UI and tests; the dispatcher uses exactly this rule.
    """
    d = UsersDispatcher([], user_classes)
    d._move_book(user_count)
    return dict(zip(d._names, d._book, strict=True))

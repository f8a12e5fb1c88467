"""WorkerStatus rows: the checked constructor copies, the fast one a master uses for thousands of rows does not."""

from __future__ import annotations

import dataclasses

import pytest

from horde.runners.status import WorkerStatus


def test_without_copy_gives_the_same_row_as_the_checked_constructor_but_keeps_the_dict() -> None:
    counts = {"Shop": 3}
    fast = WorkerStatus.without_copy("w1", 4, "running", 3, counts, 12.5, 1 << 20, 0.002, 1700000000.5)
    checked = WorkerStatus("w1", 4, "running", 3, {"Shop": 3}, 12.5, 1 << 20, 0.002, 1700000000.5)
    assert fast == checked and hash(fast) == hash(checked) and fast.to_dict() == checked.to_dict()
    # every field is set (a field added to the class but not to without_copy would fail here)
    assert dataclasses.asdict(fast) == dataclasses.asdict(checked)
    assert {f.name for f in dataclasses.fields(WorkerStatus)} == set(dataclasses.asdict(fast))
    assert fast.user_classes_count is counts  # no copy: the caller promised not to mutate it
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.cpu_percent = 1.0  # type: ignore[misc]


def test_with_load_changes_only_the_load() -> None:
    row = WorkerStatus("w1", 2, "running", 5, {"Shop": 5}, cpu_percent=40.0, last_heartbeat=3.0)
    shared = row.with_load("12.5/s, pool 4 of 20")
    assert shared.load == "12.5/s, pool 4 of 20" and row.load is None
    assert dataclasses.replace(shared, load=None) == row

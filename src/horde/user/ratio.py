"""How often each task runs: per user class (its tasks summing to 1) and in total (scaled by the class's
share of the users). ``--show-task-ratio``, ``--show-task-ratio-json`` and the web UI's ``/tasks`` (Locust's
"Current ratio" tab) all print this one structure:

    {"per_class": {"Shop": {"ratio": 0.75, "tasks": {"browse": {"ratio": 0.75}, ...}}},
     "total":     {"Shop": {"ratio": 0.75, "tasks": {"browse": {"ratio": 0.5625}, ...}}}}

A nested TaskSet appears as a task with its own ``tasks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def _task_name(task: Any) -> str:
    return str(getattr(task, "__name__", None) or type(task).__name__)


def task_ratios(
    tasks: Sequence[Any], scale: float = 1.0, tasks_for: Callable[[type], Sequence[Any]] | None = None
) -> dict[str, Any]:
    """``{name: {"ratio": r[, "tasks": {...}]}}``: each task's share of the weighted list, times ``scale``."""
    out: dict[str, Any] = {}
    if not tasks:
        return out
    counts: dict[str, tuple[int, Any]] = {}
    for task in tasks:
        name = _task_name(task)
        n, _ = counts.get(name, (0, task))
        counts[name] = (n + 1, task)
    for name, (n, task) in counts.items():
        ratio = n / len(tasks) * scale
        node: dict[str, Any] = {"ratio": ratio}
        if isinstance(task, type):
            nested = tasks_for(task) if tasks_for is not None else getattr(task, "tasks", None)
            if nested:
                node["tasks"] = task_ratios(nested, ratio, tasks_for)
        out[name] = node
    return out


def class_shares_by_weight(user_classes: Sequence[type]) -> dict[str, float]:
    """Each class's share of the users by weight (before any user exists); fixed_count classes get 0."""
    weighted = {
        c.__name__: float(getattr(c, "weight", 1)) for c in user_classes if not getattr(c, "fixed_count", 0)
    }
    total = sum(weighted.values())
    return {c.__name__: (weighted.get(c.__name__, 0.0) / total if total else 0.0) for c in user_classes}


def ratio_report(
    user_classes: Sequence[type],
    shares: Mapping[str, float],
    tasks_for: Callable[[type], Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """The ``{"per_class", "total"}`` structure above; ``tasks_for`` applies a run's tag selection."""
    per_class: dict[str, Any] = {}
    total: dict[str, Any] = {}
    for cls in user_classes:
        name = cls.__name__
        share = float(shares.get(name, 0.0))
        own = list(tasks_for(cls) if tasks_for is not None else getattr(cls, "tasks", []) or [])
        per_class[name] = {"ratio": share, "tasks": task_ratios(own, 1.0, tasks_for)}
        total[name] = {"ratio": share, "tasks": task_ratios(own, share, tasks_for)}
    return {"per_class": per_class, "total": total}


def format_ratio_text(report: Mapping[str, Any]) -> str:
    """Locust's ``--show-task-ratio`` layout: a percentage column and an indented tree, per class and total."""
    lines: list[str] = []
    for title, key in (("Task ratio per User class", "per_class"), ("Total task ratio", "total")):
        lines += [title, "-" * len(title)]
        _tree(report[key], 0, lines)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _tree(nodes: Mapping[str, Any], depth: int, lines: list[str]) -> None:
    for name, node in nodes.items():
        lines.append(f"{node['ratio'] * 100:>7.1f}%  {'  ' * depth}{name}")
        if node.get("tasks"):
            _tree(node["tasks"], depth + 1, lines)

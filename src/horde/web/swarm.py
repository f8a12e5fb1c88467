"""``POST /swarm``: read Locust's form fields, check every one, and say what to do (pure: no I/O).

Locust applies the fields one by one, so a bad ``run_time`` after a good ``host`` leaves the host changed,
and a non-numeric ``user_count`` ends in a generic 500. horde checks the whole form first and reports every
problem in one ``{"success": false, "message": ...}`` reply with HTTP 400; nothing is applied then, so a
running test is never disturbed by a bad request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

RUN_TIME_MESSAGE = "Valid run_time formats are : 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc."
MISSING_MESSAGE = "Missing user_count or spawn_rate from /swarm request"
STOPPING_MESSAGE = "The test is stopping: wait until it has stopped, then start again"
NO_WORKERS_MESSAGE = "You can't start a distributed test before at least one worker process has connected"
DEFAULT_SHAPE = "Default"
_TIMESPAN = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
#: Fields of the form that are not custom arguments.
STANDARD_FIELDS = frozenset({"user_count", "spawn_rate", "host", "run_time", "user_classes", "shape_class"})
#: horde's open-model fields (an arrival rate instead of a user count); Locust has no such form fields.
ARRIVAL_FIELDS = frozenset({"arrival_rate", "stages", "max_users", "pre_allocated", "poisson"})
#: Locust's UI sends these; horde has no use for them (yet) and ignores them without an error.
IGNORED_FIELDS = frozenset({"profile"})


#: A submitted form: every field name with its values, in submission order (repeatable fields).
FormData = Mapping[str, Sequence[str]]


def _value(form: FormData, key: str) -> str | None:
    values = form.get(key)
    return values[-1] if values else None


def parse_run_time(text: str) -> int | None:
    """``20``, ``20s``, ``3m``, ``1h20m`` … in seconds; ``None`` for an empty value or 0 (no limit)."""
    value = text.strip().lower()
    if not value:
        return None
    if value.isdigit():
        return int(value) or None
    match = _TIMESPAN.match(value)
    if not match or not any(match.groupdict().values()):
        raise ValueError(RUN_TIME_MESSAGE)
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    return seconds or None


@dataclass(frozen=True)
class SwarmRequest:
    """What a valid form asks for. ``edit`` means: change the running test's users, nothing else."""

    edit: bool
    user_count: int | None
    spawn_rate: float | None
    host: str | None = None
    run_time: int | None = None
    user_classes: tuple[str, ...] | None = None
    shape_class: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    #: an arrival-rate model (``arrival_rate`` or ``stages`` in the form), started instead of user counts
    model: Any = None

    @property
    def uses_shape(self) -> bool:
        return self.shape_class is not None


@dataclass(frozen=True)
class SwarmContext:
    """What the form is checked against: the run's state and what the locustfile offers."""

    state: str
    user_classes: Sequence[str]
    shape_classes: Sequence[str] = ()  # names of available shapes (class picker)
    default_shape: str | None = None  # the locustfile's shape, used when no picker chooses
    class_picker: bool = False
    custom_defaults: Mapping[str, Any] = field(default_factory=dict)  # custom-arg dest -> current value
    workers_ready: int | None = None  # a master's connected workers (None: not distributed)


def _number_field(form: FormData, key: str, problems: list[str], *, whole: bool) -> float | None:
    """A finite number >= 0 (a whole one if ``whole``), None when the field is empty; problems added."""
    raw = _value(form, key)
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0 or (whole and number != int(number)):
        expected = "a whole number >= 0" if whole else "a number > 0"
        problems.append(f"{key} must be {expected}, got {text!r}")
        return None
    return number


def _int_field(form: FormData, key: str, problems: list[str]) -> int | None:
    number = _number_field(form, key, problems, whole=True)
    return None if number is None else int(number)


def _rate_field(form: FormData, key: str, problems: list[str]) -> float | None:
    return _number_field(form, key, problems, whole=False)


def _coerce(key: str, raw: Any, values: list[Any], current: Any) -> Any:
    """Locust's custom-argument coercion: the current value's type decides."""
    if isinstance(current, bool):
        return str(raw).strip().lower() == "true"
    if current is None:
        return str(raw)
    if isinstance(current, list):
        parts = str(raw).split(",") if len(values) == 1 and "," in str(raw) else [str(v) for v in values]
        if current and all(isinstance(v, int) for v in current):
            return [int(p) for p in parts]
        return parts
    return type(current)(raw)


def parse_swarm(form: FormData, ctx: SwarmContext) -> tuple[SwarmRequest | None, list[str]]:
    """The request the form makes, or ``None`` and every problem found (one sentence each)."""
    problems: list[str] = []
    if ctx.state in ("stopping", "cleanup"):
        return None, [STOPPING_MESSAGE]
    edit = ctx.state in ("spawning", "running")
    if ctx.workers_ready == 0:
        return None, [NO_WORKERS_MESSAGE]

    user_classes: tuple[str, ...] | None = None
    shape: str | None = ctx.default_shape
    if ctx.class_picker:
        if not ctx.user_classes:
            problems.append("UserClass picker is active but there are no available UserClasses")
        chosen = [str(v) for v in form.get("user_classes", ()) if str(v)]
        unknown = [n for n in chosen if n not in ctx.user_classes]
        if unknown:
            problems.append(
                f"unknown user class(es): {', '.join(unknown)}; available: {', '.join(ctx.user_classes)}"
            )
        user_classes = tuple(dict.fromkeys(chosen)) or None
        picked = str(_value(form, "shape_class") or DEFAULT_SHAPE)
        if picked == DEFAULT_SHAPE:
            shape = None
        elif picked in ctx.shape_classes:
            shape = picked
        else:
            problems.append(
                f"unknown shape_class {picked!r}; available: {', '.join([DEFAULT_SHAPE, *ctx.shape_classes])}"
            )

    model = _arrival_model(form, ctx, problems)
    user_count = _int_field(form, "user_count", problems)
    spawn_rate = _rate_field(form, "spawn_rate", problems)
    if model is not None and edit:
        problems.append("an arrival rate starts a new test: stop the running one first")
    if model is None and shape is None and not problems and (user_count is None or not spawn_rate):
        problems.append(MISSING_MESSAGE)

    host: str | None = None
    raw_host = str(_value(form, "host") or "").replace("<", "").replace(">", "").strip()
    if raw_host:
        if not re.match(r"^[a-zA-Z][a-zA-Z\d+\-.]*://[^\s/$.?#][^\s]*$", raw_host):
            problems.append(f"host must be a URL with a scheme, e.g. http://{raw_host}, got {raw_host!r}")
        else:
            host = raw_host

    run_time: int | None = None
    try:
        run_time = parse_run_time(str(_value(form, "run_time") or ""))
    except ValueError as e:
        problems.append(str(e))

    custom: dict[str, Any] = {}
    for key in dict.fromkeys(form.keys()):
        if (
            key in STANDARD_FIELDS
            or key in ARRIVAL_FIELDS
            or key in IGNORED_FIELDS
            or key not in ctx.custom_defaults
        ):
            continue
        values = list(form.get(key, ()))
        try:
            custom[key] = _coerce(key, values[-1] if values else "", values, ctx.custom_defaults[key])
        except (TypeError, ValueError):
            current = ctx.custom_defaults[key]
            problems.append(f"{key} must be a {type(current).__name__}, got {values[-1]!r}")

    if problems:
        return None, problems
    return (
        SwarmRequest(
            edit=edit,
            user_count=user_count,
            spawn_rate=spawn_rate,
            host=host,
            run_time=run_time,
            user_classes=user_classes,
            shape_class=shape,
            custom=custom,
            model=model,
        ),
        [],
    )


def _arrival_model(form: FormData, ctx: SwarmContext, problems: list[str]) -> Any:
    """The open model the form asks for (``arrival_rate`` or ``stages``), or None; problems are added."""
    rate = (_value(form, "arrival_rate") or "").strip()
    stages = (_value(form, "stages") or "").strip()
    if not rate and not stages:
        return None
    from horde.exceptions import ConfigurationError
    from horde.load import model_from_options

    numbers: dict[str, int | None] = {}
    for key in ("max_users", "pre_allocated"):
        numbers[key] = _int_field(form, key, problems)
    options = SimpleNamespace(
        arrival_rate=rate or None,
        stages=stages or None,
        poisson=str(_value(form, "poisson") or "").lower() in ("1", "true", "on", "yes"),
        run_time=None,
        **numbers,
    )
    try:
        return model_from_options(options, None)
    except ConfigurationError as e:
        problems.append(str(e))
        return None

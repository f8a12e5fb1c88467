"""Messages between master and workers: ``Message(type, data, node_id)`` encoded with msgpack."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgpack


@dataclass(frozen=True, slots=True)
class Message:
    """One protocol message; on the master, ``node_id`` is the transport identity of the sender."""

    type: str
    data: Any = None
    node_id: str | None = None

    def serialize(self) -> bytes:
        return msgpack.packb((self.type, self.data, self.node_id), use_bin_type=True)

    @classmethod
    def unserialize(cls, raw: bytes) -> Message:
        """Decode a frame; raises ValueError for anything that is not a well-formed message."""
        try:
            decoded = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception as e:
            raise ValueError(f"undecodable frame: {e}") from e
        if not isinstance(decoded, (list, tuple)) or len(decoded) != 3:
            raise ValueError("a message must be a 3-item array [type, data, node_id]")
        msg_type, data, node_id = decoded
        if not isinstance(msg_type, str) or not (node_id is None or isinstance(node_id, str)):
            raise ValueError("message type must be a string and node_id a string or nil")
        return cls(msg_type, data, node_id)


# ---- schemas -----------------------------------------------------------------------------------------
# Each validator returns None for a well-formed payload or one line saying what is wrong. The master's
# reader drops anything that fails, so no handler ever sees a payload of the wrong shape.


def _is_counts(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    )


def _fields(data: Any, **spec: Any) -> str | None:
    if not isinstance(data, dict):
        return f"payload must be a map, got {type(data).__name__}"
    for key, check in spec.items():
        if key not in data:
            return f"missing field {key!r}"
        ok = (
            check(data[key])
            if callable(check) and not isinstance(check, type)
            else isinstance(data[key], check)
        )
        if not ok:
            return f"field {key!r} has the wrong type ({type(data[key]).__name__})"
    return None


def _optional(data: dict[str, Any], **spec: Any) -> str | None:
    for key, check in spec.items():
        if key in data and not check(data[key]):
            return f"field {key!r} has the wrong type ({type(data[key]).__name__})"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _exception_rows(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(r, dict)
        and isinstance(r.get("msg"), str)
        and isinstance(r.get("traceback"), str)
        and isinstance(r.get("count"), int)
        and not isinstance(r.get("count"), bool)
        and r["count"] > 0
        for r in value
    )


def _seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _heartbeat(d: Any) -> str | None:
    """The heartbeat schema (thousands a second on a big master): a direct check, then the precise one."""
    if type(d) is dict:
        try:
            fields = (
                d["state"],
                d["current_cpu_usage"],
                d["current_memory_usage"],
                d["loop_lag"],
                d["user_count"],
            )
        except KeyError:
            pass
        else:
            state, cpu, memory, lag, users = fields
            if type(state) is str and _number(cpu) and _number(memory) and _number(lag) and _seq(users):
                return None
    return _fields(
        d,
        state=str,
        current_cpu_usage=_number,
        current_memory_usage=_number,
        loop_lag=_number,
        user_count=_seq,
    )


WORKER_SCHEMAS: dict[str, Any] = {
    # ``session``: a secret the worker picks once per process and proves on every re-registration
    # (a new connection claiming a live worker's id without it is a takeover, refused)
    "client_ready": lambda d: (
        _fields(d, version=str, protocol=int, user_classes_count=_is_counts)
        or _optional(d, session=lambda v: isinstance(v, str) and 0 < len(v) <= 128)
    ),
    # a worker without a locustfile asks for the master's before it registers (see horde.rpc.bundle)
    "fetch_locustfile": lambda d: _fields(d, version=str, protocol=int),
    "heartbeat": _heartbeat,
    "spawning": lambda d: _fields(d, seq=_seq),
    "spawning_complete": lambda d: _fields(d, seq=_seq, user_classes_count=_is_counts),
    "stats": lambda d: (
        _fields(
            d,
            seq=_seq,
            stats=(dict, bytes),
            user_classes_count=_is_counts,
            exceptions=_exception_rows,
            logs=list,
        )
        or _optional(d, stats_generation=_seq)
    ),
    "client_stopped": lambda d: _fields(d, stats_seq=_seq),
    "stop_test": lambda d: _fields(d, reason=str),
    "quit": lambda d: _fields(d, stats_seq=_seq),
}


def validate_worker_message(msg: Message, custom_types: Any = ()) -> str | None:
    """Why a message from a worker cannot be used, or None when it can."""
    check = WORKER_SCHEMAS.get(msg.type)
    if check is None:
        return None if msg.type in custom_types else f"unknown message type {msg.type!r}"
    error: str | None = check(msg.data)
    return error

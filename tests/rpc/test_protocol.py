"""The message codec and the schemas the master checks every worker message against."""

from __future__ import annotations

import math

import msgpack
import pytest

from horde.rpc.protocol import WORKER_SCHEMAS, Message, validate_worker_message

GOOD = {
    "client_ready": {"version": "1.0", "protocol": 1, "user_classes_count": {"A": 1}},
    "heartbeat": {
        "state": "running",
        "current_cpu_usage": 1.5,
        "current_memory_usage": 10,
        "loop_lag": 0.0,
        "user_count": 3,
    },
    "spawning": {"seq": 1},
    "spawning_complete": {"seq": 1, "user_classes_count": {}},
    "stats": {"seq": 1, "stats": {}, "user_classes_count": {}, "exceptions": [], "logs": []},
    "client_stopped": {"stats_seq": 0},
    "stop_test": {"reason": "done"},
    "quit": {"stats_seq": 2},
    "fetch_locustfile": {"version": "1.0", "protocol": 1},
}


def test_every_schema_has_a_good_example() -> None:
    assert set(GOOD) == set(WORKER_SCHEMAS)


@pytest.mark.parametrize("msg_type", sorted(GOOD))
def test_good_messages_pass_and_survive_the_codec(msg_type: str) -> None:
    msg = Message.unserialize(Message(msg_type, GOOD[msg_type], "w1").serialize())
    assert msg == Message(msg_type, GOOD[msg_type], "w1")
    assert validate_worker_message(msg) is None


@pytest.mark.parametrize("msg_type", sorted(GOOD))
def test_a_missing_field_or_a_non_map_is_rejected(msg_type: str) -> None:
    assert validate_worker_message(Message(msg_type, "not a map")) is not None
    for key in GOOD[msg_type]:
        data = {k: v for k, v in GOOD[msg_type].items() if k != key}
        assert f"{key!r}" in (validate_worker_message(Message(msg_type, data)) or "")


@pytest.mark.parametrize(
    "msg_type, key, value",
    [
        ("heartbeat", "current_cpu_usage", math.nan),
        ("heartbeat", "loop_lag", math.inf),
        ("heartbeat", "user_count", -1),
        ("spawning", "seq", True),
        ("client_ready", "user_classes_count", {"A": -1}),
        ("stats", "exceptions", [{"msg": "x", "traceback": "t", "count": 0}]),
        ("stats", "stats_generation", "1"),
    ],
)
def test_wrong_types_are_rejected(msg_type: str, key: str, value: object) -> None:
    data = dict(GOOD[msg_type], **{key: value})
    assert validate_worker_message(Message(msg_type, data)) is not None


def test_unknown_types_need_a_registered_handler() -> None:
    assert "unknown message type" in (validate_worker_message(Message("mine", {})) or "")
    assert validate_worker_message(Message("mine", {}), {"mine": object()}) is None


@pytest.mark.parametrize(
    "raw", [b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb(["a", 1]), msgpack.packb({"a": 1})]
)
def test_undecodable_frames_raise_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Message.unserialize(raw)

"""Messages between master and workers: ``Message(type, data, node_id)`` encoded with msgpack."""

from __future__ import annotations

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

"""Master-worker messaging: the message codec and schemas (``protocol``), the transport seam
(``transport``), and its implementations (``zmq`` for production, ``memory`` for tests).

Importing this package does not import pyzmq; ``horde.rpc.zmq`` does.
"""

from horde.rpc.protocol import Message
from horde.rpc.transport import BadFrame, ClientTransport, Inbound, RPCError, ServerTransport

__all__ = ["BadFrame", "ClientTransport", "Inbound", "Message", "RPCError", "ServerTransport"]

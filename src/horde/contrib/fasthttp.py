"""``locust.contrib.fasthttp`` under horde's name: the fast HTTP/1.1 client (see ``horde.clients.fast``)."""

from horde.clients.fast import (
    FastHttpSession,
    FastHttpUser,
    FastRequestCall,
    FastResponse,
    RestResponseContextManager,
    TooManyRedirects,
)

#: Locust's name for what ``catch_response=True`` returns (horde's request call is used with ``async with``)
ResponseContextManager = FastRequestCall

__all__ = [
    "FastHttpSession",
    "FastHttpUser",
    "FastRequestCall",
    "FastResponse",
    "ResponseContextManager",
    "RestResponseContextManager",
    "TooManyRedirects",
]

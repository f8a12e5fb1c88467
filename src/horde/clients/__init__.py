"""HTTP clients: HttpUser on aiohttp and FastHttpUser on httptools, sharing one response contract.

``from locust.clients import HttpSession`` ports as ``from horde.clients import HttpSession``: the same
constructor, ``HttpSession(base_url, request_event, user)``.
"""

from horde.clients.http import HttpSession

#: Locust's name for what ``catch_response=True`` returns
from horde.clients.response import RequestCall as ResponseContextManager
from horde.clients.response import RequestInfo, Response, RestCall

__all__ = ["HttpSession", "RequestInfo", "Response", "ResponseContextManager", "RestCall"]

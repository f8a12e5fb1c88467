"""HTTP clients: HttpUser on aiohttp and FastHttpUser on httptools, sharing one response contract."""
